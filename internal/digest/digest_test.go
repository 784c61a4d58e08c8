package digest

import (
	"crypto/md5"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The RFC 2617 section 3.5 example.
func TestRFC2617Vector(t *testing.T) {
	got := response("Mufasa", "testrealm@host.com", "Circle Of Life", "", "dcd98b7102dd2f0e8b11d0f600bfb0c093",
		"0a4f113b", "00000001", "auth", "GET", "/dir/index.html")
	assert.Equal(t, "6629fae49393a05397450978507c4ef1", got)
}

func TestParseChallenges(t *testing.T) {
	chs := ParseChallenges([]string{
		`Digest realm="GenieACS", qop="auth,auth-int", nonce="abc\"d", opaque="o", algorithm=MD5`,
		`Basic realm="x"`,
	})
	require.Len(t, chs, 2)
	assert.Equal(t, "Digest", chs[0].Scheme)
	assert.Equal(t, "GenieACS", chs[0].Realm)
	assert.Equal(t, `abc"d`, chs[0].Nonce)
	assert.Equal(t, []string{"auth", "auth-int"}, chs[0].QOP)
	assert.Equal(t, "Basic", chs[1].Scheme)

	var c Client
	c.Username, c.Password = "u", "p"
	require.NoError(t, c.Accept(chs))
	assert.Contains(t, c.Authorization("POST", "/acs"), `Digest username="u"`)
	assert.Contains(t, c.Authorization("POST", "/acs"), "nc=00000002", "nc counts up")
	require.NoError(t, c.Accept(chs[1:]))
	assert.Equal(t, "Basic dTpw", c.Authorization("POST", "/"))
	assert.ErrorIs(t, c.Accept(ParseChallenges([]string{`Negotiate x`})), ErrUnsupported)
	assert.ErrorIs(t, c.Accept(ParseChallenges([]string{`Digest realm="r", nonce="n", algorithm=SHA-512`})), ErrUnsupported)
}

func TestServerRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := &Server{Realm: "cwmp-agent", Now: func() time.Time { return now }}
	var c Client
	c.Username, c.Password = "acs", "secret"
	require.NoError(t, c.Accept(ParseChallenges([]string{s.Challenge(false)})))

	auth := c.Authorization("GET", "/cr/abc")
	assert.Equal(t, OK, s.Check(auth, "GET", "/cr/abc", "acs", "secret"))
	assert.Equal(t, Denied, s.Check(auth, "GET", "/cr/abc", "acs", "secret"), "the same nc again is a replay")
	assert.Equal(t, OK, s.Check(c.Authorization("GET", "/cr/abc"), "GET", "/cr/abc", "acs", "secret"))
	assert.Equal(t, Denied, s.Check(c.Authorization("GET", "/"), "GET", "/cr/abc", "acs", "secret"), "uri must match the request")
	assert.Equal(t, Denied, s.Check(c.Authorization("GET", "/cr/abc"), "GET", "/cr/abc", "acs", "other"), "wrong password")
	assert.Equal(t, Denied, s.Check(c.Authorization("GET", "/cr/abc"), "GET", "/cr/abc", "someone", "secret"), "wrong user")
	assert.Equal(t, OK, s.Check(c.Authorization("GET", "http://192.0.2.1:7547/cr/abc"), "GET", "/cr/abc", "acs", "secret"), "absolute uri form")
	assert.Equal(t, Denied, s.Check("Basic YWNzOnNlY3JldA==", "GET", "/cr/abc", "acs", "secret"))

	now = now.Add(10 * time.Minute)
	assert.Equal(t, Stale, s.Check(c.Authorization("GET", "/cr/abc"), "GET", "/cr/abc", "acs", "secret"))

	other := &Server{Realm: "cwmp-agent"}
	assert.Equal(t, Denied, other.Check(c.Authorization("GET", "/cr/abc"), "GET", "/cr/abc", "acs", "secret"), "a nonce from another server")
}

func TestNoQOPClientGetsOneUse(t *testing.T) {
	s := &Server{Realm: "r"}
	ch := ParseChallenges([]string{s.Challenge(false)})
	ch[0].QOP = nil
	var c Client
	c.Username, c.Password = "u", "p"
	require.NoError(t, c.Accept(ch))
	a := c.Authorization("GET", "/x")
	assert.Equal(t, OK, s.Check(a, "GET", "/x", "u", "p"))
	assert.Equal(t, Denied, s.Check(a, "GET", "/x", "u", "p"))
}

func TestCheckBasic(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth("u", "p:q")
	assert.True(t, CheckBasic(r.Header.Get("Authorization"), "u", "p:q"))
	assert.False(t, CheckBasic(r.Header.Get("Authorization"), "u", "p"))
	assert.False(t, CheckBasic("Basic !!", "u", "p"))
}

// TestCompactAuthorization: an Authorization written with no spaces after
// the commas and algorithm, qop and nc unquoted (as GenieACS writes its
// Connection Requests) is accepted.
func TestCompactAuthorization(t *testing.T) {
	s := &Server{Realm: "cwmp-agent"}
	ch := ParseChallenges([]string{s.Challenge(false)})
	require.Len(t, ch, 1)
	md5hex := func(v string) string { h := md5.Sum([]byte(v)); return hex.EncodeToString(h[:]) }
	ha1 := md5hex("acs:cwmp-agent:secret")
	ha2 := md5hex("GET:/cr/abc")
	resp := md5hex(ha1 + ":" + ch[0].Nonce + ":00000001:0a1b2c3d4e5f6071:auth:" + ha2)
	auth := `Digest username="acs",realm="cwmp-agent",nonce="` + ch[0].Nonce + `",uri="/cr/abc",algorithm=MD5,qop=auth,nc=00000001,cnonce="0a1b2c3d4e5f6071",response="` + resp + `"`
	assert.Equal(t, OK, s.Check(auth, "GET", "/cr/abc", "acs", "secret"))
	assert.Equal(t, Denied, s.Check(auth, "GET", "/cr/abc", "acs", "secret"), "replayed")
}
