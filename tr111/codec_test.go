package tr111

import (
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rfc5769Request is the sample request of RFC 5769 section 2.1 (short-term
// credential "VOkJxbRl1RmTxUk/WvJxBt", MESSAGE-INTEGRITY then FINGERPRINT).
const rfc5769Request = "000100582112a442b7e7a701bc34d686fa87dfae" +
	"802200105354554e20746573742063" + "6c69656e74" +
	"002400046e0001ff" +
	"80290008932ff9b151263b36" +
	"000600096576746a3a68367659202020" +
	"000800149aeaa70cbfd8cb56781ef2b5b2d3f249c1b571a2" +
	"80280004e57a3bcf"

func TestRFC5769IntegrityAccepted(t *testing.T) {
	raw, err := hex.DecodeString(rfc5769Request)
	require.NoError(t, err)
	m, err := DecodeSTUN(raw)
	require.NoError(t, err)
	assert.Equal(t, stun.BindingRequest, m.Type)
	assert.True(t, m.ID.HasCookie())
	u, ok := m.Username()
	assert.True(t, ok)
	assert.Equal(t, "evtj:h6vY", u, "padding is trimmed")
	assert.True(t, m.CheckIntegrity([]byte("VOkJxbRl1RmTxUk/WvJxBt")), "the RFC 5389 variant is accepted")
	assert.False(t, m.CheckIntegrity([]byte("wrong")))
}

func TestClassicRequestRoundTrip(t *testing.T) {
	id := NewTxID(false)
	assert.False(t, id.HasCookie())
	resp := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 40000}
	b, err := buildSTUN(stun.BindingRequest, txID(id), connReqBinding{}, bindingChange{}, paddedUsername("cpe-1"),
		addressAttr{AttrResponseAddress, resp}, classicIntegrity("s3cret"))
	require.NoError(t, err)
	assert.Equal(t, id[:], b[4:20], "the 16-byte ID is on the wire, no cookie")
	assert.Equal(t, 0, len(b)%4)

	m, err := DecodeSTUN(b)
	require.NoError(t, err)
	assert.Equal(t, id, m.ID)
	v, ok := m.Get(AttrConnectionRequestBinding)
	require.True(t, ok)
	assert.Equal(t, ConnectionRequestBindingValue, string(v))
	assert.Len(t, v, 20)
	v, ok = m.Get(AttrBindingChange)
	assert.True(t, ok)
	assert.Empty(t, v)
	raw, _ := m.Get(stun.AttrUsername)
	assert.Equal(t, "cpe-1   ", string(raw), "USERNAME is padded to a multiple of 4")
	u, _ := m.Username()
	assert.Equal(t, "cpe-1", u)
	ra, err := m.Address(AttrResponseAddress)
	require.NoError(t, err)
	assert.Equal(t, resp.String(), ra.String())
	assert.True(t, m.CheckIntegrity([]byte("s3cret")), "RFC 3489 variant")
	assert.False(t, m.CheckIntegrity([]byte("s3cre")))
	_, err = m.Address(AttrChangedAddress)
	assert.ErrorIs(t, err, ErrNoAttribute)

	// Flipping a byte before the integrity attribute breaks it.
	b[25] ^= 1
	m2, err := DecodeSTUN(b)
	require.NoError(t, err)
	assert.False(t, m2.CheckIntegrity([]byte("s3cret")))
}

func TestDecodeSTUNRefusesJunk(t *testing.T) {
	for name, b := range map[string][]byte{
		"short":          {0, 1, 0, 0},
		"letter":         []byte("GET http://x?ts=1 HTTP/1.1\r\n\r\n"),
		"bad length":     append([]byte{0, 1, 0, 8}, make([]byte, 20)...),
		"odd length":     append([]byte{0, 1, 0, 2}, make([]byte, 18)...),
		"truncated attr": append([]byte{0, 1, 0, 4}, append(make([]byte, 16), 0, 1, 0, 8)...),
	} {
		_, err := DecodeSTUN(b)
		assert.ErrorIs(t, err, ErrNotSTUN, name)
	}
}

func TestUDPConnRequest(t *testing.T) {
	msg := FormatUDPConnRequest("203.0.113.9:7547", 1120673700, "1234", "CPE57689", "XTGRWIPC6D3IPXS3", "pw")
	assert.True(t, strings.HasPrefix(string(msg), "GET http://203.0.113.9:7547?ts=1120673700&id=1234&un=CPE57689&cn=XTGRWIPC6D3IPXS3&sig="))
	r, err := ParseUDPConnRequest(msg)
	require.NoError(t, err)
	assert.Equal(t, uint64(1120673700), r.TS)
	require.NoError(t, r.Verify("CPE57689", "pw", 0, ""))
	assert.ErrorIs(t, r.Verify("CPE57689", "pw", 1120673700, ""), ErrStale, "ts must be strictly greater")
	assert.ErrorIs(t, r.Verify("CPE57689", "pw", 1, "1234"), ErrRepeatedID)
	assert.ErrorIs(t, r.Verify("other", "pw", 0, ""), ErrWrongUser)
	assert.ErrorIs(t, r.Verify("CPE57689", "PW", 0, ""), ErrBadSignature)

	// GenieACS: lower-case sig, un not encoded, no path; others: upper case.
	up := strings.Replace(string(msg), hex.EncodeToString(Signature("pw", 1120673700, "1234", "CPE57689", "XTGRWIPC6D3IPXS3")),
		strings.ToUpper(hex.EncodeToString(Signature("pw", 1120673700, "1234", "CPE57689", "XTGRWIPC6D3IPXS3"))), 1)
	r, err = ParseUDPConnRequest([]byte(up))
	require.NoError(t, err)
	assert.NoError(t, r.Verify("CPE57689", "pw", 0, ""), "sig compares case-insensitively")

	raw := "GET http://10.0.0.1:7547?ts=5&id=9&un=a b&cn=x&sig=" + hex.EncodeToString(Signature("p", 5, "9", "a b", "x")) + " HTTP/1.1\r\n\r\n"
	_, err = ParseUDPConnRequest([]byte(raw))
	assert.Error(t, err, "a space inside the URI is not HTTP/1.1")
	enc := FormatUDPConnRequest("10.0.0.1:7547", 5, "9", "a b&c", "x", "p")
	r, err = ParseUDPConnRequest(enc)
	require.NoError(t, err)
	assert.Equal(t, "a b&c", r.UN)
	assert.NoError(t, r.Verify("a b&c", "p", 0, ""))

	withBody := append(FormatUDPConnRequest("h:80", 7, "1", "u", "c", "p"), []byte("ignored body")...)
	assert.True(t, strings.Contains(string(withBody), "GET http://h?ts"), "port 80 is left out of the Authority")
	r, err = ParseUDPConnRequest(withBody)
	require.NoError(t, err)
	assert.NoError(t, r.Verify("u", "p", 0, ""), "a body is ignored")

	for name, in := range map[string]string{
		"post":           "POST http://h?ts=1&id=1&un=u&cn=c&sig=" + strings.Repeat("a", 40) + " HTTP/1.1\r\n\r\n",
		"http/1.0":       "GET http://h?ts=1&id=1&un=u&cn=c&sig=" + strings.Repeat("a", 40) + " HTTP/1.0\r\n\r\n",
		"relative":       "GET /?ts=1&id=1&un=u&cn=c&sig=" + strings.Repeat("a", 40) + " HTTP/1.1\r\n\r\n",
		"https":          "GET https://h?ts=1&id=1&un=u&cn=c&sig=" + strings.Repeat("a", 40) + " HTTP/1.1\r\n\r\n",
		"missing cn":     "GET http://h?ts=1&id=1&un=u&sig=" + strings.Repeat("a", 40) + " HTTP/1.1\r\n\r\n",
		"short sig":      "GET http://h?ts=1&id=1&un=u&cn=c&sig=abc HTTP/1.1\r\n\r\n",
		"hex":            "GET http://h?ts=1&id=1&un=u&cn=c&sig=" + strings.Repeat("z", 40) + " HTTP/1.1\r\n\r\n",
		"bad ts":         "GET http://h?ts=x&id=1&un=u&cn=c&sig=" + strings.Repeat("a", 40) + " HTTP/1.1\r\n\r\n",
		"no end":         "GET http://h?ts=1&id=1&un=u&cn=c&sig=" + strings.Repeat("a", 40) + " HTTP/1.1\r\nHost: h\r\n",
		"bad header":     "GET http://h?ts=1&id=1&un=u&cn=c&sig=" + strings.Repeat("a", 40) + " HTTP/1.1\r\nno colon\r\n\r\n",
		"no host":        "GET http://?ts=1&id=1&un=u&cn=c&sig=" + strings.Repeat("a", 40) + " HTTP/1.1\r\n\r\n",
		"no query":       "GET http://h HTTP/1.1\r\n\r\n",
		"no Host header": "GET http://h:1?ts=7&id=1&un=u&cn=c&sig=" + hex.EncodeToString(Signature("p", 7, "1", "u", "c")) + " HTTP/1.1\r\nAccept: */*\r\n\r\n",
		"empty":          "",
		"stun":           "\x00\x01\x00\x00",
	} {
		_, err := ParseUDPConnRequest([]byte(in))
		assert.ErrorIs(t, err, ErrNotUDPConnRequest, name)
	}
}

// TestUDPTimestampBound: one validly signed request with a ts far in the
// future once locked out every later one until that time, across restarts
// (TR-111 2.2.1.4 compares with the last accepted ts only). A ts more than
// MaxAhead ahead of the CPE's clock is refused, and a recorded one beyond
// the bound counts from now.
func TestUDPTimestampBound(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	creds := func() (string, string) { return "cr", "pw" }
	req := func(ts uint64, id string) *UDPConnRequest {
		r, err := ParseUDPConnRequest(FormatUDPConnRequest("h:1", ts, id, "cr", "n", "pw"))
		require.NoError(t, err)
		return r
	}
	a := NewUDPAcceptor(creds, 0, nil)
	a.Now = func() time.Time { return now }
	far := uint64(now.Add(10 * 365 * 24 * time.Hour).Unix())
	assert.ErrorIs(t, a.Accept(req(far, "1")), ErrFutureTimestamp)
	assert.NoError(t, a.Accept(req(uint64(now.Unix()), "2")), "the ACS is not locked out")
	assert.NoError(t, a.Accept(req(uint64(now.Add(59*time.Minute).Unix()), "3")), "a skewed clock within the bound is fine")

	// Restored from before the bound existed: a far-future last ts.
	b := NewUDPAcceptor(creds, far, nil)
	b.Now = func() time.Time { return now }
	assert.NoError(t, b.Accept(req(uint64(now.Unix())+1, "4")))
	assert.ErrorIs(t, b.Accept(req(uint64(now.Unix())-10, "5")), ErrStale, "and older ones are still refused")

	// A CPE whose clock is not set (no RTC, before NTP) cannot bound it.
	c := NewUDPAcceptor(creds, 0, nil)
	c.Now = func() time.Time { return time.Unix(100, 0) }
	assert.NoError(t, c.Accept(req(far, "6")))

	// No password: nothing authenticates, whatever the signature.
	d := NewUDPAcceptor(func() (string, string) { return "cr", "" }, 0, nil)
	r, err := ParseUDPConnRequest(FormatUDPConnRequest("h:1", uint64(now.Unix()), "7", "cr", "n", ""))
	require.NoError(t, err)
	assert.ErrorIs(t, d.Accept(r), ErrBadSignature)
}
