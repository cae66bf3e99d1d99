package traffic

import (
	"bufio"
	"fmt"
	"io"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// snapLen is the snapshot length in capture headers: every frame the
// generator writes is complete.
const snapLen = 262144

// captureWriter streams frames to a pcap or pcapng file through a buffer.
type captureWriter struct {
	bw   *bufio.Writer
	pcap *pcapgo.Writer
	ng   *pcapgo.NgWriter
}

func newCaptureWriter(w io.Writer, format string) (*captureWriter, error) {
	c := &captureWriter{bw: bufio.NewWriterSize(w, 1<<20)}
	if format == FormatPcapNG {
		ng, err := pcapgo.NewNgWriter(c.bw, layers.LinkTypeEthernet)
		if err != nil {
			return nil, fmt.Errorf("traffic: pcapng header: %w", err)
		}
		c.ng = ng
		return c, nil
	}
	c.pcap = pcapgo.NewWriter(c.bw)
	if err := c.pcap.WriteFileHeader(snapLen, layers.LinkTypeEthernet); err != nil {
		return nil, fmt.Errorf("traffic: pcap header: %w", err)
	}
	return c, nil
}

func (c *captureWriter) write(ci gopacket.CaptureInfo, data []byte) error {
	var err error
	if c.ng != nil {
		err = c.ng.WritePacket(ci, data)
	} else {
		err = c.pcap.WritePacket(ci, data)
	}
	if err != nil {
		return fmt.Errorf("traffic: write frame: %w", err)
	}
	return nil
}

func (c *captureWriter) flush() error {
	if c.ng != nil {
		if err := c.ng.Flush(); err != nil {
			return fmt.Errorf("traffic: flush: %w", err)
		}
	}
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("traffic: flush: %w", err)
	}
	return nil
}
