package tr111

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/pion/stun/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var testCreds = map[string]Credential{"cpe-7": {STUNUsername: "cpe-7", STUNPassword: "pw7", CRUsername: "u7", CRPassword: "c7"}}

func respond(t *testing.T, s *Server, req []byte, from *net.UDPAddr) (*Message, *net.UDPAddr) {
	t.Helper()
	out, to, _ := s.Respond(req, from, false)
	if out == nil {
		return nil, nil
	}
	m, err := DecodeSTUN(out)
	require.NoError(t, err)
	return m, to
}

func newTestServer(t *testing.T) *Server {
	s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", StateDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { s.pri.Close() })
	s.SetCredentials(testCreds)
	return s
}

// runServer runs s until the test ends.
func runServer(t *testing.T, s *Server) {
	testrun.Go(t, s.Run)
}

// loopbackCPE is a CPE's UDP socket on loopback.
func loopbackCPE(t *testing.T) *net.UDPConn {
	cpe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { cpe.Close() })
	return cpe
}

func TestServerAnswersInKind(t *testing.T) {
	s := newTestServer(t)
	from := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 5060}
	for _, cookie := range []bool{false, true} {
		id := NewTxID(cookie)
		req, err := buildSTUN(stun.BindingRequest, txID(id))
		require.NoError(t, err)
		m, to := respond(t, s, req, from)
		require.NotNil(t, m)
		assert.Equal(t, stun.BindingSuccess, m.Type)
		assert.Equal(t, id, m.ID, "the 16-byte ID is echoed")
		assert.Equal(t, from.String(), to.String())
		mapped, err := m.Address(stun.AttrMappedAddress)
		require.NoError(t, err)
		assert.Equal(t, from.String(), mapped.String())
		ch, err := m.Address(AttrChangedAddress)
		require.NoError(t, err)
		assert.Equal(t, s.Addr().Port, ch.Port, "without a secondary, CHANGED-ADDRESS is the primary")
		assert.Equal(t, cookie, m.Has(stun.AttrXORMappedAddress), "XOR-MAPPED-ADDRESS only with the cookie")
	}

	// RESPONSE-ADDRESS is honoured for another port of the request's own
	// address (TR-111 binding-timeout discovery); CHANGE-REQUEST is
	// ignored without a secondary.
	ra := &net.UDPAddr{IP: from.IP, Port: 4000}
	req, _ := buildSTUN(stun.BindingRequest, txID(NewTxID(false)), addressAttr{AttrResponseAddress, ra}, changeRequest{ip: true})
	m, to := respond(t, s, req, from)
	require.NotNil(t, m)
	assert.Equal(t, ra.String(), to.String())
	rf, err := m.Address(AttrReflectedFrom)
	require.NoError(t, err)
	assert.Equal(t, from.String(), rf.String())

	// A third party's address is refused to an unauthenticated request: the
	// server is no reflector (the answer, a 401, goes to the source).
	third := &net.UDPAddr{IP: net.IPv4(203, 0, 113, 5), Port: 4000}
	req, _ = buildSTUN(stun.BindingRequest, txID(NewTxID(false)), addressAttr{AttrResponseAddress, third})
	m, to = respond(t, s, req, from)
	require.NotNil(t, m)
	assert.Equal(t, from.String(), to.String())
	assert.Equal(t, 401, m.ErrorCode())

	out, _, _ := s.Respond([]byte("GET http://x HTTP/1.1\r\n\r\n"), from, false)
	assert.Nil(t, out)
	resp, _ := buildSTUN(stun.BindingSuccess, txID(NewTxID(false)))
	out, _, _ = s.Respond(resp, from, false)
	assert.Nil(t, out, "only requests are answered")
}

// changeRequest sets CHANGE-REQUEST (tests only: the CPE never needs it).
type changeRequest struct{ ip, port bool }

func (c changeRequest) AddTo(m *stun.Message) error {
	v := []byte{0, 0, 0, 0}
	if c.ip {
		v[3] |= 4
	}
	if c.port {
		v[3] |= 2
	}
	m.Add(AttrChangeRequest, v)
	return nil
}

func TestServerAuthenticatedBindingChange(t *testing.T) {
	s := newTestServer(t)
	from := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 2), Port: 61000}
	change := func(id TxID, key []byte) []byte {
		set := []stun.Setter{stun.BindingRequest, txID(id), connReqBinding{}, bindingChange{}, paddedUsername("cpe-7")}
		if key != nil {
			if id.HasCookie() {
				set = append(set, stun.NewShortTermIntegrity(string(key)))
			} else {
				set = append(set, classicIntegrity(key))
			}
		}
		b, err := buildSTUN(set...)
		require.NoError(t, err)
		return b
	}
	m, _ := respond(t, s, change(NewTxID(false), nil), from)
	assert.Equal(t, 401, m.ErrorCode(), "BINDING-CHANGE without integrity is challenged")
	assert.Empty(t, s.Bindings())

	m, _ = respond(t, s, change(NewTxID(false), []byte("wrong")), from)
	assert.Equal(t, 431, m.ErrorCode(), "a failed authentication gets an error")
	assert.Empty(t, s.Bindings(), "and nothing else")

	id := NewTxID(false)
	m, _ = respond(t, s, change(id, []byte("pw7")), from)
	require.Equal(t, stun.BindingSuccess, m.Type)
	assert.True(t, m.CheckIntegrity([]byte("pw7")), "the response carries integrity in kind")
	bs := s.Bindings()
	require.Len(t, bs, 1)
	assert.Equal(t, from.String(), bs[0].Address)
	updated := bs[0].Updated

	// A copy of the same transaction from elsewhere changes nothing.
	other := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 3), Port: 1}
	respond(t, s, change(id, []byte("pw7")), other)
	assert.Equal(t, from.String(), s.Bindings()[0].Address)

	// RFC 5389 integrity is accepted too.
	m, _ = respond(t, s, change(NewTxID(true), []byte("pw7")), other)
	require.Equal(t, stun.BindingSuccess, m.Type)
	assert.Equal(t, other.String(), s.Bindings()[0].Address)
	assert.True(t, s.Bindings()[0].Updated.After(updated) || s.Bindings()[0].Updated.Equal(updated))

	// A periodic request with CONNECTION-REQUEST-BINDING from the recorded
	// address refreshes it; from another address it must authenticate.
	keep, _ := buildSTUN(stun.BindingRequest, txID(NewTxID(false)), connReqBinding{}, paddedUsername("cpe-7"))
	m, _ = respond(t, s, keep, other)
	assert.Equal(t, stun.BindingSuccess, m.Type)
	m, _ = respond(t, s, keep, from)
	assert.Equal(t, 401, m.ErrorCode())
	assert.Equal(t, other.String(), s.Bindings()[0].Address)
}

// TestServerNoReflection: a flood of requests whose RESPONSE-ADDRESS names
// a third party puts nothing on that party (it once got 19,195 replies of
// 20,000, 2.4 times the bytes sent); another port of the sender's own
// address, and an authenticated request, are still answered there.
func TestServerNoReflection(t *testing.T) {
	s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	s.SetCredentials(testCreds)
	runServer(t, s)
	listen := func(ip net.IP) *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c
	}
	attacker := listen(net.IPv4(127, 0, 0, 1))
	victim := listen(net.IPv4(127, 0, 0, 2)) // another host on loopback
	ownPort := listen(net.IPv4(127, 0, 0, 1))
	count := func(c *net.UDPConn, within time.Duration) int {
		n := 0
		buf := make([]byte, 1500)
		for {
			c.SetReadDeadline(time.Now().Add(within))
			if _, _, err := c.ReadFromUDP(buf); err != nil {
				return n
			}
			n++
		}
	}
	for i := 0; i < 2000; i++ {
		req, _ := buildSTUN(stun.BindingRequest, txID(NewTxID(false)), addressAttr{AttrResponseAddress, victim.LocalAddr().(*net.UDPAddr)})
		attacker.WriteToUDP(req, s.Addr())
	}
	assert.Zero(t, count(victim, 300*time.Millisecond), "nothing reaches the third party")
	assert.Greater(t, count(attacker, 100*time.Millisecond), 0, "the sender gets its 401s")

	req, _ := buildSTUN(stun.BindingRequest, txID(NewTxID(false)), addressAttr{AttrResponseAddress, ownPort.LocalAddr().(*net.UDPAddr)})
	attacker.WriteToUDP(req, s.Addr())
	assert.Equal(t, 1, count(ownPort, 300*time.Millisecond), "another port of the sender's own address is answered")

	req, _ = buildSTUN(stun.BindingRequest, txID(NewTxID(false)), addressAttr{AttrResponseAddress, victim.LocalAddr().(*net.UDPAddr)},
		paddedUsername("cpe-7"), classicIntegrity("pw7"))
	attacker.WriteToUDP(req, s.Addr())
	assert.Equal(t, 1, count(victim, 300*time.Millisecond), "an authenticated request may name any address")
}

func TestServerConnectionRequestsAndPersistence(t *testing.T) {
	dir := t.TempDir()
	s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", StateDir: dir, Spacing: time.Millisecond})
	require.NoError(t, err)
	s.SetCredentials(testCreds)
	cpe, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer cpe.Close()
	id := NewTxID(false)
	req, _ := buildSTUN(stun.BindingRequest, txID(id), connReqBinding{}, bindingChange{}, paddedUsername("cpe-7"), classicIntegrity("pw7"))
	_, _, _ = s.Respond(req, cpe.LocalAddr().(*net.UDPAddr), false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()

	_, err = s.ConnectionRequest(ctx, "cpe-7")
	require.NoError(t, err)
	var got []string
	cpe.SetReadDeadline(time.Now().Add(2 * time.Second))
	for len(got) < 3 {
		buf := make([]byte, 1500)
		n, from, err := cpe.ReadFromUDP(buf)
		require.NoError(t, err)
		assert.Equal(t, s.Addr().Port, from.Port, "sent from the STUN socket itself")
		got = append(got, string(buf[:n]))
	}
	assert.Equal(t, got[0], got[1], "identical copies")
	assert.Equal(t, got[0], got[2])
	r, err := ParseUDPConnRequest([]byte(got[0]))
	require.NoError(t, err)
	assert.NoError(t, r.Verify("u7", "c7", 0, ""))
	assert.True(t, strings.HasPrefix(got[0], "GET http://"+cpe.LocalAddr().String()+"?"), "Authority from the binding, empty path")
	_, err = s.ConnectionRequest(ctx, "nobody")
	assert.ErrorIs(t, err, ErrUnknownCPE)

	cancel()
	<-done
	s2, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", StateDir: dir})
	require.NoError(t, err)
	defer s2.pri.Close()
	require.Len(t, s2.Bindings(), 1, "bindings survive a restart")
	assert.Equal(t, cpe.LocalAddr().String(), s2.Bindings()[0].Address)
}

func TestParseCredentials(t *testing.T) {
	c, err := ParseCredentials(strings.NewReader("# comment\ncpe-1 p1 cr1 cp1\n\n  cpe-2\tp2 cr2 cp2 # trailing\n"))
	require.NoError(t, err)
	assert.Equal(t, Credential{STUNUsername: "cpe-2", STUNPassword: "p2", CRUsername: "cr2", CRPassword: "cp2"}, c["cpe-2"])
	_, err = ParseCredentials(strings.NewReader("cpe-1 p1 cr1\n"))
	assert.ErrorContains(t, err, "line 1")
	_, err = ParseCredentials(strings.NewReader("a b c d\na e f g\n"))
	assert.ErrorContains(t, err, "twice")
}

func TestServerAPI(t *testing.T) {
	s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", Spacing: time.Millisecond})
	require.NoError(t, err)
	s.SetCredentials(testCreds)
	runServer(t, s)
	cpe := loopbackCPE(t)
	req, _ := buildSTUN(stun.BindingRequest, txID(NewTxID(false)), connReqBinding{}, bindingChange{}, paddedUsername("cpe-7"), classicIntegrity("pw7"))
	s.Respond(req, cpe.LocalAddr().(*net.UDPAddr), false)

	api := httptest.NewServer(s.Handler(APIConfig{Token: "t0ken"}))
	defer api.Close()
	do := func(method, p, token, ctype, body string) (int, string) {
		req, err := http.NewRequest(method, api.URL+p, strings.NewReader(body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	get := func(p string) string { _, b := do(http.MethodGet, p, "t0ken", "", ""); return b }
	assert.Equal(t, "ok\n", get("/healthz"))
	assert.Contains(t, get("/bindings"), `"username":"cpe-7"`)
	post := func(body string) (int, string) {
		return do(http.MethodPost, "/connection-request", "t0ken", "application/json", body)
	}

	// Without the token, or with another, nothing but /healthz answers.
	for _, tok := range []string{"", "wrong"} {
		code, _ := do(http.MethodGet, "/bindings", tok, "", "")
		assert.Equal(t, http.StatusUnauthorized, code)
		code, _ = do(http.MethodPost, "/connection-request", tok, "application/json", `{"username":"cpe-7"}`)
		assert.Equal(t, http.StatusUnauthorized, code)
	}
	code, _ := do(http.MethodGet, "/healthz", "", "", "")
	assert.Equal(t, http.StatusOK, code)
	// JSON whatever the Content-Type (curl -d sends a form type).
	code, body := do(http.MethodPost, "/connection-request", "t0ken", "application/x-www-form-urlencoded", `{"username":"cpe-7"}`)
	assert.Equal(t, http.StatusOK, code, body)
	cpe.SetReadDeadline(time.Now().Add(2 * time.Second))
	for i := 0; i < 3; i++ { // the copies of that request
		cpe.ReadFromUDP(make([]byte, 1500))
	}
	// An address with no binding, never seen: refused.
	code, body = post(`{"address":"127.0.0.1:9","cr_username":"x","cr_password":"y"}`)
	assert.Equal(t, http.StatusForbidden, code, body)
	code, body = post(`{"username":"cpe-7"}`)
	assert.Equal(t, 200, code, body)
	assert.Contains(t, body, cpe.LocalAddr().String())
	cpe.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := cpe.ReadFromUDP(buf)
	require.NoError(t, err)
	r, err := ParseUDPConnRequest(buf[:n])
	require.NoError(t, err)
	assert.NoError(t, r.Verify("u7", "c7", 0, ""))

	code, _ = post(`{"username":"nobody"}`)
	assert.Equal(t, 404, code)
	code, body = post(`{"address":"` + cpe.LocalAddr().String() + `","cr_username":"x","cr_password":"y"}`)
	assert.Equal(t, 200, code, body)
	code, _ = post(`{}`)
	assert.Equal(t, 400, code)
	code, _ = post(`{bad json`)
	assert.Equal(t, 400, code)
}

func TestServerSecondaryAddress(t *testing.T) {
	s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", Secondary: "127.0.0.1:0"})
	require.NoError(t, err)
	defer s.pri.Close()
	defer s.sec.Close()
	from := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 5060}
	req, _ := buildSTUN(stun.BindingRequest, txID(NewTxID(false)))
	out, _, via := s.Respond(req, from, false)
	require.NotNil(t, out)
	m, _ := DecodeSTUN(out)
	ch, err := m.Address(AttrChangedAddress)
	require.NoError(t, err)
	assert.Equal(t, s.secA.Port, ch.Port, "CHANGED-ADDRESS names the secondary")
	assert.Equal(t, s.pri, via)
	req, _ = buildSTUN(stun.BindingRequest, txID(NewTxID(false)), changeRequest{ip: true, port: true})
	out, _, via = s.Respond(req, from, false)
	require.NotNil(t, out)
	assert.Equal(t, s.sec, via, "CHANGE-REQUEST is answered from the secondary")
	m, _ = DecodeSTUN(out)
	src, err := m.Address(AttrSourceAddress)
	require.NoError(t, err)
	assert.Equal(t, s.secA.Port, src.Port)
}

// TestServerSharePort: with SharePort an ACS can bind the STUN port for its
// own UDP Connection Requests (TR-111 2.2.2.3 wants them to leave from it),
// and the server keeps answering once the ACS's socket is closed.
func TestServerSharePort(t *testing.T) {
	bindShared := func(addr string) (net.PacketConn, error) {
		lc := net.ListenConfig{Control: reuseAddr}
		return lc.ListenPacket(context.Background(), "udp4", addr)
	}

	plain, err := NewServer(ServerConfig{Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	defer plain.pri.Close()
	_, err = bindShared(plain.Addr().String())
	require.Error(t, err, "without SharePort the port is the server's alone")

	s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", SharePort: true})
	require.NoError(t, err)
	runServer(t, s)
	cpe := loopbackCPE(t)

	// The ACS's socket, as GenieACS opens it with UDP_CONNECTION_REQUEST_PORT.
	acs, err := bindShared(s.Addr().String())
	require.NoError(t, err, "SharePort lets another SO_REUSEADDR socket bind the STUN port")
	_, err = acs.WriteTo([]byte("GET http://"+cpe.LocalAddr().String()+"?ts=1&id=1&un=u&cn=c&sig=0 HTTP/1.1\r\n\r\n"), cpe.LocalAddr())
	require.NoError(t, err)
	buf := make([]byte, 1500)
	cpe.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, from, err := cpe.ReadFromUDP(buf)
	require.NoError(t, err)
	assert.Equal(t, s.Addr().Port, from.Port, "the ACS's request leaves from the STUN port")
	require.NoError(t, acs.Close())

	id := NewTxID(false)
	req, _ := buildSTUN(stun.BindingRequest, txID(id))
	_, err = cpe.WriteTo(req, s.Addr())
	require.NoError(t, err)
	n, _, err := cpe.ReadFromUDP(buf)
	require.NoError(t, err, "the server still answers on the shared port")
	m, err := DecodeSTUN(buf[:n])
	require.NoError(t, err)
	assert.Equal(t, stun.BindingSuccess, m.Type)
	assert.Equal(t, id, m.ID)
}
