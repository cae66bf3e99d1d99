package waf

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
)

// backendBody is the fixed response body.
const backendBody = "ok\n"

// maxBackendHead bounds a request head the backend buffers.
const maxBackendHead = 64 << 10

// backend is a lenient HTTP/1.1 server with small fixed responses: it reads
// a request head up to the empty line, then a Content-Length body, counts
// the request as received and answers 200. It accepts request targets
// net/http refuses, so that what a gateway blocks is told apart from what
// the server would have refused. It is safe for concurrent use.
type backend struct {
	ln       net.Listener
	received atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
}

func serveBackend(ln net.Listener) *backend {
	b := &backend{ln: ln, conns: map[net.Conn]bool{}}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns[c] = true
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				b.serve(c)
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
			}()
		}
	}()
	return b
}

var response = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
	strconv.Itoa(len(backendBody)) + "\r\n\r\n" + backendBody)

func (b *backend) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 16<<10)
	for {
		head, err := readHead(r)
		if err != nil {
			return
		}
		n := contentLength(head)
		if n > 0 {
			if _, err := io.CopyN(io.Discard, r, n); err != nil {
				return
			}
		}
		b.received.Add(1)
		if _, err := c.Write(response); err != nil {
			return
		}
		if bytes.Contains(bytes.ToLower(head), []byte("\nconnection: close")) {
			return
		}
	}
}

var errHeadTooLong = errors.New("request head too long")

// readHead returns the bytes up to and including the empty line.
func readHead(r *bufio.Reader) ([]byte, error) {
	var head []byte
	for {
		line, err := r.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, err
		}
		head = append(head, line...)
		if len(head) > maxBackendHead {
			return nil, errHeadTooLong
		}
		if bytes.Equal(line, []byte("\r\n")) || bytes.Equal(line, []byte("\n")) {
			if len(head) == len(line) {
				head = head[:0] // blank lines before a request are ignored
				continue
			}
			return head, nil
		}
	}
}

// contentLength finds a Content-Length field in a request head (-1: none).
func contentLength(head []byte) int64 {
	for _, line := range bytes.Split(head, []byte("\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(bytes.TrimSpace(k), []byte("content-length")) {
			continue
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		if err == nil && n >= 0 {
			return n
		}
	}
	return -1
}

// close stops the listener and every connection, and waits for them.
func (b *backend) close() {
	_ = b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}
