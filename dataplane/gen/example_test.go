package gen_test

import (
	"fmt"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/gen"
)

// A request split into 4-byte segments, each preceded by a low-TTL decoy,
// then cut right after the request's last frame.
func ExampleTCPSession() {
	o := gen.DefaultSessionOptions()
	o.SegmentSize = 4
	s, err := gen.NewTCPSession(gen.EP("192.0.2.1:40000"), gen.EP("198.51.100.2:80"), o)
	if err != nil {
		panic(err)
	}
	s.Send(dataplane.ToServer, []byte("GET / HTTP/1.0\r\n\r\n"))
	s.Send(dataplane.ToClient, []byte("HTTP/1.0 200 OK\r\n\r\n"))
	s.Close(dataplane.ToClient)
	frames, err := s.Frames(gen.Decoy(gen.InMessage(dataplane.ToServer, 0), gen.WithTTL(1)))
	if err != nil {
		panic(err)
	}
	decoys := 0
	for i, f := range frames {
		if f.Meta.Decoy {
			decoys++
		}
		if f.Meta.Last && f.Meta.Dir == dataplane.ToServer && f.Meta.Msg == 0 {
			fmt.Printf("request ends at frame %d of %d, after %d decoys\n", i, len(frames), decoys)
		}
	}
	// Output: request ends at frame 14 of 27, after 5 decoys
}
