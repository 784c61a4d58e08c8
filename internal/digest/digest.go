// Package digest implements HTTP Digest access authentication (RFC 2617, MD5
// and MD5-sess, qop "auth" or none) on both sides: the client side signs the
// agent's POSTs to the ACS and its file transfers, the server side checks
// Connection Requests (TR-069 3.2.2) and the test ACS's challenges.
package digest

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Challenge is one parsed WWW-Authenticate challenge.
type Challenge struct {
	Scheme    string // "Digest" or "Basic"
	Realm     string
	Nonce     string
	Opaque    string
	Algorithm string   // "MD5" (also when absent) or "MD5-sess"
	QOP       []string // offered qop values
	Stale     bool
}

// ParseChallenges reads every challenge of the WWW-Authenticate headers.
func ParseChallenges(headers []string) []Challenge {
	var out []Challenge
	for _, h := range headers {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
		c := Challenge{Scheme: canonicalScheme(scheme)}
		params := parseParams(rest)
		c.Realm = params["realm"]
		c.Nonce = params["nonce"]
		c.Opaque = params["opaque"]
		c.Algorithm = params["algorithm"]
		c.Stale = strings.EqualFold(params["stale"], "true")
		for _, q := range strings.Split(params["qop"], ",") {
			if q = strings.TrimSpace(q); q != "" {
				c.QOP = append(c.QOP, q)
			}
		}
		out = append(out, c)
	}
	return out
}

func canonicalScheme(s string) string {
	switch strings.ToLower(s) {
	case "digest":
		return "Digest"
	case "basic":
		return "Basic"
	}
	return s
}

// parseParams reads comma-separated key=value pairs, values optionally
// quoted with backslash escapes. Keys are lower-cased.
func parseParams(s string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(s); {
		for i < len(s) && (s[i] == ' ' || s[i] == ',' || s[i] == '\t') {
			i++
		}
		j := i
		for j < len(s) && s[j] != '=' && s[j] != ',' {
			j++
		}
		key := strings.ToLower(strings.TrimSpace(s[i:j]))
		if j >= len(s) || s[j] != '=' {
			i = j
			continue
		}
		j++
		for j < len(s) && s[j] == ' ' {
			j++
		}
		var val strings.Builder
		if j < len(s) && s[j] == '"' {
			j++
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				val.WriteByte(s[j])
				j++
			}
			j++ // closing quote
		} else {
			for j < len(s) && s[j] != ',' {
				val.WriteByte(s[j])
				j++
			}
		}
		if key != "" {
			out[key] = strings.TrimSpace(val.String())
		}
		i = j
	}
	return out
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// response computes the request-digest of RFC 2617 section 3.2.2.1.
func response(user, realm, pass, algorithm, nonce, cnonce, nc, qop, method, uri string) string {
	ha1 := md5hex(user + ":" + realm + ":" + pass)
	if strings.EqualFold(algorithm, "MD5-sess") {
		ha1 = md5hex(ha1 + ":" + nonce + ":" + cnonce)
	}
	ha2 := md5hex(method + ":" + uri)
	if qop == "" {
		return md5hex(ha1 + ":" + nonce + ":" + ha2)
	}
	return md5hex(ha1 + ":" + nonce + ":" + nc + ":" + cnonce + ":" + qop + ":" + ha2)
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Client answers challenges with credentials. After the first challenge it
// can sign every further request of the session (nc counts up), which
// GenieACS and others accept and which saves a round trip per POST.
type Client struct {
	Username string
	Password string

	mu     sync.Mutex // guards the following
	ch     *Challenge
	nc     uint32
	cnonce string
}

// ErrUnsupported is returned for a challenge the client cannot answer.
var ErrUnsupported = errors.New("digest: no supported authentication scheme offered")

// Accept picks the strongest challenge it can answer (Digest over Basic).
func (c *Client) Accept(chs []Challenge) error {
	var pick *Challenge
	for i := range chs {
		ch := &chs[i]
		switch ch.Scheme {
		case "Digest":
			alg := strings.ToUpper(ch.Algorithm)
			if alg != "" && alg != "MD5" && alg != "MD5-SESS" {
				continue
			}
			if len(ch.QOP) > 0 && !contains(ch.QOP, "auth") {
				continue
			}
			if pick == nil || pick.Scheme != "Digest" {
				pick = ch
			}
		case "Basic":
			if pick == nil {
				pick = ch
			}
		}
	}
	if pick == nil {
		return ErrUnsupported
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := *pick
	c.ch = &cp
	c.nc = 0
	c.cnonce = newCnonce()
	return nil
}

// Ready reports whether a challenge has been accepted.
func (c *Client) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ch != nil
}

// Authorization returns the Authorization header value for a request, or
// "" before any challenge was accepted. uri is the request-URI as sent.
func (c *Client) Authorization(method, uri string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		return ""
	}
	if c.ch.Scheme == "Basic" {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password))
	}
	c.nc++
	nc := fmt.Sprintf("%08x", c.nc)
	qop := ""
	if len(c.ch.QOP) > 0 {
		qop = "auth"
	}
	resp := response(c.Username, c.ch.Realm, c.Password, c.ch.Algorithm, c.ch.Nonce, c.cnonce, nc, qop, method, uri)
	var b strings.Builder
	b.WriteString("Digest username=" + quote(c.Username) + ", realm=" + quote(c.ch.Realm) + ", nonce=" + quote(c.ch.Nonce) + ", uri=" + quote(uri))
	if c.ch.Algorithm != "" {
		b.WriteString(", algorithm=" + c.ch.Algorithm)
	}
	b.WriteString(", response=" + quote(resp))
	if qop != "" {
		b.WriteString(", qop=" + qop + ", nc=" + nc + ", cnonce=" + quote(c.cnonce))
	}
	if c.ch.Opaque != "" {
		b.WriteString(", opaque=" + quote(c.ch.Opaque))
	}
	return b.String()
}

func newCnonce() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if strings.EqualFold(s, v) {
			return true
		}
	}
	return false
}

// Server issues Digest challenges and checks answers. Nonces are stateless
// (a timestamp and its HMAC under a per-server secret), valid for Lifetime;
// each nonce's nc must grow, so a captured request cannot be replayed.
type Server struct {
	Realm string
	// Lifetime of a nonce; 0 means 5 minutes.
	Lifetime time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	once   sync.Once
	secret [32]byte

	mu   sync.Mutex // guards seen
	seen map[string]uint64
}

func (s *Server) init() {
	s.once.Do(func() {
		rand.Read(s.secret[:])
		s.seen = map[string]uint64{}
	})
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) lifetime() time.Duration {
	if s.Lifetime > 0 {
		return s.Lifetime
	}
	return 5 * time.Minute
}

func (s *Server) newNonce() string {
	s.init()
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(s.now().UnixNano()))
	m := hmac.New(sha256.New, s.secret[:])
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil)[:16])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// nonceState: 0 invalid, 1 valid, 2 well-formed but expired (stale).
func (s *Server) nonceState(n string) int {
	s.init()
	b, err := base64.RawURLEncoding.DecodeString(n)
	if err != nil || len(b) != 24 {
		return 0
	}
	m := hmac.New(sha256.New, s.secret[:])
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return 0
	}
	t := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	if s.now().Sub(t) > s.lifetime() || t.After(s.now().Add(time.Minute)) {
		return 2
	}
	return 1
}

// Challenge returns a WWW-Authenticate header value (qop="auth", MD5).
func (s *Server) Challenge(stale bool) string {
	v := "Digest realm=" + quote(s.Realm) + `, qop="auth", algorithm=MD5, nonce=` + quote(s.newNonce())
	if stale {
		v += ", stale=true"
	}
	return v
}

// Result of a check.
type Result int

const (
	Denied Result = iota // no, wrong or replayed credentials: challenge again
	Stale                // right credentials on an expired nonce: challenge with stale=true
	OK
)

// Check verifies an Authorization header for a request. requestURI is the
// request-URI as it arrived on the wire (http.Request.RequestURI); the
// digest's uri must name the same resource (a client may send it absolute).
func (s *Server) Check(authorization, method, requestURI, username, password string) Result {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	if !strings.EqualFold(scheme, "Digest") {
		return Denied
	}
	p := parseParams(rest)
	if p["username"] != username || p["realm"] != s.Realm || p["response"] == "" {
		return Denied
	}
	if !sameURI(p["uri"], requestURI) {
		return Denied
	}
	alg := p["algorithm"]
	if alg != "" && !strings.EqualFold(alg, "MD5") && !strings.EqualFold(alg, "MD5-sess") {
		return Denied
	}
	qop := p["qop"]
	if qop != "" && qop != "auth" {
		return Denied
	}
	nc := p["nc"]
	var ncv uint64
	if qop != "" {
		var err error
		ncv, err = strconv.ParseUint(nc, 16, 32)
		if err != nil || p["cnonce"] == "" {
			return Denied
		}
	}
	want := response(username, s.Realm, password, alg, p["nonce"], p["cnonce"], nc, qop, method, p["uri"])
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(p["response"]))) != 1 {
		return Denied
	}
	switch s.nonceState(p["nonce"]) {
	case 0:
		return Denied
	case 2:
		return Stale
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.seen) > 4096 {
		s.seen = map[string]uint64{} // bounded memory; old nonces expire anyway
	}
	// Replay protection: with qop each nonce's nc must grow; without qop
	// (RFC 2069 clients) a nonce is good for one request.
	key := p["nonce"]
	if qop == "" {
		ncv = 1
	}
	if last, ok := s.seen[key]; ok && ncv <= last {
		return Denied
	}
	s.seen[key] = ncv
	return OK
}

// sameURI compares the digest's uri with the request-URI: equal, or equal
// once an absolute form is reduced to its path and query.
func sameURI(digestURI, requestURI string) bool {
	if digestURI == requestURI {
		return true
	}
	a, err1 := url.Parse(digestURI)
	b, err2 := url.Parse(requestURI)
	if err1 != nil || err2 != nil {
		return false
	}
	return a.EscapedPath() == b.EscapedPath() && a.RawQuery == b.RawQuery && (a.EscapedPath() != "" || a.RawQuery != "")
}

// CheckBasic verifies a Basic Authorization header.
func CheckBasic(authorization, username, password string) bool {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(authorization), " ")
	if !strings.EqualFold(scheme, "Basic") {
		return false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
	if err != nil {
		return false
	}
	u, pw, ok := strings.Cut(string(raw), ":")
	return ok && subtle.ConstantTimeCompare([]byte(u), []byte(username)) == 1 && subtle.ConstantTimeCompare([]byte(pw), []byte(password)) == 1
}
