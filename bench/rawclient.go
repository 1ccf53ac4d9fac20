package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// rawConn is a minimal HTTP/1.1 keep-alive client: one goroutine, one
// connection, one write per request, responses parsed from a buffered
// reader. It exists because the load generator shares the machine's two
// cores with the server: net/http's Transport runs a reader and a writer
// goroutine per connection and hands every request across both, which cost
// about 65 µs of CPU per request here (a fifth of the machine during a send
// run) — CPU the server under test then does not get. A client on another
// machine, as in production, costs the server nothing. Both the ceiling and
// the Sportello runs use the same client, so their ratio stays fair;
// -client stdlib measures with net/http instead.
type rawConn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
	buf  []byte
}

func newRawConn(addr string) *rawConn { return &rawConn{addr: addr} }

// do sends one request and reads the whole response; it returns the
// status code. A broken connection is redialled once.
func (r *rawConn) do(rq request) (int, error) {
	status, err := r.try(rq)
	if err != nil && r.c == nil {
		status, err = r.try(rq)
	}
	return status, err
}

func (r *rawConn) try(rq request) (int, error) {
	if r.c == nil {
		c, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
		if err != nil {
			return 0, err
		}
		r.c, r.br = c, bufio.NewReaderSize(c, 16<<10)
	}
	path := rq.url
	if i := strings.Index(path, "://"); i >= 0 {
		path = path[i+3:]
		if j := strings.IndexByte(path, '/'); j >= 0 {
			path = path[j:]
		} else {
			path = "/"
		}
	}
	b := append(r.buf[:0], rq.method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, r.addr...)
	b = append(b, "\r\n"...)
	for k, vs := range rq.header {
		for _, v := range vs {
			b = append(b, k...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	if rq.body != nil {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(rq.body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, rq.body...)
	r.buf = b
	_ = r.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := r.c.Write(b); err != nil {
		return 0, r.fail(err)
	}
	status, err := r.readResponse()
	if err != nil {
		return 0, r.fail(err)
	}
	return status, nil
}

func (r *rawConn) fail(err error) error {
	r.close()
	return err
}

func (r *rawConn) close() {
	if r.c != nil {
		r.c.Close()
		r.c = nil
	}
}

var errMalformed = errors.New("malformed HTTP response")

func (r *rawConn) readResponse() (int, error) {
	line, err := r.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	// "HTTP/1.1 201 Created\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("%w: status line %q", errMalformed, line)
	}
	length, chunked, closing := int64(-1), false, false
	for {
		line, err := r.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return 0, fmt.Errorf("%w: header %q", errMalformed, line)
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(v), 10, 64); err != nil {
				return 0, fmt.Errorf("%w: content length %q", errMalformed, v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			closing = bytes.EqualFold(v, []byte("close"))
		}
	}
	switch {
	case status == 204 || status == 304 || status < 200:
		// no body, whatever the headers say (RFC 9112 section 6.3)
	case chunked:
		if err := r.discardChunked(); err != nil {
			return 0, err
		}
	case length >= 0:
		if _, err := r.br.Discard(int(length)); err != nil {
			return 0, err
		}
	default: // body until close
		_, _ = io.Copy(io.Discard, r.br)
		closing = true
	}
	if closing {
		r.close()
	}
	return status, nil
}

func (r *rawConn) discardChunked() error {
	for {
		line, err := r.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(size), 16, 64)
		if err != nil {
			return fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		if n == 0 { // trailers, then the final CRLF
			for {
				line, err := r.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return nil
				}
			}
		}
		if _, err := r.br.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}
