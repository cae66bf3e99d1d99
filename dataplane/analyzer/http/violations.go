package http

import (
	"errors"
	"fmt"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

// Violation codes reported through analyzer.Sink.Violation. They are stable
// identifiers: policies and alerts refer to them. "Fatal" ones make the framing of
// the direction ambiguous (or the server would refuse the message and close), so
// the analyzer stops parsing that direction and Feed returns an error wrapping
// ErrStopped; the others are reported and parsing goes on.
const (
	// CodeCLTEConflict: a message carries both Content-Length and
	// Transfer-Encoding (the classic CL.TE / TE.CL smuggling shape). Fatal.
	CodeCLTEConflict = "http.cl_te_conflict"
	// CodeCLDuplicate: Content-Length values that differ. Fatal.
	CodeCLDuplicate = "http.cl_duplicate"
	// CodeBadContentLength: a Content-Length value that is not a decimal number
	// fitting in 63 bits. Fatal.
	CodeBadContentLength = "http.bad_content_length"
	// CodeTEObfuscated: Transfer-Encoding other than exactly "chunked" (other
	// codings, lists, case or whitespace tricks, repeated fields), or
	// Transfer-Encoding in an HTTP/1.0 message. Fatal.
	CodeTEObfuscated = "http.te_obfuscated"
	// CodeBadChunkSize: a chunk-size line that is not hex digits with optional
	// extensions, or that overflows 63 bits. Fatal.
	CodeBadChunkSize = "http.bad_chunk_size"
	// CodeBadChunkData: chunk data not followed by CRLF. Fatal.
	CodeBadChunkData = "http.bad_chunk_data"
	// CodeLineTooLong: a line longer than Config.MaxLineLength. Fatal.
	CodeLineTooLong = "http.line_too_long"
	// CodeTooManyHeaders: more than Config.MaxHeaders header (or trailer)
	// fields. Fatal.
	CodeTooManyHeaders = "http.too_many_headers"
	// CodeHeadersTooLarge: a header (or trailer) section larger than
	// Config.MaxHeaderBytes. Fatal.
	CodeHeadersTooLarge = "http.headers_too_large"
	// CodeBadRequestLine: a request line that is not method SP target SP
	// HTTP/1.x (or an HTTP/0.9 "GET target"). Fatal.
	CodeBadRequestLine = "http.bad_request_line"
	// CodeBadStatusLine: a status line that is not HTTP/1.x SP 3DIGIT. Fatal.
	CodeBadStatusLine = "http.bad_status_line"
	// CodeBadHeader: a header line without a colon, with an empty or invalid
	// field name, or with CR or NUL in its value. Fatal.
	CodeBadHeader = "http.bad_header"
	// CodeBareLF: a line ended by LF alone. The analyzer accepts it as a line
	// end, as most servers do, and reports it once per message.
	CodeBareLF = "http.bare_lf"
	// CodeHeaderSpaceBeforeColon: whitespace between a field name and the colon
	// (RFC 9112 §5.1 requires rejection). Reported once per message; fatal when the
	// field is Content-Length or Transfer-Encoding.
	CodeHeaderSpaceBeforeColon = "http.header_space_before_colon"
	// CodeObsFold: a header value continued on the next line (obsolete line
	// folding). The value is joined with one space; reported once per message.
	// Fatal when it folds Content-Length or Transfer-Encoding, or comes before
	// the first field.
	CodeObsFold = "http.obs_fold"
	// CodePipelineOverflow: more than Config.MaxPipelined requests await a
	// response; reported once when it first happens.
	CodePipelineOverflow = "http.pipeline_overflow"
)

// ErrStopped is wrapped by the error Feed returns once a direction has met a
// fatal violation; later Feed calls for that direction return it again.
var ErrStopped = errors.New("parsing stopped after a fatal protocol violation")

// violation bits for the once-per-message reports.
const (
	reportedBareLF uint32 = 1 << iota
	reportedSpaceBeforeColon
	reportedObsFold
)

// report sends a non-fatal violation once per message.
func (d *direction) reportOnce(bit uint32, sink analyzer.Sink, code, detail string) {
	if d.reported&bit != 0 {
		return
	}
	d.reported |= bit
	sink.Violation(d.dir, code, detail)
}

// fail reports a fatal violation, stops the direction and returns the error
// Feed hands back.
func (d *direction) fail(sink analyzer.Sink, code, detail string) error {
	sink.Violation(d.dir, code, detail)
	d.stop(code)
	return d.stoppedErr()
}

// stop puts the direction in the failed state without reporting.
func (d *direction) stop(code string) {
	d.state = stFailed
	d.failCode = code
	d.line = d.line[:0]
	d.body = d.body[:0]
}

func (d *direction) stoppedErr() error {
	return fmt.Errorf("dataplane/http: %s: %s: %w", dirName(d.dir), d.failCode, ErrStopped)
}

func dirName(d dataplane.Direction) string { return d.String() }
