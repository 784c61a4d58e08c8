package tr111test

import (
	"net"
	"sync"
	"testing"
)

// Relay is a full-cone NAT on loopback for tests that need NATDetected
// without network namespaces: a client sends to Addr, the relay forwards
// to the target from a socket of its own per client (the "public"
// mapping), and whatever reaches that socket, from anyone, goes back to
// the client.
type Relay struct {
	Addr *net.UDPAddr // where clients send
	in   *net.UDPConn
	tgt  *net.UDPAddr

	mu  sync.Mutex
	out map[string]*net.UDPConn // client address -> its mapping
}

// NewRelay starts a relay to target until the test ends.
func NewRelay(t testing.TB, target *net.UDPAddr) *Relay {
	t.Helper()
	in, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{Addr: in.LocalAddr().(*net.UDPAddr), in: in, tgt: target, out: map[string]*net.UDPConn{}}
	t.Cleanup(func() {
		in.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, c := range r.out {
			c.Close()
		}
	})
	go r.serve()
	return r
}

func (r *Relay) serve() {
	buf := make([]byte, 2048)
	for {
		n, from, err := r.in.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if c := r.mapping(from); c != nil {
			c.WriteToUDP(buf[:n], r.tgt)
		}
	}
}

// mapping returns the client's outbound socket, made on first use.
func (r *Relay) mapping(client *net.UDPAddr) *net.UDPConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.out[client.String()]; ok {
		return c
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil
	}
	r.out[client.String()] = c
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			r.in.WriteToUDP(buf[:n], client)
		}
	}()
	return c
}
