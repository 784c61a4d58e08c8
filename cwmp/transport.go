package cwmp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cwmp-agent/cwmp-agent/internal/digest"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// DefaultUserAgent is the User-Agent of Config.UserAgent's zero value.
const DefaultUserAgent = "cwmp-agent"

// HTTPError is an HTTP status that fails a session (TR-069 3.7.1.4: any
// 4xx or 5xx other than the one 401 of authentication).
type HTTPError struct {
	Status     int
	RetryAfter time.Duration // from a 503's Retry-After, if any
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("cwmp: ACS answered HTTP %d %s", e.Status, http.StatusText(e.Status))
}

// Errors of the HTTP exchange.
var (
	ErrAuthFailed  = errors.New("cwmp: ACS refused our credentials")
	ErrTooManyHops = errors.New("cwmp: too many redirects")
	ErrNoACSURL    = errors.New("cwmp: ManagementServer.URL is empty")
	errProtocol    = errors.New("cwmp: protocol error")
)

// ErrorKind names the cause of a failed session in a few words, for
// reports and metric labels: "http NNN" (the status), "authentication",
// "timeout", "connection", "protocol", "other"; "" for nil. The set is
// bounded whatever an ACS sends.
func ErrorKind(err error) string {
	var he *HTTPError
	var ne net.Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &he):
		return "http " + strconv.Itoa(min(max(he.Status, 100), 999))
	case errors.Is(err, ErrAuthFailed):
		return "authentication"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection"
	case errors.Is(err, errProtocol):
		return "protocol"
	}
	return "other"
}

const (
	// maxRedirects bounds the redirects followed in one session.
	maxRedirects    = 5
	contentTypeSOAP = `text/xml; charset="utf-8"`
)

func newTransport(c TLSConfig) (*http.Transport, error) {
	tc, err := tlsConfig(c)
	if err != nil {
		return nil, err
	}
	return NewHTTPTransport(tc), nil
}

// ClientTLS builds the TLS settings of a TLSConfig once, so that a fleet's
// virtual CPEs share them (the system roots are large).
func ClientTLS(c TLSConfig) (*tls.Config, error) { return tlsConfig(c) }

// NewHTTPTransport is the transport a session uses, over shared TLS
// settings: one per CPE, so that no two CPEs ever share a connection.
func NewHTTPTransport(tc *tls.Config) *http.Transport {
	// No TCP keep-alive probes: a session's connection lives seconds and
	// ends with the session.
	d := &net.Dialer{Timeout: 15 * time.Second, KeepAlive: -1}
	return &http.Transport{
		DialContext:         d.DialContext,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 15 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     60 * time.Second,
		// CWMP 1.4 compression is negotiated through HTTPCompression, which
		// this data model lacks: ask for none.
		DisableCompression: true,
		ForceAttemptHTTP2:  false,
		// CWMP messages are mostly small; a long GetParameterValuesResponse
		// just takes more writes. Smaller buffers keep a fleet light.
		ReadBufferSize:  2048,
		WriteBufferSize: 2048,
		// File servers are outside input too (net/http's default is 1 MB).
		MaxResponseHeaderBytes: MaxResponseHeaderBytes,
	}
}

// tlsConfig builds the client TLS settings: the system roots plus an
// optional CA file, an optional client certificate, hostname verification
// on (TR-069 3.4.1: the ACS certificate matches the host of the ACS URL).
func tlsConfig(c TLSConfig) (*tls.Config, error) {
	// Without a CA file RootCAs stays nil: crypto/tls then reads the system
	// roots at the first handshake that needs them, so an agent talking
	// plain HTTP never holds them (about 1.5 MB of heap).
	var roots *x509.CertPool
	if c.CAFile != "" {
		sys, err := x509.SystemCertPool()
		if err != nil || sys == nil {
			sys = x509.NewCertPool()
		}
		roots = sys
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cwmp: acs.ca_file: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cwmp: acs.ca_file %s holds no PEM certificate", c.CAFile)
		}
	}
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.ClientCert != "" || c.ClientKey != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("cwmp: acs.client_cert/acs.client_key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// exchanger carries one session's HTTP state: the URL (a redirect changes it
// for this session only), the cookies (a fresh jar each session that returns
// every cookie, whatever its Path), and the authentication.
type exchanger struct {
	conn      *sessionConn
	url       *url.URL
	timeout   time.Duration
	auth      digest.Client
	cookies   []*http.Cookie
	redirects int
	userAgent string
	// compress is the Content-Encoding of the POSTs ("" none); refused
	// is called when the ACS answered a compressed one with 415.
	compress string
	refused  func()
}

func newExchanger(conn *sessionConn, acsURL, user, pass string, timeout time.Duration) (*exchanger, error) {
	u, err := url.Parse(acsURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("cwmp: ACS URL %q is not an http(s) URL", acsURL)
	}
	x := &exchanger{conn: conn, url: u, timeout: timeout, userAgent: DefaultUserAgent}
	x.auth.Username, x.auth.Password = user, pass
	return x, nil
}

func (x *exchanger) setCookies(resp *wireResponse) {
	for _, line := range resp.setCookie {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			continue // RFC 6265 5.2: a cookie that does not parse is ignored
		}
		kept := x.cookies[:0]
		for _, o := range x.cookies {
			if o.Name != c.Name {
				kept = append(kept, o)
			}
		}
		x.cookies = kept
		if c.MaxAge < 0 || (!c.Expires.IsZero() && c.Expires.Before(time.Now())) {
			continue
		}
		x.cookies = append(x.cookies, &http.Cookie{Name: c.Name, Value: c.Value})
	}
}

// cookieHeader is the Cookie header of the session's cookies.
func (x *exchanger) cookieHeader() string {
	switch len(x.cookies) {
	case 0:
		return ""
	case 1:
		return x.cookies[0].String()
	}
	parts := make([]string, len(x.cookies))
	for i, c := range x.cookies {
		parts[i] = c.String()
	}
	return strings.Join(parts, "; ")
}

// post sends one HTTP POST of the session (body nil: the empty POST) and
// returns the response body. It answers one 401 per message with
// credentials, follows redirects (at most five per session), and fails on
// any other status than 200 and 204.
func (x *exchanger) post(ctx context.Context, body []byte) ([]byte, error) {
	authTried := false
	for {
		req := &wireRequest{host: x.url.Host, uri: x.url.RequestURI(), userAgent: x.userAgent,
			soap: body != nil, acceptEncoding: x.compress != "", cookie: x.cookieHeader(), body: body}
		if body != nil && x.compress != "" {
			if c, err := compressBody(x.compress, body); err == nil {
				req.body, req.contentEncoding = c, x.compress
			}
		}
		coding := req.contentEncoding
		req.authorization = x.auth.Authorization(http.MethodPost, req.uri)
		resp, err := x.conn.post(ctx, x.timeout, x.url, req)
		if err != nil {
			if errors.Is(err, errBodyTooLarge) {
				return nil, soap.ErrTooLarge
			}
			if errors.Is(err, errMalformedResponse) || errors.Is(err, errHeaderTooLarge) {
				return nil, fmt.Errorf("cwmp: reading the ACS response: %w", err)
			}
			return nil, fmt.Errorf("cwmp: POST %s: %w", x.url.Redacted(), err)
		}
		data := resp.body
		x.setCookies(resp)
		switch resp.status {
		case http.StatusOK, http.StatusNoContent:
			return decompressBody(resp.contentEncoding, data)
		case http.StatusUnsupportedMediaType:
			if coding == "" {
				return nil, &HTTPError{Status: resp.status}
			}
			// The ACS does not read compressed requests: the same
			// message again, plain, and no compression from now on.
			x.compress = ""
			if x.refused != nil {
				x.refused()
			}
		case http.StatusUnauthorized:
			if authTried {
				return nil, ErrAuthFailed
			}
			authTried = true
			if err := x.auth.Accept(digest.ParseChallenges(resp.wwwAuthenticate)); err != nil {
				return nil, fmt.Errorf("cwmp: %w", err)
			}
		case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
			loc, err := url.Parse(resp.location)
			if err != nil || resp.location == "" {
				return nil, fmt.Errorf("cwmp: redirect without a usable Location")
			}
			x.redirects++
			if x.redirects > maxRedirects {
				return nil, ErrTooManyHops
			}
			x.url = x.url.ResolveReference(loc)
			authTried = false
		default:
			he := &HTTPError{Status: resp.status}
			if resp.status == http.StatusServiceUnavailable || resp.status == http.StatusTooManyRequests {
				he.RetryAfter = retryAfter(resp.header)
			}
			return nil, he
		}
	}
}

// maxRetryAfter bounds what an ACS may ask for: a hostile or broken one
// must not silence the CPE for ever.
const maxRetryAfter = 24 * time.Hour

// retryAfter reads a 503's or 429's Retry-After (RFC 9110 10.2.3): delay
// seconds, or an HTTP-date, taken relative to the response's own Date so
// that a CPE whose clock is wrong still waits what the ACS meant. 0: none.
func retryAfter(header func(string) string) time.Duration {
	v := strings.TrimSpace(header("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		if s > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(s) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		now := time.Now()
		if date, err := http.ParseTime(header("Date")); err == nil {
			now = date
		}
		d = at.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}
