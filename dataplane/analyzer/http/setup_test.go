package http

import (
	"testing"

	"github.com/patchgate/patchgate/dataplane"
	"github.com/patchgate/patchgate/dataplane/analyzer"
)

func TestRegistered(t *testing.T) {
	spec, ok := analyzer.Lookup(Name)
	if !ok {
		t.Fatal("http analyzer not registered")
	}
	if spec.Transport != analyzer.TCP || len(spec.Ports) == 0 || spec.Ports[0] != 80 {
		t.Errorf("spec = %+v", spec)
	}
	if _, ok := spec.New().(*Analyzer); !ok {
		t.Error("Spec.New does not return an *Analyzer")
	}
	for _, ev := range []string{EventRequestHeaders, EventRequest, EventResponseHeaders, EventResponse} {
		if _, owner, ok := analyzer.LookupEvent(ev); !ok || owner != Name {
			t.Errorf("event %s: registered %v owner %q", ev, ok, owner)
		}
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		dir  dataplane.Direction
		data string
		want analyzer.Confidence
	}{
		{dataplane.ToServer, "", analyzer.NeedMore},
		{dataplane.ToServer, "GE", analyzer.NeedMore},
		{dataplane.ToServer, "GET", analyzer.NeedMore},
		{dataplane.ToServer, "GET ", analyzer.Yes},
		{dataplane.ToServer, "GET /index.html HTTP/1.1\r\n", analyzer.Yes},
		{dataplane.ToServer, "\r\nPOST /x HTTP/1.1\r\n", analyzer.Yes},
		{dataplane.ToServer, "PROPFIND /dav HTTP/1.1\r\n", analyzer.Yes},
		{dataplane.ToServer, "FOOBAR /x HTTP/1.1\r\n", analyzer.Yes},
		{dataplane.ToServer, "FOOBAR ", analyzer.NeedMore},
		{dataplane.ToServer, "EHLO mail.example.com\r\n", analyzer.No},
		{dataplane.ToServer, "SSH-2.0-OpenSSH_9.6\r\n", analyzer.No},
		{dataplane.ToServer, "\x16\x03\x01\x02\x00\x01", analyzer.No},
		{dataplane.ToServer, "get /x HTTP/1.1\r\n", analyzer.No},
		{dataplane.ToClient, "HTT", analyzer.NeedMore},
		{dataplane.ToClient, "HTTP/1.1 200 OK\r\n", analyzer.Yes},
		{dataplane.ToClient, "HTTP/2", analyzer.No},
		{dataplane.ToClient, "220 smtp ready\r\n", analyzer.No},
	}
	for _, tt := range tests {
		p := analyzer.Probe{Transport: analyzer.TCP, ServerPort: 80, Dir: tt.dir, Data: []byte(tt.data)}
		if got := Detect(p); got != tt.want {
			t.Errorf("Detect(%s, %q) = %d, want %d", tt.dir, tt.data, got, tt.want)
		}
	}
	if Detect(analyzer.Probe{Transport: analyzer.UDP, Data: []byte("GET / HTTP/1.1\r\n")}) != analyzer.No {
		t.Error("UDP detected as HTTP")
	}
}
