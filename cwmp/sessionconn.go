package cwmp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/cwmp-agent/cwmp-agent/soap"
)

// sessionConn is the HTTP transport of one CWMP session: one TCP (or TLS)
// connection, kept for the whole session (TR-069: HTTP/1.1 persistent
// connection, no pipelining), opened again only when the ACS closes it
// (Connection: close) or a redirect names another host, and closed when
// the session ends. Requests are written and responses read in the
// caller's goroutine with net/http's own wire code (Request.Write,
// ReadResponse, which handle chunked bodies and the rest), without
// http.Transport's connection pool and its two goroutines per connection:
// a fleet runs a thousand sessions a second, and that machinery cost a
// third of its CPU (BenchmarkFleetSessions).
type sessionConn struct {
	tls     *tls.Config
	timeout time.Duration // dial and TLS handshake
	local   net.IP        // source address; nil: the kernel's choice

	conn   net.Conn
	addr   string // host:port the connection is to, with the scheme
	budget *budgetReader
	br     *bufio.Reader
	bw     *bufio.Writer
}

// Limits on what an ACS response may be before its body: net/http's own
// header limit applies to http.Transport only, and reading responses with
// http.ReadResponse needs its own (endless header lines once took the
// agent to 688 MB in 5 s).
const (
	MaxResponseHeaderBytes = 64 << 10
	MaxResponseHeaders     = 128
)

// errHeaderTooLarge ends a session whose ACS sends more header than the
// limits.
var errHeaderTooLarge = errors.New("cwmp: ACS response header too large")

// budgetReader lets a bounded number of bytes through from the connection;
// past it, reads fail. It bounds the header; the body has its own cap in
// readBody, and an unread rest is never drained (sessionBody.Close).
type budgetReader struct {
	r    io.Reader
	left int64
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	return n, err
}

func (s *sessionConn) close() {
	if s.conn != nil {
		s.conn.Close()
		s.conn, s.br, s.bw, s.addr = nil, nil, nil, ""
	}
}

func hostPort(req *http.Request) string {
	host, port := req.URL.Hostname(), req.URL.Port()
	if port == "" {
		port = "80"
		if req.URL.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(host, port)
}

func (s *sessionConn) dial(ctx context.Context, req *http.Request) error {
	addr := hostPort(req)
	d := net.Dialer{Timeout: s.timeout, KeepAlive: -1}
	if s.local != nil {
		d.LocalAddr = &net.TCPAddr{IP: s.local}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	if req.URL.Scheme == "https" {
		cfg := s.tls.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = req.URL.Hostname()
		}
		tc := tls.Client(c, cfg)
		hctx, cancel := context.WithTimeout(ctx, s.timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			c.Close()
			return err
		}
		c = tc
	}
	s.conn, s.addr = c, req.URL.Scheme+"://"+addr
	s.budget = &budgetReader{r: c}
	s.br = bufio.NewReaderSize(s.budget, 2048)
	s.bw = bufio.NewWriterSize(c, 2048)
	return nil
}

// RoundTrip implements http.RoundTripper for the session's exchanger.
func (s *sessionConn) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if s.conn != nil && s.addr != req.URL.Scheme+"://"+hostPort(req) {
		s.close() // a redirect to another place
	}
	fresh := false
	if s.conn == nil {
		if err := s.dial(ctx, req); err != nil {
			return nil, err
		}
		fresh = true
	}
	resp, err := s.exchange(ctx, req)
	if err != nil && !fresh && req.GetBody != nil && ctx.Err() == nil && isStale(err) {
		// The ACS closed an idle connection of the session before our
		// request reached it: send it once more on a new one.
		s.close()
		body, gerr := req.GetBody()
		if gerr != nil {
			return nil, err
		}
		req.Body = body
		if derr := s.dial(ctx, req); derr != nil {
			return nil, derr
		}
		resp, err = s.exchange(ctx, req)
	}
	return resp, err
}

// isStale reports errors that mean the server closed the connection before
// answering (EOF on the first read, a reset on write).
func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

func (s *sessionConn) exchange(ctx context.Context, req *http.Request) (*http.Response, error) {
	c := s.conn
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Time{})
	}
	// Cancellation interrupts a blocked read or write at once.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := req.Write(s.bw); err != nil {
		s.close()
		return nil, err
	}
	if err := s.bw.Flush(); err != nil {
		s.close()
		return nil, err
	}
	s.budget.left = MaxResponseHeaderBytes
	resp, err := http.ReadResponse(s.br, req)
	if err == nil && len(resp.Header) > MaxResponseHeaders {
		err = errHeaderTooLarge
	}
	if err != nil {
		s.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	// The body: what a message may hold, with room for chunk framing;
	// readBody stops at the message cap itself.
	s.budget.left = 2*int64(soap.MaxMessageSize) + MaxResponseHeaderBytes
	// The exchanger reads the whole body before the next request; the
	// connection is dropped afterwards when the ACS asked to close it.
	resp.Body = &sessionBody{ReadCloser: resp.Body, s: s, close: resp.Close}
	return resp, nil
}

type sessionBody struct {
	io.ReadCloser
	s     *sessionConn
	close bool
	eof   bool
}

func (b *sessionBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// Close keeps the connection only when the body was read to its end. A
// body left unread (past the message cap, an endless chunked stream) is
// not drained, as net/http's Close would do until the response timeout:
// the connection is dropped first.
func (b *sessionBody) Close() error {
	if !b.eof {
		b.s.close()
		b.ReadCloser.Close()
		return nil
	}
	err := b.ReadCloser.Close()
	if b.close || err != nil {
		b.s.close()
	}
	return err
}
