package gen

import (
	"fmt"
	"net/netip"
	"strconv"

	"github.com/google/gopacket/layers"

	"github.com/patchgate/patchgate/dataplane"
)

// Mix limits and defaults.
const (
	// MaxMixSessions bounds a mix: every session needs its own client
	// address and port, and the capture is built in memory.
	MaxMixSessions = 100000
	// MaxMixBody bounds the size of any generated body (1 MiB x MaxMixSessions
	// would not fit in memory anyway; this keeps a typo from trying).
	MaxMixBody = 16 << 20

	DefaultMixSessions    = 64
	DefaultMixConcurrency = 16
	DefaultMixMinRequests = 1
	DefaultMixMaxRequests = 8
	DefaultMixMaxBody     = 16 << 10
	DefaultMixLargeEvery  = 20
	DefaultMixLargeSize   = 256 << 10

	// mixBurst is the most frames one session emits before the mix switches
	// to another (a short window of back-to-back packets).
	mixBurst = 4
	// chunkSize is the largest chunk of chunked responses.
	chunkSize = 8 << 10
)

// MixOptions configure Mix. Zero values mean the defaults above.
type MixOptions struct {
	Seed uint64
	// Sessions is the number of TCP sessions; Concurrency how many are open
	// at the same time (their frames interleave).
	Sessions, Concurrency int
	// MinRequests and MaxRequests bound the keep-alive requests per session.
	MinRequests, MaxRequests int
	// MaxBody bounds ordinary request and response bodies; one response in
	// LargeEvery carries LargeSize bytes.
	MaxBody, LargeEvery, LargeSize int
	// IPv6Every makes every n-th session IPv6; 0 means IPv4 only.
	IPv6Every int
	// Exploits are raw requests placed, each in a different session chosen
	// by the seed, instead of one of its ordinary requests.
	Exploits [][]byte
	// LinkType and Clock as in SessionOptions.
	LinkType layers.LinkType
	Clock    Clock
}

func (o MixOptions) withDefaults() MixOptions {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.Sessions, DefaultMixSessions)
	def(&o.Concurrency, DefaultMixConcurrency)
	def(&o.MinRequests, DefaultMixMinRequests)
	def(&o.MaxRequests, DefaultMixMaxRequests)
	def(&o.MaxBody, DefaultMixMaxBody)
	def(&o.LargeEvery, DefaultMixLargeEvery)
	def(&o.LargeSize, DefaultMixLargeSize)
	return o
}

// Validate reports the first field out of range (after defaults).
func (o MixOptions) Validate() error {
	o = o.withDefaults()
	switch {
	case o.Sessions < 1 || o.Sessions > MaxMixSessions:
		return fmt.Errorf("dataplane/gen: mix Sessions %d outside 1..%d", o.Sessions, MaxMixSessions)
	case o.Concurrency < 1:
		return fmt.Errorf("dataplane/gen: mix Concurrency %d below 1", o.Concurrency)
	case o.MinRequests < 1 || o.MaxRequests < o.MinRequests:
		return fmt.Errorf("dataplane/gen: mix requests %d..%d is not a range of at least 1", o.MinRequests, o.MaxRequests)
	case o.MaxBody < 0 || o.MaxBody > MaxMixBody || o.LargeSize < 0 || o.LargeSize > MaxMixBody:
		return fmt.Errorf("dataplane/gen: mix MaxBody %d or LargeSize %d outside 0..%d", o.MaxBody, o.LargeSize, MaxMixBody)
	case o.LargeEvery < 0 || o.IPv6Every < 0:
		return fmt.Errorf("dataplane/gen: mix LargeEvery %d or IPv6Every %d negative", o.LargeEvery, o.IPv6Every)
	case len(o.Exploits) > o.Sessions:
		return fmt.Errorf("dataplane/gen: %d exploits but only %d sessions to carry them", len(o.Exploits), o.Sessions)
	}
	return SessionOptions{LinkType: o.LinkType}.Validate()
}

// Placement records where Mix put an exploit.
type Placement struct {
	Exploit        int      // index into MixOptions.Exploits
	Flow           int      // FrameMeta.Flow of the session
	Client, Server Endpoint // the TCP 5-tuple
	Msg            int      // index of the request among the session's to_server messages
	// FirstFrame and LastFrame are the capture indexes of the first and last
	// frame carrying the request's bytes.
	FirstFrame, LastFrame int
}

// mixPaths are the request targets of the mix.
var mixPaths = [...]string{"/", "/index.html", "/api/v1/items", "/static/app.js",
	"/images/logo.png", "/search", "/login", "/api/v1/orders"}

// Mix generates a realistic, seeded traffic mix: many concurrent HTTP/1.1
// keep-alive sessions with GETs and POSTs of varied sizes, fixed-length and
// chunked responses (some large), interleaved in time. Exploits replace
// chosen requests; the placements say where. The same options give the same
// bytes.
func Mix(o MixOptions) (*Capture, []Placement, error) {
	if err := o.Validate(); err != nil {
		return nil, nil, err
	}
	o = o.withDefaults()
	r := newRNG(o.Seed)
	filler := makeFiller(r)

	// Choose the exploit carriers: distinct sessions, one request each.
	carrier := make(map[int]int, len(o.Exploits)) // session -> exploit
	order := make([]int, o.Sessions)
	for i := range order {
		order[i] = i
	}
	r.shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for e := range o.Exploits {
		carrier[order[e]] = e
	}

	places := make([]Placement, len(o.Exploits))
	flows := make([][]Frame, o.Sessions)
	for j := 0; j < o.Sessions; j++ {
		client, server := mixEndpoints(j, o.IPv6Every)
		opts := DefaultSessionOptions()
		opts.ClientISN, opts.ServerISN = uint32(r.next()), uint32(r.next())
		opts.LinkType = o.LinkType
		s, err := NewTCPSession(client, server, opts)
		if err != nil {
			return nil, nil, err
		}
		n := r.between(o.MinRequests, o.MaxRequests)
		exploit, hasExploit := carrier[j]
		at := -1
		if hasExploit {
			at = r.intn(n)
			places[exploit] = Placement{Exploit: exploit, Flow: j, Client: client, Server: server, Msg: at}
		}
		for k := 0; k < n; k++ {
			req := mixRequest(r, filler, o, server)
			if k == at {
				req = o.Exploits[exploit]
			}
			s.Send(dataplane.ToServer, req)
			s.Send(dataplane.ToClient, mixResponse(r, filler, o))
		}
		s.Close(dataplane.ToServer)
		if flows[j], err = s.Frames(); err != nil {
			return nil, nil, err
		}
		for i := range flows[j] {
			flows[j][i].Meta.Flow = j
		}
	}

	capture := &Capture{LinkType: linkOrDefault(o.LinkType), Frames: interleave(r, flows, o.Concurrency)}
	o.Clock.Stamp(capture.Frames)
	for i := range places {
		p := &places[i]
		p.FirstFrame, p.LastFrame = -1, -1
		for fi := range capture.Frames {
			m := &capture.Frames[fi].Meta
			if m.Flow == p.Flow && m.Dir == dataplane.ToServer && m.Msg == p.Msg {
				if p.FirstFrame < 0 {
					p.FirstFrame = fi
				}
				p.LastFrame = fi
			}
		}
	}
	return capture, places, nil
}

func linkOrDefault(lt layers.LinkType) layers.LinkType {
	if lt == 0 {
		return layers.LinkTypeEthernet
	}
	return lt
}

// interleave merges the flows' frames: at most concurrency flows are open
// at once, and a seeded choice among them emits a short burst at a time.
// Each flow keeps its own frame order.
func interleave(r *rng, flows [][]Frame, concurrency int) []Frame {
	total := 0
	for _, f := range flows {
		total += len(f)
	}
	out := make([]Frame, 0, total)
	active := make([]int, 0, concurrency)
	pos := make([]int, len(flows))
	next := 0
	for ; next < len(flows) && len(active) < concurrency; next++ {
		active = append(active, next)
	}
	for len(active) > 0 {
		a := r.intn(len(active))
		f := active[a]
		burst := r.between(1, mixBurst)
		for ; burst > 0 && pos[f] < len(flows[f]); burst-- {
			out = append(out, flows[f][pos[f]])
			pos[f]++
		}
		if pos[f] == len(flows[f]) {
			if next < len(flows) {
				active[a] = next
				next++
			} else {
				active = append(active[:a], active[a+1:]...)
			}
		}
	}
	return out
}

// mixEndpoints gives session j a unique client address and port, and one of
// a few servers. Addresses are from the documentation ranges (RFC 5737,
// RFC 3849) so generated traffic never names a real host.
func mixEndpoints(j, ipv6Every int) (client, server Endpoint) {
	host, port := j%200, 32768+j/200
	srv := j % 4
	if ipv6Every > 0 && j%ipv6Every == ipv6Every-1 {
		c := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 14: byte(host >> 8), 15: byte(host) + 1})
		s := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 2, 15: byte(srv) + 10})
		return Endpoint{c, uint16(port)}, Endpoint{s, 80}
	}
	c := netip.AddrFrom4([4]byte{198, 51, 100, byte(host) + 1})
	s := netip.AddrFrom4([4]byte{203, 0, 113, byte(srv) + 10})
	return Endpoint{c, uint16(port)}, Endpoint{s, 80}
}

// makeFiller returns a block of printable pseudo-random text bodies are cut from.
func makeFiller(r *rng) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,<>/=\n"
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = alphabet[r.intn(len(alphabet))]
	}
	return b
}

// body returns n bytes of filler starting at a random offset.
func body(r *rng, filler []byte, n int) []byte {
	b := make([]byte, n)
	off := r.intn(len(filler))
	for i := 0; i < n; {
		c := copy(b[i:], filler[off:])
		i += c
		off = 0
	}
	return b
}

func mixRequest(r *rng, filler []byte, o MixOptions, server Endpoint) []byte {
	path := mixPaths[r.intn(len(mixPaths))]
	host := server.Addr.String()
	if r.intn(10) < 7 {
		return []byte("GET " + path + "?id=" + strconv.Itoa(r.intn(100000)) + " HTTP/1.1\r\nHost: " + host +
			"\r\nUser-Agent: patchgate-gen/1\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n")
	}
	b := body(r, filler, r.between(0, o.MaxBody))
	head := "POST " + path + " HTTP/1.1\r\nHost: " + host +
		"\r\nUser-Agent: patchgate-gen/1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " +
		strconv.Itoa(len(b)) + "\r\n\r\n"
	return append([]byte(head), b...)
}

func mixResponse(r *rng, filler []byte, o MixOptions) []byte {
	status := "200 OK"
	if r.intn(10) == 0 {
		status = "404 Not Found"
	}
	n := r.between(0, o.MaxBody)
	if o.LargeEvery > 0 && r.intn(o.LargeEvery) == 0 {
		n = o.LargeSize
	}
	b := body(r, filler, n)
	head := "HTTP/1.1 " + status + "\r\nServer: patchgate-gen\r\nContent-Type: text/html\r\n"
	if r.intn(5) != 0 {
		return append([]byte(head+"Content-Length: "+strconv.Itoa(n)+"\r\n\r\n"), b...)
	}
	out := []byte(head + "Transfer-Encoding: chunked\r\n\r\n")
	for len(b) > 0 {
		c := min(len(b), r.between(1, chunkSize))
		out = append(out, strconv.FormatInt(int64(c), 16)+"\r\n"...)
		out = append(out, b[:c]...)
		out = append(out, "\r\n"...)
		b = b[c:]
	}
	return append(out, "0\r\n\r\n"...)
}
