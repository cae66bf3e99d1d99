package runner

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
)

// eveAlert is the part of an EVE alert line the runner reads.
type eveAlert struct {
	EventType string `json:"event_type"`
	SrcIP     string `json:"src_ip"`
	SrcPort   uint16 `json:"src_port"`
	DestIP    string `json:"dest_ip"`
	DestPort  uint16 `json:"dest_port"`
	Alert     struct {
		Action      string `json:"action"`
		SignatureID int    `json:"signature_id"`
	} `json:"alert"`
}

// eveTail reads the lines appended to EVE files since the last call.
type eveTail struct {
	off map[string]int64
}

func newEVETail() *eveTail { return &eveTail{off: map[string]int64{}} }

// skip moves past everything the files hold now.
func (t *eveTail) skip(paths []string) {
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil {
			t.off[p] = st.Size()
		} else {
			t.off[p] = 0
		}
	}
}

// read returns the alerts appended since the last call (whole lines only).
func (t *eveTail) read(paths []string) ([]eveAlert, error) {
	var out []eveAlert
	for _, p := range paths {
		f, err := os.Open(p)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("runner: eve: %w", err)
		}
		if _, err := f.Seek(t.off[p], io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("runner: eve: %w", err)
		}
		as, n, err := parseEVE(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("runner: eve %s: %w", p, err)
		}
		t.off[p] += n
		out = append(out, as...)
	}
	return out, nil
}

// parseEVE parses EVE JSON lines and returns the alerts and the bytes of
// the complete lines consumed (a partly written last line is left).
func parseEVE(r io.Reader) ([]eveAlert, int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var out []eveAlert
	var n int64
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			return out, n, nil // an incomplete line stays for the next read
		}
		if err != nil {
			return nil, n, err
		}
		n += int64(len(line))
		var a eveAlert
		if json.Unmarshal(line, &a) != nil || a.EventType != "alert" {
			continue
		}
		out = append(out, a)
	}
}

// matchExploits returns how many distinct exploits of the list an alert
// names (by the flow's endpoints, either orientation).
func matchExploits(exploits []Exploit, alerts []eveAlert) int {
	type pair struct{ a, b netip.AddrPort }
	hit := map[pair]bool{}
	for _, a := range alerts {
		s, err1 := netip.ParseAddr(a.SrcIP)
		d, err2 := netip.ParseAddr(a.DestIP)
		if err1 != nil || err2 != nil {
			continue
		}
		sp, dp := netip.AddrPortFrom(s.Unmap(), a.SrcPort), netip.AddrPortFrom(d.Unmap(), a.DestPort)
		hit[pair{sp, dp}], hit[pair{dp, sp}] = true, true
	}
	n := 0
	for _, e := range exploits {
		if hit[pair{e.Client, e.Server}] {
			n++
		}
	}
	return n
}
