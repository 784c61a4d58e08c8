// Package netguard keeps a listener alive under attack: it caps the
// connections held at once, in all and per source address, and it rides
// out temporary accept errors (EMFILE when descriptors run out) with a
// back-off instead of failing, as net/http's Server does. Every listener
// of the agent (HTTP Connection Requests, the control socket, the STUN
// server's API, a fleet's shared listener) goes through it.
package netguard

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Limits bound a listener. Zero values mean no bound.
type Limits struct {
	// Max is how many accepted connections may be open at once; beyond
	// it a new connection is closed as soon as it is accepted, so that it
	// holds no descriptor and the backlog keeps moving.
	Max int
	// PerSource is the same bound for one source IP address: one client
	// holding slow connections cannot take every slot from the others.
	PerSource int
}

// Listener is a net.Listener with Limits.
type Listener struct {
	net.Listener
	lim Limits

	mu      sync.Mutex // guards the following
	open    int
	bySrc   map[string]int
	refused uint64
}

// Limit wraps ln.
func Limit(ln net.Listener, lim Limits) *Listener {
	return &Listener{Listener: ln, lim: lim, bySrc: map[string]int{}}
}

// Refused counts the connections closed because of the limits.
func (l *Listener) Refused() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.refused
}

// Open is the number of connections held now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

func source(c net.Conn) string {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return "" // Unix sockets: one source
}

// Accept returns the next connection within the limits. Errors are the
// underlying listener's; a temporary one (see Temporary) is for the
// caller to retry, as http.Server does.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := source(c)
		l.mu.Lock()
		if l.lim.Max > 0 && l.open >= l.lim.Max || l.lim.PerSource > 0 && l.bySrc[src] >= l.lim.PerSource {
			l.refused++
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.open++
		l.bySrc[src]++
		l.mu.Unlock()
		return &conn{Conn: c, l: l, src: src}, nil
	}
}

func (l *Listener) release(src string) {
	l.mu.Lock()
	l.open--
	if l.bySrc[src]--; l.bySrc[src] <= 0 {
		delete(l.bySrc, src)
	}
	l.mu.Unlock()
}

type conn struct {
	net.Conn
	l    *Listener
	src  string
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.src) })
	return err
}

// Unwrap gives the connection underneath (a *net.UnixConn, for SO_PEERCRED).
func (c *conn) Unwrap() net.Conn { return c.Conn }

// Temporary reports whether an Accept error is worth retrying: the
// descriptor table is full, a connection was reset before it was taken,
// and the like. A closed listener is not.
func Temporary(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	var te interface{ Temporary() bool }
	return errors.As(err, &te) && te.Temporary()
}

// Backoff is the wait after the n-th temporary accept error in a row:
// 5 ms doubling up to one second (net/http's Server uses the same).
func Backoff(n int) time.Duration {
	d := 5 * time.Millisecond
	for i := 1; i < n && d < time.Second; i++ {
		d *= 2
	}
	if d > time.Second {
		d = time.Second
	}
	return d
}
