package diag

import (
	"net"
	"testing"
	"time"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
)

// FuzzEchoPlus feeds the UDP Echo Plus header parser and the echo server
// arbitrary datagrams: the parser never panics and what it reads writes
// back the same; the server answers every datagram of an allowed source
// with a datagram of the same length and counts it.
func FuzzEchoPlus(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzEchoPlus")
	probe, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Skip(err)
	}
	port := probe.LocalAddr().(*net.UDPAddr).Port
	probe.Close()
	s := &EchoServer{}
	if err := s.Apply(EchoServerConfig{Enable: true, Addr: "127.0.0.1", Port: port, EchoPlus: true}); err != nil {
		f.Skip(err)
	}
	f.Cleanup(s.Close)
	f.Fuzz(func(t *testing.T, data []byte) {
		if h, err := ParseEchoPlus(data); err == nil {
			b := make([]byte, echoHeader)
			h.Put(b)
			if back, _ := ParseEchoPlus(b); back != h {
				t.Fatalf("header does not round-trip: %+v %+v", h, back)
			}
		} else if len(data) >= echoHeader {
			t.Fatalf("a %d-byte payload refused: %v", len(data), err)
		}
		if len(data) == 0 || len(data) > 1400 {
			return
		}
		c, err := net.DialUDP("udp", nil, s.LocalAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(data); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no answer to a %d-byte datagram: %v", len(data), err)
		}
		if n != len(data) {
			t.Fatalf("answered %d bytes for %d", n, len(data))
		}
		if len(data) >= echoHeader {
			h, _ := ParseEchoPlus(buf[:n])
			want, _ := ParseEchoPlus(data)
			if h.GenSN != want.GenSN {
				t.Fatalf("TestGenSN changed: %d, sent %d", h.GenSN, want.GenSN)
			}
		}
	})
}
