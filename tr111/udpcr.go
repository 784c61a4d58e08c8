package tr111

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// UDPConnRequest is a parsed UDP Connection Request (TR-111 2.2.2.3):
//
//	GET http://host:port?ts=...&id=...&un=...&cn=...&sig=... HTTP/1.1
//
// The fields hold the query values as they appear on the wire (Raw*) and
// URL-decoded.
type UDPConnRequest struct {
	TS  uint64
	ID  string
	UN  string
	CN  string
	Sig []byte // the 20 bytes of the signature

	rawID, rawUN, rawCN string
}

// Errors of ParseUDPConnRequest and Verify. A CPE ignores a request that
// fails, silently (TR-111 2.2.1.4); the errors are for logs and tests.
var (
	ErrNotUDPConnRequest = errors.New("tr111: not a valid UDP Connection Request")
	ErrStale             = errors.New("tr111: timestamp not after the last accepted one")
	ErrRepeatedID        = errors.New("tr111: message ID equal to the last accepted one")
	ErrWrongUser         = errors.New("tr111: username does not match")
	ErrBadSignature      = errors.New("tr111: signature does not match")
	ErrFutureTimestamp   = errors.New("tr111: timestamp too far ahead of the CPE's clock")
	ErrRateLimited       = errors.New("tr111: Connection Request refused by the rate limit")
)

// Why a datagram is not a UDP Connection Request; made once, so that a
// flood of invalid datagrams costs no allocation per datagram.
var (
	errNoRequestLine = bad("no request line")
	errNotGET        = bad("method is not GET")
	errNotHTTP11     = bad("version is not HTTP/1.1")
	errHeaders       = bad("header section not terminated")
	errHeaderLine    = bad("malformed header line")
	errNoHostHeader  = bad("no Host header (RFC 2616 14.23)")
	errNotAbsolute   = bad("Request-URI is not an absolute http URI")
	errNoQuery       = bad("no query")
	errNoAuthority   = bad("no authority")
	errURIChars      = bad("invalid characters in the Request-URI")
	errMissingArgs   = bad("ts, id, un, cn and sig are required")
	errTS            = bad("ts is not a number")
	errSigLength     = bad("sig is not 40 hexadecimal digits")
	errSigHex        = bad("sig is not hexadecimal")
)

func bad(why string) error { return fmt.Errorf("%w: %s", ErrNotUDPConnRequest, why) }

// ParseUDPConnRequest checks that b is an HTTP/1.1 GET request message
// (TR-111 2.2.1.4: valid per RFC 2616, so with a Host header) with an
// absolute http URI, and reads its query. A message body is ignored.
func ParseUDPConnRequest(b []byte) (*UDPConnRequest, error) {
	line, rest, ok := bytes.Cut(b, []byte("\r\n"))
	if !ok {
		return nil, errNoRequestLine
	}
	// Request-Line = Method SP Request-URI SP HTTP-Version (RFC 2616 5.1)
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 < 0 || string(line[:sp1]) != "GET" {
		return nil, errNotGET
	}
	uri := line[sp1+1:]
	sp2 := bytes.IndexByte(uri, ' ')
	if sp2 < 0 || string(uri[sp2+1:]) != "HTTP/1.1" {
		return nil, errNotHTTP11
	}
	uri = uri[:sp2]
	// Headers: each "name: value", then an empty line. HTTP/1.1 requires
	// a Host header (RFC 2616 14.23); with an absolute Request-URI its
	// value is ignored (RFC 2616 5.2).
	host := false
	for {
		h, r, ok := bytes.Cut(rest, []byte("\r\n"))
		if !ok {
			return nil, errHeaders
		}
		rest = r
		if len(h) == 0 {
			break
		}
		c := bytes.IndexByte(h, ':')
		if c <= 0 || bytes.ContainsAny(h[:c], " \t") {
			return nil, errHeaderLine
		}
		if c == 4 && bytes.EqualFold(h[:4], []byte("host")) {
			host = true
		}
	}
	if !host {
		return nil, errNoHostHeader
	}
	if len(uri) < 7 || !strings.EqualFold(string(uri[:7]), "http://") {
		return nil, errNotAbsolute
	}
	q := bytes.IndexByte(uri, '?')
	if q < 0 {
		return nil, errNoQuery
	}
	authority := uri[7:q]
	if i := bytes.IndexByte(authority, '/'); i >= 0 {
		authority = authority[:i]
	}
	if len(authority) == 0 {
		return nil, errNoAuthority
	}
	if bytes.ContainsAny(uri, " \t\"<>\\^`{|}") || bytes.IndexByte(uri[q+1:], '#') >= 0 {
		return nil, errURIChars
	}
	r := &UDPConnRequest{}
	var ts, sig []byte
	have := 0
	for qs := uri[q+1:]; len(qs) > 0; {
		var kv []byte
		kv, qs, _ = bytes.Cut(qs, []byte("&"))
		k, v, _ := bytes.Cut(kv, []byte("="))
		switch string(k) {
		case "ts":
			ts, have = v, have|1
		case "id":
			r.rawID, have = string(v), have|2
		case "un":
			r.rawUN, have = string(v), have|4
		case "cn":
			r.rawCN, have = string(v), have|8
		case "sig":
			sig, have = v, have|16
		}
	}
	if have != 31 {
		return nil, errMissingArgs
	}
	n, err := strconv.ParseUint(string(ts), 10, 64)
	if err != nil {
		return nil, errTS
	}
	r.TS = n
	if len(sig) != 40 {
		return nil, errSigLength
	}
	r.Sig = make([]byte, 20)
	if _, err := hex.Decode(r.Sig, sig); err != nil {
		return nil, errSigHex // hex.Decode takes both cases
	}
	// application/x-www-form-urlencoded values; GenieACS does not encode
	// "un", so a value that does not decode is taken as written.
	r.ID, r.UN, r.CN = unescape(r.rawID), unescape(r.rawUN), unescape(r.rawCN)
	return r, nil
}

func unescape(s string) string {
	if strings.IndexAny(s, "%+") < 0 {
		return s
	}
	if v, err := url.QueryUnescape(s); err == nil {
		return v
	}
	return s
}

// Signature computes the TR-111 2.2.2.3 signature: HMAC-SHA1 keyed with
// ConnectionRequestPassword over ts, id, un and cn concatenated.
func Signature(password string, ts uint64, id, un, cn string) []byte {
	mac := hmac.New(sha1.New, []byte(password))
	mac.Write(strconv.AppendUint(nil, ts, 10))
	mac.Write([]byte(id))
	mac.Write([]byte(un))
	mac.Write([]byte(cn))
	return mac.Sum(nil)
}

// Verify validates and authenticates a request against the CPE's state
// (TR-111 2.2.1.4): ts strictly greater than the last accepted, id
// different from the last accepted, un equal to ConnectionRequestUsername,
// sig equal to the signature with ConnectionRequestPassword. The caller
// records ts and id only when Verify returns nil.
func (r *UDPConnRequest) Verify(username, password string, lastTS uint64, lastID string) error {
	if r.UN != username && r.rawUN != username {
		return ErrWrongUser
	}
	if r.TS <= lastTS {
		return ErrStale
	}
	if r.ID == lastID && lastID != "" {
		return ErrRepeatedID
	}
	if hmac.Equal(r.Sig, Signature(password, r.TS, r.ID, r.UN, r.CN)) {
		return nil
	}
	// A sender may have signed the values as it wrote them, unescaped.
	if (r.rawID != r.ID || r.rawUN != r.UN || r.rawCN != r.CN) && hmac.Equal(r.Sig, Signature(password, r.TS, r.rawID, r.rawUN, r.rawCN)) {
		return nil
	}
	return ErrBadSignature
}

// FormatUDPConnRequest builds a UDP Connection Request message as the ACS
// sends it (TR-111 2.2.2.3): the Authority is authority ("host:port", the
// port left out for 80), the path empty, the signature in hex.
func FormatUDPConnRequest(authority string, ts uint64, id, username, cnonce, password string) []byte {
	sig := hex.EncodeToString(Signature(password, ts, id, username, cnonce))
	authority = strings.TrimSuffix(authority, ":80")
	var b bytes.Buffer
	b.WriteString("GET http://")
	b.WriteString(authority)
	b.WriteString("?ts=")
	b.WriteString(strconv.FormatUint(ts, 10))
	b.WriteString("&id=")
	b.WriteString(url.QueryEscape(id))
	b.WriteString("&un=")
	b.WriteString(url.QueryEscape(username))
	b.WriteString("&cn=")
	b.WriteString(url.QueryEscape(cnonce))
	b.WriteString("&sig=")
	b.WriteString(sig)
	b.WriteString(" HTTP/1.1\r\nHost: ")
	b.WriteString(authority)
	b.WriteString("\r\n\r\n")
	return b.Bytes()
}

// UDPOutcome names what became of a UDP Connection Request for metrics:
// "accepted" (err nil), "invalid" (not a well-formed request), "replayed"
// (ts not newer or id repeated, TR-111 2.2.1.4), "future_timestamp",
// "auth_failed", "rate_limited".
func UDPOutcome(err error) string {
	switch {
	case err == nil:
		return "accepted"
	case errors.Is(err, ErrStale), errors.Is(err, ErrRepeatedID):
		return "replayed"
	case errors.Is(err, ErrFutureTimestamp):
		return "future_timestamp"
	case errors.Is(err, ErrWrongUser), errors.Is(err, ErrBadSignature):
		return "auth_failed"
	case errors.Is(err, ErrRateLimited):
		return "rate_limited"
	}
	return "invalid"
}

// DefaultMaxAhead is how far ahead of the CPE's clock a UDP Connection
// Request's ts may be. TR-111 2.2.1.4 compares ts only with the last one
// accepted, so one validly signed request from a sender whose clock is far
// ahead would otherwise lock out every later request until that time, and
// across restarts where the ts is kept. An ACS whose clock is ahead by
// more than this is refused until its clock is put right.
const DefaultMaxAhead = time.Hour

// clockIsSet is a date before which the CPE's clock is taken as not set
// (a device without a battery-backed clock, before NTP): the bound on ts
// then does not apply, since it would refuse every request.
var clockIsSet = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// UDPAcceptor keeps one CPE's state for UDP Connection Requests (TR-111
// 2.2.1.4): the last accepted ts and id, recorded only after success. The
// CPE client uses one; a fleet routes datagrams arriving on its shared port
// to each virtual CPE's acceptor by `un`.
type UDPAcceptor struct {
	// Credentials returns ConnectionRequestUsername and Password.
	Credentials func() (user, pass string)
	// Save persists the accepted ts (nil: kept in memory only).
	Save func(ts uint64)
	// Now is the CPE's clock (nil: time.Now) and MaxAhead how far ahead of
	// it a ts may be (0: DefaultMaxAhead; negative: no bound).
	Now      func() time.Time
	MaxAhead time.Duration
	// Allow, when set, is asked once a request is valid and authentic: the
	// CPE's one Connection Request rate limit, shared with HTTP. A refused
	// request is not recorded, so that a later copy or retry may pass.
	Allow func() bool

	mu     sync.Mutex
	lastTS uint64
	lastID string
}

// NewUDPAcceptor starts from a saved ts (0: none).
func NewUDPAcceptor(creds func() (string, string), lastTS uint64, save func(uint64)) *UDPAcceptor {
	return &UDPAcceptor{Credentials: creds, Save: save, lastTS: lastTS}
}

func (u *UDPAcceptor) now() time.Time {
	if u.Now != nil {
		return u.Now()
	}
	return time.Now()
}

// limit is the highest ts acceptable now; 0 means no bound.
func (u *UDPAcceptor) limit() uint64 {
	now := u.now()
	ahead := u.MaxAhead
	if ahead == 0 {
		ahead = DefaultMaxAhead
	}
	if ahead < 0 || now.Before(clockIsSet) {
		return 0
	}
	return uint64(now.Add(ahead).Unix())
}

// Accept verifies r and, on success, records its ts and id.
func (u *UDPAcceptor) Accept(r *UDPConnRequest) error {
	user, pass := u.Credentials()
	if pass == "" {
		// No password, no authentication: an empty key would let anyone
		// sign (the agent generates credentials at first start).
		return ErrBadSignature
	}
	limit := u.limit()
	u.mu.Lock()
	last := u.lastTS
	if limit > 0 && last > limit {
		// Recorded before the bound existed, or the clock went back: a ts
		// beyond the bound must not lock requests out. Count from now.
		last = uint64(u.now().Unix())
		u.lastTS = last
	}
	err := r.Verify(user, pass, last, u.lastID)
	if err == nil && limit > 0 && r.TS > limit {
		err = ErrFutureTimestamp
	}
	if err == nil && u.Allow != nil && !u.Allow() {
		err = ErrRateLimited
	}
	if err == nil {
		u.lastTS, u.lastID = r.TS, r.ID
	}
	u.mu.Unlock()
	if err == nil && u.Save != nil {
		u.Save(r.TS)
	}
	return err
}
