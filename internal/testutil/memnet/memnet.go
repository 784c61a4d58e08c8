// Package memnet is a UDP network in memory for tests: packet
// connections that deliver datagrams through channels, with read
// deadlines on the runtime's clock. Code that takes a ListenPacket
// function (the TR-111 client and STUN server) runs on it unchanged, and
// inside a testing/synctest bubble, where every wait is on a channel or a
// timer, its tests run in virtual time: a binding-timeout discovery that
// takes 16 s of real time takes none.
package memnet

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// Net is one network. The zero value is not usable; use New.
type Net struct {
	mu       sync.Mutex
	conns    map[string]*PacketConn
	nextPort int
}

// New returns an empty network.
func New() *Net { return &Net{conns: map[string]*PacketConn{}, nextPort: 20000} }

// queue is how many datagrams wait at a connection before more are
// dropped (as a full socket buffer drops them).
const queue = 256

type datagram struct {
	b    []byte
	from *net.UDPAddr
}

// PacketConn is one bound UDP socket.
type PacketConn struct {
	n     *Net
	addr  *net.UDPAddr
	in    chan datagram
	done  chan struct{}
	close sync.Once

	mu       sync.Mutex // guards deadline
	deadline time.Time
}

var _ net.PacketConn = (*PacketConn)(nil)

// ListenPacket binds address ("ip:port"; port 0 picks one; no IP is
// 127.0.0.1). The network must be udp or udp4.
func (n *Net) ListenPacket(network, address string) (net.PacketConn, error) {
	if network != "udp" && network != "udp4" {
		return nil, fmt.Errorf("memnet: network %q", network)
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	ip := net.IPv4(127, 0, 0, 1)
	if host != "" {
		if ip = net.ParseIP(host); ip == nil {
			return nil, fmt.Errorf("memnet: %q is not an IP address", host)
		}
	}
	p, _ := strconv.Atoi(port)
	n.mu.Lock()
	defer n.mu.Unlock()
	if p == 0 {
		for {
			n.nextPort++
			if _, used := n.conns[key(ip, n.nextPort)]; !used {
				p = n.nextPort
				break
			}
		}
	}
	k := key(ip, p)
	if _, used := n.conns[k]; used {
		return nil, fmt.Errorf("memnet: %s: address already in use", k)
	}
	c := &PacketConn{n: n, addr: &net.UDPAddr{IP: ip.To4(), Port: p}, in: make(chan datagram, queue), done: make(chan struct{})}
	n.conns[k] = c
	return c, nil
}

// Dial returns a connection that only knows its local address (what the
// TR-111 client asks a connected socket for); it sends nothing.
func (n *Net) Dial(network, address string) (net.Conn, error) {
	pc, err := n.ListenPacket(network, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	raddr, err := net.ResolveUDPAddr("udp4", address)
	if err != nil {
		pc.Close()
		return nil, err
	}
	return &dialed{PacketConn: pc.(*PacketConn), raddr: raddr}, nil
}

func key(ip net.IP, port int) string { return net.JoinHostPort(ip.To4().String(), strconv.Itoa(port)) }

// ReadFrom waits for a datagram, the read deadline or Close.
func (c *PacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.mu.Lock()
	dl := c.deadline
	c.mu.Unlock()
	var timeout <-chan time.Time
	if !dl.IsZero() {
		d := time.Until(dl)
		if d <= 0 {
			return 0, nil, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case d := <-c.in:
		return copy(b, d.b), d.from, nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	case <-timeout:
		return 0, nil, os.ErrDeadlineExceeded
	}
}

// WriteTo delivers a copy of b to the connection bound at addr; without
// one, or when its queue is full, the datagram is lost, as on a network.
func (c *PacketConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errors.New("memnet: not a UDP address")
	}
	c.n.mu.Lock()
	to := c.n.conns[key(ua.IP, ua.Port)]
	c.n.mu.Unlock()
	if to == nil {
		return len(b), nil
	}
	d := datagram{b: append([]byte(nil), b...), from: &net.UDPAddr{IP: c.addr.IP, Port: c.addr.Port}}
	select {
	case to.in <- d:
	case <-to.done:
	default:
	}
	return len(b), nil
}

// Close unbinds the address and ends waiting reads.
func (c *PacketConn) Close() error {
	c.close.Do(func() {
		close(c.done)
		c.n.mu.Lock()
		delete(c.n.conns, key(c.addr.IP, c.addr.Port))
		c.n.mu.Unlock()
	})
	return nil
}

func (c *PacketConn) LocalAddr() net.Addr { return c.addr }

func (c *PacketConn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

func (c *PacketConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return nil
}

func (c *PacketConn) SetWriteDeadline(time.Time) error { return nil }

type dialed struct {
	*PacketConn
	raddr *net.UDPAddr
}

func (d *dialed) Read(b []byte) (int, error) {
	n, _, err := d.PacketConn.ReadFrom(b)
	return n, err
}

func (d *dialed) Write(b []byte) (int, error) { return d.PacketConn.WriteTo(b, d.raddr) }

func (d *dialed) RemoteAddr() net.Addr { return d.raddr }
