package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchgate/patchgate/bench/traffic"
)

func TestCmdTraffic(t *testing.T) {
	out := filepath.Join(t.TempDir(), "mix.pcapng")
	var stdout, stderr bytes.Buffer
	err := cmdTraffic([]string{"--out", out, "--flows", "400", "--seed", "3", "--format", "pcapng",
		"--patches", "../../../patches", "--weights", "http=1,dns_udp=1", "--pps", "50000", "--lookalikes", "0"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("cmdTraffic: %v (stderr %s)", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "frame sizes") || !strings.Contains(stdout.String(), out) {
		t.Errorf("summary lacks the histogram or the path:\n%s", stdout.String())
	}
	m, err := traffic.ReadManifest(out + ".manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	if m.Format != "pcapng" || m.FlowsTotal != 400 || m.Flows[traffic.KindTLS] != 0 || m.Flows[traffic.KindLookAlike] != 0 ||
		len(m.Exploits) == 0 || m.Options.Clock.Step.Microseconds() != 20 {
		t.Errorf("manifest does not follow the flags: format %s flows %v exploits %d step %v", m.Format, m.Flows, len(m.Exploits), m.Options.Clock.Step)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() < m.Bytes {
		t.Errorf("capture %v: %v", fi, err)
	}
}

func TestCmdTrafficErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--flows", "10"}, "--out"},
		{[]string{"--out", filepath.Join(dir, "x.pcap"), "--weights", "http=1,smtp=2"}, "smtp"},
		{[]string{"--out", filepath.Join(dir, "x.pcap"), "--patches", filepath.Join(dir, "none")}, "--patches"},
		{[]string{"--out", filepath.Join(dir, "x.pcap"), "--patches", "", "--flows", "0"}, "Flows"},
		{[]string{"--out", filepath.Join(dir, "x.pcap"), "extra"}, "extra"},
	} {
		var stdout, stderr bytes.Buffer
		err := cmdTraffic(c.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want it to mention %q", c.args, err, c.want)
		}
	}
}
