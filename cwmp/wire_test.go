package cwmp

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

func parse(raw string) (*wireResponse, error) {
	b := &budgetReader{r: strings.NewReader(raw)}
	return readResponse(bufio.NewReaderSize(b, 2048), b)
}

func TestReadResponse(t *testing.T) {
	long := strings.Repeat("c", 5000)
	for _, tc := range []struct {
		name, raw string
		status    int
		body      string
		close     bool
		check     func(*testing.T, *wireResponse)
	}{
		{name: "content-length", raw: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", status: 200, body: "hello"},
		{name: "no content", raw: "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", status: 204},
		{name: "chunked with extensions and a trailer",
			raw:    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n",
			status: 200, body: "abcde"},
		{name: "until the connection's end", raw: "HTTP/1.1 200 OK\r\n\r\nall of it", status: 200, body: "all of it", close: true},
		{name: "interim 100 then the answer", raw: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok"},
		{name: "HTTP/1.0 closes", raw: "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", status: 200, body: "x", close: true},
		{name: "HTTP/1.0 keep-alive", raw: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", status: 200, body: "x"},
		{name: "Connection: close", raw: "HTTP/1.1 200 OK\r\nconnection: Close\r\nContent-Length: 0\r\n\r\n", status: 200, close: true},
		{name: "bare LF line ends", raw: "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", status: 200, body: "ok"},
		{name: "the headers a session reads",
			raw: "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"a\"\r\nwww-authenticate: Digest realm=\"b\", nonce=\"n\"\r\n" +
				"Set-Cookie: s=1\r\nSet-Cookie: long=" + long + "\r\nLocation: http://acs/x\r\nRetry-After: 7\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\n" +
				"Content-Encoding: gzip\r\nContent-Length: 0\r\n\r\n",
			status: 401, check: func(t *testing.T, r *wireResponse) {
				assert.Equal(t, []string{`Basic realm="a"`, `Digest realm="b", nonce="n"`}, r.wwwAuthenticate)
				assert.Equal(t, []string{"s=1", "long=" + long}, r.setCookie)
				assert.Equal(t, "http://acs/x", r.header("Location"))
				assert.Equal(t, "7", r.header("Retry-After"))
				assert.Equal(t, "gzip", r.header("Content-Encoding"))
				assert.Equal(t, "Tue, 01 Dec 2026 10:00:00 GMT", r.header("Date"))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parse(tc.raw)
			require.NoError(t, err)
			assert.Equal(t, tc.status, r.status)
			assert.Equal(t, tc.body, string(r.body))
			assert.Equal(t, tc.close, r.close)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func TestReadResponseRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      error
	}{
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", errMalformedResponse},
		{"short status", "HTTP/1.1 20\r\n\r\n", errMalformedResponse},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", errMalformedResponse},
		{"negative length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", errMalformedResponse},
		{"another transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", errMalformedResponse},
		{"header without a colon", "HTTP/1.1 200 OK\r\nnonsense\r\n\r\n", errMalformedResponse},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", errMalformedResponse},
		{"chunk without its CRLF", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy\r\n0\r\n\r\n", errMalformedResponse},
		{"a line too long", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 10000) + "\r\n\r\n", errHeaderTooLarge},
		{"too many headers", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: 1\r\n", MaxResponseHeaders+1) + "\r\n", errHeaderTooLarge},
		{"a length past the message cap", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", errBodyTooLarge},
		{"chunks past the message cap", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7fffffffffff\r\n", errBodyTooLarge},
		{"cut in the body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", io.ErrUnexpectedEOF},
		{"cut in the head", "HTTP/1.1 200 OK\r\nContent-Le", io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.raw)
			assert.ErrorIs(t, err, tc.want)
		})
	}
	// A head without end stops at the head budget.
	endless := io.MultiReader(strings.NewReader("HTTP/1.1 200 OK\r\n"), &repeat{line: []byte("X-Flood: aaaa\r\n")})
	b := &budgetReader{r: endless}
	_, err := readResponse(bufio.NewReaderSize(b, 2048), b)
	assert.ErrorIs(t, err, errHeaderTooLarge)
}

type repeat struct{ line []byte }

func (r *repeat) Read(p []byte) (int, error) {
	n := 0
	for n+len(r.line) <= len(p) {
		n += copy(p[n:], r.line)
	}
	if n == 0 {
		n = copy(p, r.line)
	}
	return n, nil
}

// TestWriteRequestAsNetHTTPReadsIt: what the session writes is a valid
// HTTP/1.1 request with every header it means to send.
func TestWriteRequestAsNetHTTPReadsIt(t *testing.T) {
	var buf bytes.Buffer
	body := bytes.Repeat([]byte("<x/>"), 5000) // past the one-write size too
	require.NoError(t, writeRequest(&buf, &wireRequest{host: "acs.example:7547", uri: "/acs?x=1", userAgent: "ua/1", soap: true,
		contentEncoding: "gzip", acceptEncoding: true, cookie: "a=1; b=2", authorization: "Digest x", body: body}))
	req, err := http.ReadRequest(bufio.NewReader(&buf))
	require.NoError(t, err)
	assert.Equal(t, http.MethodPost, req.Method)
	assert.Equal(t, "/acs?x=1", req.RequestURI)
	assert.Equal(t, "acs.example:7547", req.Host)
	assert.Equal(t, "ua/1", req.UserAgent())
	assert.Equal(t, contentTypeSOAP, req.Header.Get("Content-Type"))
	assert.Equal(t, []string{`""`}, req.Header["Soapaction"])
	assert.Equal(t, "gzip", req.Header.Get("Content-Encoding"))
	assert.Equal(t, "gzip, deflate", req.Header.Get("Accept-Encoding"))
	assert.Equal(t, "Digest x", req.Header.Get("Authorization"))
	c, err := req.Cookie("b")
	require.NoError(t, err)
	assert.Equal(t, "2", c.Value)
	got, err := io.ReadAll(req.Body)
	require.NoError(t, err)
	assert.Equal(t, body, got)

	buf.Reset()
	require.NoError(t, writeRequest(&buf, &wireRequest{host: "h", uri: "/", userAgent: "u"}))
	req, err = http.ReadRequest(bufio.NewReader(&buf))
	require.NoError(t, err)
	assert.Equal(t, int64(0), req.ContentLength, "the empty POST")
	assert.Empty(t, req.Header.Get("Content-Type"))
}

// FuzzReadResponse: no input panics the reader or yields a body past the
// message cap.
func FuzzReadResponse(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzReadResponse")
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parse(string(data))
		if err != nil {
			if r != nil {
				t.Fatal("a response with an error")
			}
			return
		}
		if len(r.body) > soap.MaxMessageSize {
			t.Fatalf("body of %d bytes", len(r.body))
		}
		if r.status < 200 || r.status > 999 {
			t.Fatalf("status %d", r.status)
		}
	})
}
