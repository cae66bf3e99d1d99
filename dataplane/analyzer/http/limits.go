package http

import "fmt"

// Safety limits. Each bounds memory or work that a hostile peer could otherwise
// make unbounded. The buffer-sized ones are the defaults of Config; the others
// are fixed because the event schema documents them.
const (
	// MaxLineLength bounds one request line, status line, header line, chunk-size
	// line or trailer line (bytes before the LF). Common servers refuse longer
	// lines (nginx large_client_header_buffers 8k, Apache LimitRequestLine 8190),
	// so nothing a server accepts is lost, and the partial-line buffer stays small.
	MaxLineLength = 8 << 10
	// MaxHeaders bounds the header fields of one message (Apache's
	// LimitRequestFields default). More is a header-flooding attack sign.
	MaxHeaders = 100
	// MaxHeaderBytes bounds the header section of one message, line terminators
	// included. It caps the per-direction header buffer that a checkpoint carries.
	MaxHeaderBytes = 64 << 10
	// MaxBodyInspect is how many body bytes (after de-chunking) are kept for the
	// http.request / http.response event. The rest is counted, not kept, so a
	// large upload costs no memory; patches see the first MaxBodyInspect bytes.
	MaxBodyInspect = 64 << 10
	// MaxDecodePasses bounds the percent-decoding passes of URI.Path. Three passes
	// expose triple encoding ("%25252e"); a server that decodes more often than
	// that is not known, and each pass costs a copy of the path.
	MaxDecodePasses = 3
	// MaxDecompressed bounds the output of Content-Encoding decoding, against
	// compression bombs (gzip reaches ratios above 1000:1).
	MaxDecompressed = 256 << 10
	// MaxRangeSpecs bounds the ranges kept in Range.Specs; Range.Count still
	// counts them all. Overlap detection is quadratic in the kept ranges.
	MaxRangeSpecs = 100
	// MaxArgs bounds the arguments taken from one source (query, form body,
	// multipart body) and the cookies of one request.
	MaxArgs = 256
	// MaxPipelined bounds the request methods remembered for matching responses
	// to requests. Deeper pipelines are still parsed; their responses carry an
	// empty RequestMethod (browsers and proxies pipeline a handful at most).
	MaxPipelined = 128
	// maxMethodLength bounds a method remembered for response matching (a longer
	// method is cut). Registered methods are at most 17 bytes.
	maxMethodLength = 64
	// maxBoundaryLength bounds a multipart boundary (RFC 2046 allows 70).
	maxBoundaryLength = 200
	// maxPartHeaderLines bounds the header lines of one multipart part.
	maxPartHeaderLines = 32
)

// Config holds the buffer-sized limits of an Analyzer. DefaultConfig returns the
// documented defaults; smaller values make tests and fuzzing reach the limits
// with small inputs. An analyzer restoring a checkpoint must use a Config at
// least as large as the one that produced it.
type Config struct {
	// MaxLineLength bounds one line (see the constant of the same name).
	MaxLineLength int
	// MaxHeaders bounds the header fields of a message.
	MaxHeaders int
	// MaxHeaderBytes bounds the header section of a message.
	MaxHeaderBytes int
	// MaxBodyInspect is how many body bytes are kept for the body event.
	MaxBodyInspect int
	// MaxDecompressed bounds Content-Encoding decoding output.
	MaxDecompressed int
	// MaxPipelined bounds the remembered request methods.
	MaxPipelined int
}

// DefaultConfig returns the default limits.
func DefaultConfig() Config {
	return Config{
		MaxLineLength:   MaxLineLength,
		MaxHeaders:      MaxHeaders,
		MaxHeaderBytes:  MaxHeaderBytes,
		MaxBodyInspect:  MaxBodyInspect,
		MaxDecompressed: MaxDecompressed,
		MaxPipelined:    MaxPipelined,
	}
}

// Hard ceilings for Config values: a configuration beyond them is a mistake that
// would let one flow hold megabytes of state.
const (
	ceilLineLength   = 1 << 20
	ceilHeaders      = 10000
	ceilHeaderBytes  = 4 << 20
	ceilBodyInspect  = 16 << 20
	ceilDecompressed = 64 << 20
	ceilPipelined    = 4096
)

// Validate reports the first field that is out of range, and why.
func (c Config) Validate() error {
	check := func(name string, v, lo, hi int) error {
		if v < lo || v > hi {
			return fmt.Errorf("dataplane/http: Config.%s = %d, want %d..%d", name, v, lo, hi)
		}
		return nil
	}
	// A line must at least hold "GET / HTTP/1.1".
	if err := check("MaxLineLength", c.MaxLineLength, 16, ceilLineLength); err != nil {
		return err
	}
	if err := check("MaxHeaders", c.MaxHeaders, 1, ceilHeaders); err != nil {
		return err
	}
	if err := check("MaxHeaderBytes", c.MaxHeaderBytes, 16, ceilHeaderBytes); err != nil {
		return err
	}
	if err := check("MaxBodyInspect", c.MaxBodyInspect, 1, ceilBodyInspect); err != nil {
		return err
	}
	if err := check("MaxDecompressed", c.MaxDecompressed, 1, ceilDecompressed); err != nil {
		return err
	}
	return check("MaxPipelined", c.MaxPipelined, 1, ceilPipelined)
}
