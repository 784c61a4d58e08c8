package cwmp

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// sessionConn is the HTTP transport of one CWMP session: one TCP (or TLS)
// connection, kept for the whole session (TR-069: HTTP/1.1 persistent
// connection, no pipelining), opened again only when the ACS closes it
// (Connection: close) or a redirect names another host, and closed when
// the session ends. Requests are written and responses read in the
// caller's goroutine by the hand-written client of wire.go, without
// http.Transport's connection pool and its two goroutines per connection.
type sessionConn struct {
	tls     *tls.Config
	timeout time.Duration // dial and TLS handshake
	local   net.IP        // source address; nil: the kernel's choice

	conn   net.Conn
	addr   string // host:port the connection is to, with the scheme
	budget *budgetReader
	br     *bufio.Reader // from readers, returned at close
	unhook func() bool   // stops the cancellation hook of the connection
}

// readers are the sessions' response buffers, reused: a fleet opens
// thousands of connections a second.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 2048) }}

// Limits on what an ACS response may be before its body (endless header
// lines once took the agent to 688 MB in 5 s).
const (
	MaxResponseHeaderBytes = 64 << 10
	MaxResponseHeaders     = 128
)

// errHeaderTooLarge ends a session whose ACS sends more header than the
// limits.
var errHeaderTooLarge = errors.New("cwmp: ACS response header too large")

// budgetReader lets a bounded number of bytes through from the connection;
// past it, reads fail. It bounds the head; the body has its own cap in
// readResponse, and a connection with an unread rest is closed, never
// drained.
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
		if s.unhook != nil {
			s.unhook()
		}
		s.conn.Close()
		s.br.Reset(nil)
		readers.Put(s.br)
		s.conn, s.br, s.budget, s.addr = nil, nil, nil, ""
	}
}

func hostPort(u *url.URL) string {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return net.JoinHostPort(host, port)
}

func (s *sessionConn) dial(ctx context.Context, u *url.URL) error {
	addr := hostPort(u)
	d := net.Dialer{Timeout: s.timeout, KeepAlive: -1}
	if s.local != nil {
		d.LocalAddr = &net.TCPAddr{IP: s.local}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	if u.Scheme == "https" {
		cfg := s.tls.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
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
	s.conn, s.addr = c, u.Scheme+"://"+addr
	s.budget = &budgetReader{r: c}
	s.br = readers.Get().(*bufio.Reader)
	s.br.Reset(s.budget)
	return nil
}

// post sends one request to u on the session's connection, dialling it
// first when there is none or it goes elsewhere, and reads the response.
//
// timeout bounds the exchange (TR-069's response timeout) within ctx's own
// deadline; it is the connection's deadline, not a context of its own, as
// a fleet makes thousands of exchanges a second.
func (s *sessionConn) post(ctx context.Context, timeout time.Duration, u *url.URL, req *wireRequest) (*wireResponse, error) {
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if s.conn != nil && s.addr != u.Scheme+"://"+hostPort(u) {
		s.close() // a redirect to another place
	}
	fresh := false
	if s.conn == nil {
		if err := s.dialBy(ctx, deadline, u); err != nil {
			return nil, err
		}
		fresh = true
	}
	resp, err := s.exchange(ctx, deadline, req)
	if err != nil && !fresh && ctx.Err() == nil && time.Now().Before(deadline) && isStale(err) {
		// The ACS closed an idle connection of the session before our
		// request reached it: send it once more on a new one.
		if derr := s.dialBy(ctx, deadline, u); derr != nil {
			return nil, derr
		}
		resp, err = s.exchange(ctx, deadline, req)
	}
	return resp, err
}

func (s *sessionConn) dialBy(ctx context.Context, deadline time.Time, u *url.URL) error {
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	err := s.dial(dctx, u)
	if err != nil && ctx.Err() == nil && dctx.Err() != nil {
		return fmt.Errorf("%w: %w", err, context.DeadlineExceeded)
	}
	if err == nil {
		// Cancellation interrupts a blocked read or write at once: one
		// hook for the connection, not one per exchange (the session's
		// exchanges share its context).
		c := s.conn
		s.unhook = context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	}
	return err
}

// isStale reports errors that mean the server closed the connection before
// answering (EOF on the first read, a reset on write).
func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (s *sessionConn) exchange(ctx context.Context, deadline time.Time, req *wireRequest) (*wireResponse, error) {
	c := s.conn
	c.SetDeadline(deadline)
	if err := writeRequest(c, req); err != nil {
		s.close()
		return nil, err
	}
	resp, err := readResponse(s.br, s.budget)
	if err != nil {
		s.close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if isTimeout(err) {
			return nil, fmt.Errorf("%w: %w", err, context.DeadlineExceeded)
		}
		return nil, err
	}
	if resp.close {
		s.close()
	}
	return resp, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
