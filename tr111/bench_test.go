package tr111

import (
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"testing"

	"github.com/pion/stun/v3"
)

// BenchmarkUDPConnRequestInvalid parses and rejects datagrams that are not
// valid requests (a flood). Target: 200,000 per second on one core (5 µs).
func BenchmarkUDPConnRequestInvalid(b *testing.B) {
	bad := [][]byte{
		[]byte("GET http://198.51.100.7:40000?ts=1&id=1&un=u&cn=c HTTP/1.1\r\n\r\n"),
		[]byte("POST / HTTP/1.1\r\n\r\n"),
		[]byte("hello world"),
		FormatUDPConnRequest("198.51.100.7:40000", 100, "1", "someone-else", "cn", "pw"),
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if r, err := ParseUDPConnRequest(bad[i%len(bad)]); err == nil && r.Verify("cr-user", "pw", 0, "") == nil {
			b.Fatal("accepted")
		}
		i++
	}
}

// BenchmarkUDPConnRequestValid parses, validates and authenticates valid
// requests. Target: 100,000 per second on one core (10 µs).
func BenchmarkUDPConnRequestValid(b *testing.B) {
	msgs := make([][]byte, 1024)
	for i := range msgs {
		msgs[i] = FormatUDPConnRequest("198.51.100.7:40000", uint64(1_700_000_000+i), fmt.Sprint(i), "cr-user", "0123456789abcdef", "cr-pass")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r, err := ParseUDPConnRequest(msgs[i%len(msgs)])
		if err != nil || r.Verify("cr-user", "cr-pass", 0, "") != nil {
			b.Fatal(err)
		}
		i++
	}
}

func benchServer(b *testing.B) *Server {
	s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.pri.Close() })
	s.SetCredentials(map[string]Credential{"cpe-1": {STUNUsername: "cpe-1", STUNPassword: "secret"}})
	return s
}

// BenchmarkSTUNServerBinding answers unauthenticated Binding Requests
// (decode, build the response). Target: 100,000 per second on one core.
func BenchmarkSTUNServerBinding(b *testing.B) {
	s := benchServer(b)
	req, _ := buildSTUN(stun.BindingRequest, txID(NewTxID(false)), connReqBinding{}, paddedUsername("anyone"))
	from := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 9), Port: 50000}
	b.ReportAllocs()
	for b.Loop() {
		if out, _, _ := s.Respond(req, from, false); out == nil {
			b.Fatal("no answer")
		}
	}
}

// BenchmarkSTUNServerAuthenticated answers an authenticated BINDING-CHANGE
// (integrity checked, binding recorded, integrity in the answer). Target:
// no more than 3 times BenchmarkSTUNServerBinding.
func BenchmarkSTUNServerAuthenticated(b *testing.B) {
	s := benchServer(b)
	reqs := make([][]byte, 256)
	for i := range reqs {
		reqs[i], _ = buildSTUN(stun.BindingRequest, txID(NewTxID(false)), connReqBinding{}, bindingChange{}, paddedUsername("cpe-1"), classicIntegrity("secret"))
	}
	from := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 9), Port: 50000}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		out, _, _ := s.Respond(reqs[i%len(reqs)], from, false)
		if out == nil || out[0] != 0x01 || out[1] != 0x01 {
			b.Fatal("not a success")
		}
		i++
	}
}

// BenchmarkBindingMemory records 100,000 bindings and reports the heap
// they take per binding. Target: under 300 bytes.
func BenchmarkBindingMemory(b *testing.B) {
	const n = 100000
	users := make([]string, n)
	for i := range users {
		users[i] = fmt.Sprintf("cpe-%06d", i)
	}
	var per float64
	for b.Loop() {
		s := &Server{bindings: map[string]*binding{}, log: slog.New(slog.DiscardHandler)}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i, u := range users {
			s.record(u, &net.UDPAddr{IP: net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)), Port: 1024 + i%60000}, true, NewTxID(false))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(s)
	}
	b.ReportMetric(per, "B/binding")
}

// BenchmarkOption125Parse: decode a client's option 125 and read its
// Device Identity, validated (target: under 1 µs).
func BenchmarkOption125Parse(b *testing.B) {
	raw := Identity{ManufacturerOUI: "00D09E", SerialNumber: "SN0123456789", ProductClass: "SetTopBox"}.DeviceOption().ToBytes()
	b.ReportAllocs()
	for b.Loop() {
		o, err := ParseOption125(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := o.DeviceIdentity(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOption125Build: encode the Gateway Identity a server answers
// with (target: under 1 µs).
func BenchmarkOption125Build(b *testing.B) {
	id := Identity{ManufacturerOUI: "001122", SerialNumber: "GW0123456789", ProductClass: "IGD"}
	b.ReportAllocs()
	for b.Loop() {
		if len(id.GatewayOption().ToBytes()) == 0 {
			b.Fatal("empty")
		}
	}
}
