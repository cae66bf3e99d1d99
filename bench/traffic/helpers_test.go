package traffic

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/patchgate/patchgate/dataplane/patch"
)

// catalogDir is the shipped catalog, relative to this package.
const catalogDir = "../../patches"

func loadCatalog(t testing.TB) []*patch.Patch {
	t.Helper()
	ps, err := patch.LoadDir(catalogDir)
	if err != nil {
		t.Fatalf("load catalog: %v", err)
	}
	return ps
}

// generate writes a capture into a fresh temporary directory.
func generate(t testing.TB, o Options) *Result {
	t.Helper()
	if o.Out == "" && o.Writer == nil {
		o.Out = filepath.Join(t.TempDir(), "traffic.pcap")
	}
	res, err := Generate(o)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	return res
}

// readFrames calls fn for every frame of a pcap or pcapng file, in order.
func readFrames(t testing.TB, path string, fn func(i int, lt layers.LinkType, data []byte, ci gopacket.CaptureInfo)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type reader interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var (
		r  reader
		lt layers.LinkType
	)
	if pr, err := pcapgo.NewReader(f); err == nil {
		r, lt = pr, pr.LinkType()
	} else {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		nr, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s is neither pcap nor pcapng: %v", path, err)
		}
		r, lt = nr, nr.LinkType()
	}
	for i := 0; ; i++ {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		fn(i, lt, data, ci)
	}
}
