package diag

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// icmpOK skips when this host gives neither ping sockets nor raw ones.
func icmpOK(t *testing.T, raw bool) {
	t.Helper()
	c, err := listenICMP(net.IPv4(127, 0, 0, 1), nil, raw)
	if err != nil {
		t.Skipf("no ICMP socket here (needs root or net.ipv4.ping_group_range): %v", err)
	}
	c.c.Close()
}

func TestRealPingLoopback(t *testing.T) {
	icmpOK(t, false)
	res, err := (&Real{}).Ping(context.Background(), PingRequest{Target: Target{Host: "127.0.0.1", Version: "Any"}, Count: 3, Timeout: time.Second, Size: 56})
	require.NoError(t, err)
	assert.Equal(t, 3, res.Success)
	assert.Equal(t, "127.0.0.1", res.Address.String())
	assert.Len(t, res.RTTs, 3)
}

func TestRealTraceRouteLoopback(t *testing.T) {
	icmpOK(t, true)
	res, err := (&Real{}).TraceRoute(context.Background(), TraceRequest{Target: Target{Host: "127.0.0.1", Version: "IPv4"}, Tries: 2, Timeout: time.Second, Size: 38, MaxHops: 5})
	require.NoError(t, err)
	assert.True(t, res.Reached)
	require.Len(t, res.Hops, 1, "loopback is one hop away")
	assert.Equal(t, "127.0.0.1", res.Hops[0].Address.String())
}

func TestRealPingUnresolvable(t *testing.T) {
	_, err := (&Real{}).Ping(context.Background(), PingRequest{Target: Target{Host: "192.0.2.1", Version: "IPv6"}, Count: 1, Timeout: time.Second})
	var f *Failure
	require.ErrorAs(t, err, &f)
	assert.Equal(t, ErrCannotResolve, f.State)
}

// HTTP download and upload against a local server: the TR-143 times are in
// order and the bytes counted include the HTTP headers.
func TestRealTransfers(t *testing.T) {
	const size = 2 << 20
	var got int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			n, _ := io.Copy(io.Discard, r.Body)
			got = n
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = w.Write(make([]byte, size))
	}))
	defer srv.Close()
	host, _, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	p := &Real{Counters: func(string) (int64, int64, error) { return time.Now().UnixNano() / 1000, 0, nil }}
	res, err := p.Download(context.Background(), TransferRequest{Target: Target{Host: host, Version: "Any", Interface: "lo"}, URL: srv.URL + "/f", Connections: 2,
		Interval: 0})
	require.NoError(t, err)
	require.Len(t, res.Connections, 2)
	for _, c := range res.Connections {
		assert.Greater(t, c.TestBytes, int64(size), "headers are counted")
		assert.False(t, c.TCPOpenRequest.After(c.TCPOpenResponse))
		assert.False(t, c.TCPOpenResponse.After(c.ROM))
		assert.False(t, c.ROM.After(c.BOM))
		assert.False(t, c.BOM.After(c.EOM))
	}
	assert.Greater(t, res.TotalRecv, int64(0), "interface counters sampled at BOM and EOM")

	res, err = p.Upload(context.Background(), TransferRequest{Target: Target{Host: host, Version: "Any"}, URL: srv.URL + "/u", Connections: 1, Length: size})
	require.NoError(t, err)
	assert.Equal(t, int64(size), got)
	require.Len(t, res.Connections, 1)
	assert.Greater(t, res.Connections[0].TestBytes, int64(size))
	assert.Equal(t, int64(0), res.TotalRecv, "no Interface: the totals cannot be determined and are 0")

	_, err = p.Download(context.Background(), TransferRequest{Target: Target{Host: host, Version: "Any"}, URL: srv.URL + "/f", Connections: 1})
	require.NoError(t, err)
	srv.Close()
	_, err = p.Download(context.Background(), TransferRequest{Target: Target{Host: host, Version: "Any"}, URL: srv.URL + "/f", Connections: 1})
	var f *Failure
	require.ErrorAs(t, err, &f)
	assert.Equal(t, ErrInitConnection, f.State)
}

// NSLookup against a DNS server on loopback.
func TestRealNSLookup(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	mux := dns.NewServeMux()
	mux.HandleFunc("example.test.", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if r.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR("example.test. 60 IN A 192.0.2.44")
			m.Answer = append(m.Answer, rr)
		}
		_ = w.WriteMsg(m)
	})
	mux.HandleFunc(".", func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		_ = w.WriteMsg(m)
	})
	srv := &dns.Server{PacketConn: pc, Handler: mux}
	go func() { _ = srv.ActivateAndServe() }()
	defer srv.Shutdown()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	p := &Real{DNSPort: port}
	res, err := p.NSLookup(context.Background(), LookupRequest{HostName: "example.test", Server: "127.0.0.1", Timeout: time.Second, Count: 2})
	require.NoError(t, err)
	require.Len(t, res.Results, 2)
	l := res.Results[0]
	assert.Equal(t, "Success", l.Status)
	assert.True(t, l.Authoritative)
	assert.Equal(t, "example.test", l.HostName)
	require.Len(t, l.Addresses, 1)
	assert.Equal(t, "192.0.2.44", l.Addresses[0].String())

	res, err = p.NSLookup(context.Background(), LookupRequest{HostName: "other.test", Server: "127.0.0.1", Timeout: time.Second, Count: 1})
	require.NoError(t, err)
	assert.Equal(t, "Error_HostNameNotResolved", res.Results[0].Status)
}

// The UDP Echo Plus header round-trips; a short payload is refused.
func TestEchoPlusCodec(t *testing.T) {
	b := make([]byte, 24)
	h := EchoPlus{GenSN: 1, RespSN: 2, RecvTimestamp: 3, ReplyTimestamp: 4, FailureCount: 5}
	h.Put(b)
	got, err := ParseEchoPlus(b)
	require.NoError(t, err)
	assert.Equal(t, h, got)
	assert.Equal(t, []byte{0, 0, 0, 1}, b[:4], "network byte order")
	_, err = ParseEchoPlus(b[:19])
	assert.Error(t, err)
}
