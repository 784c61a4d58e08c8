package tr111

import (
	"net"
	"sync"
	"testing"
	"time"
)

// fakeNAT is a user-space NAT on loopback with the behaviour that matters
// to TR-111 and that Linux conntrack has: a mapping per inside address, a
// new outside port when a mapping is created, and expiry after Timeout
// without a packet in either direction. The CPE sends to Inside as if it
// were the STUN server; the server sees the mapping's outside port.
type fakeNAT struct {
	t       testing.TB
	listen  func(network, address string) (net.PacketConn, error)
	inside  net.PacketConn
	server  *net.UDPAddr
	Timeout time.Duration

	mu       sync.Mutex
	mappings map[string]*mapping
	created  int
}

type mapping struct {
	out    net.PacketConn
	in     *net.UDPAddr
	last   time.Time
	closed bool
}

func newFakeNAT(t testing.TB, server *net.UDPAddr, timeout time.Duration) *fakeNAT {
	return newFakeNATOn(t, net.ListenPacket, server, timeout)
}

// newFakeNATOn is the NAT on another network (memnet).
func newFakeNATOn(t testing.TB, listen func(network, address string) (net.PacketConn, error), server *net.UDPAddr, timeout time.Duration) *fakeNAT {
	in, err := listen("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &fakeNAT{t: t, listen: listen, inside: in, server: server, Timeout: timeout, mappings: map[string]*mapping{}}
	go n.fromInside()
	t.Cleanup(n.close)
	return n
}

// Addr is where the CPE believes the STUN server is.
func (n *fakeNAT) Addr() *net.UDPAddr { return n.inside.LocalAddr().(*net.UDPAddr) }

func (n *fakeNAT) close() {
	n.inside.Close()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.mappings {
		m.out.Close()
	}
}

// Flush drops every mapping, as `conntrack -F` does.
func (n *fakeNAT) Flush() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, m := range n.mappings {
		m.closed = true
		m.out.Close()
		delete(n.mappings, k)
	}
}

func (n *fakeNAT) live(m *mapping, now time.Time) bool {
	return !m.closed && now.Sub(m.last) <= n.Timeout
}

func (n *fakeNAT) fromInside() {
	buf := make([]byte, 2048)
	for {
		k, a, err := n.inside.ReadFrom(buf)
		if err != nil {
			return
		}
		from := a.(*net.UDPAddr)
		now := time.Now()
		n.mu.Lock()
		m := n.mappings[from.String()]
		if m != nil && !n.live(m, now) {
			m.closed = true
			m.out.Close()
			m = nil
		}
		if m == nil {
			out, err := n.listen("udp4", "127.0.0.1:0")
			if err != nil {
				n.mu.Unlock()
				continue
			}
			m = &mapping{out: out, in: from}
			n.mappings[from.String()] = m
			n.created++
			go n.fromOutside(m)
		}
		m.last = now
		n.mu.Unlock()
		m.out.WriteTo(buf[:k], n.server)
	}
}

func (n *fakeNAT) fromOutside(m *mapping) {
	buf := make([]byte, 2048)
	for {
		k, _, err := m.out.ReadFrom(buf)
		if err != nil {
			return
		}
		now := time.Now()
		n.mu.Lock()
		ok := n.live(m, now)
		if ok {
			m.last = now // an inbound packet refreshes the mapping too
		}
		n.mu.Unlock()
		if ok {
			n.inside.WriteTo(buf[:k], m.in)
		}
	}
}

// Created counts the mappings made so far.
func (n *fakeNAT) Created() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.created
}
