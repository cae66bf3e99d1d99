package traffic

import (
	"strconv"

	"github.com/patchgate/patchgate/dataplane/gen"
)

// Object-size model shared by HTTP and TLS application data (README.md,
// "Size model"): most requests are small API calls, some fetch pages and
// assets, very few are multi-megabyte downloads.
const (
	apiShare      = 0.8998
	pageShare     = 0.10
	downloadShare = 0.0002 // ≈ 1 request in 5000

	apiMin, apiMax           = 100, 2048
	pageMin, pageMax         = 10 << 10, 100 << 10
	downloadMin, downloadMax = 1 << 20, 8 << 20

	// meanRequests is the mean number of requests per keep-alive
	// connection (geometric, at most maxRequests).
	meanRequests = 3.0
	maxRequests  = 32

	fillerSize = 256 << 10
)

// Object classes.
const (
	classAPI = iota
	classPage
	classDownload
	numClasses
)

var classNames = [numClasses]string{"api", "page", "download"}

var classShares = []float64{apiShare, pageShare, downloadShare}

// pickClass draws an object class.
func (b *builder) pickClass() int { return b.r.weighted(classShares) }

// objectSize draws the response size of a class.
func (b *builder) objectSize(class int) int {
	switch class {
	case classPage:
		return b.r.logUniform(pageMin, pageMax)
	case classDownload:
		return b.r.logUniform(downloadMin, downloadMax)
	}
	return b.r.logUniform(apiMin, apiMax)
}

// builder builds the flows of one capture. It holds the seeded generator and
// the filler blocks bodies are cut from; it is not safe for concurrent use.
type builder struct {
	r     *rng
	text  []byte // printable filler: HTML, JSON strings
	noise []byte // high-entropy filler: images, downloads, ciphertext
	stats *Manifest
}

func newBuilder(seed uint64, m *Manifest) *builder {
	b := &builder{r: newRNG(seed), stats: m}
	const alphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-_:;"
	b.text = make([]byte, fillerSize)
	for i := range b.text {
		b.text[i] = alphabet[b.r.intn(len(alphabet))]
	}
	b.noise = make([]byte, fillerSize)
	for i := 0; i < len(b.noise); i += 8 {
		v := b.r.next()
		for k := 0; k < 8; k++ {
			b.noise[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

// appendFill appends n bytes of src starting at a random offset, wrapping.
func (b *builder) appendFill(dst, src []byte, n int) []byte {
	off := b.r.intn(len(src))
	for n > 0 {
		c := min(n, len(src)-off)
		dst = append(dst, src[off:off+c]...)
		n -= c
		off = 0
	}
	return dst
}

// sessionOptions returns TCP options of a Linux host on Ethernet: MSS 1460
// (1440 over IPv6) and segments of MSS minus the 12-byte timestamps option,
// so every frame fits a 1500-byte MTU (at most 1514 bytes on the wire).
func (b *builder) sessionOptions(v6 bool) gen.SessionOptions {
	o := gen.DefaultSessionOptions()
	o.ClientISN, o.ServerISN = uint32(b.r.next()), uint32(b.r.next())
	o.MSS = 1460
	if v6 {
		o.MSS = 1440
	}
	o.SegmentSize = int(o.MSS) - 12
	return o
}

func itoa(n int) string { return strconv.Itoa(n) }
