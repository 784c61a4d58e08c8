package cwmp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/cwmp-agent/cwmp-agent/soap"
)

// The session's HTTP/1.1 client is written by hand, here: a CWMP session
// is a few POSTs on one connection, and net/http's client (a Request, a
// context, a cloned header map and URL per POST, a Response with a MIME
// header map, two bufio buffers per connection) was a third of a fleet's
// CPU per session and half of its allocations (BenchmarkSessionWire shows
// the two side by side). The file servers of Download and Upload keep
// net/http, where none of that matters.

// wireRequest is one POST of a session.
type wireRequest struct {
	host, uri       string // Host header and request target
	userAgent       string
	soap            bool   // a SOAP body: Content-Type and SOAPAction
	contentEncoding string // of the body; "" none
	acceptEncoding  bool
	cookie          string // the Cookie header; "" none
	authorization   string
	body            []byte
}

// wireResponse is what a session reads of an ACS response.
type wireResponse struct {
	status          int
	close           bool // the connection ends after this response
	contentEncoding string
	location        string
	retryAfter      string
	date            string
	wwwAuthenticate []string
	setCookie       []string
	body            []byte
}

// header returns the value of the first header named key, as net/http's
// Header.Get would: Retry-After and Date for retryAfter.
func (r *wireResponse) header(key string) string {
	switch key {
	case "Retry-After":
		return r.retryAfter
	case "Date":
		return r.date
	case "Content-Encoding":
		return r.contentEncoding
	case "Location":
		return r.location
	}
	return ""
}

// requestBuffers are reused across POSTs and sessions: a fleet makes
// thousands a second.
var requestBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeRequest writes the request in one write: the head and a small body
// together, as one TCP segment on loopback.
func writeRequest(w io.Writer, r *wireRequest) error {
	b := requestBuffers.Get().(*bytes.Buffer)
	defer func() {
		if b.Cap() <= 64<<10 {
			b.Reset()
			requestBuffers.Put(b)
		}
	}()
	b.Reset()
	b.WriteString("POST ")
	b.WriteString(r.uri)
	b.WriteString(" HTTP/1.1\r\nHost: ")
	b.WriteString(r.host)
	b.WriteString("\r\nUser-Agent: ")
	b.WriteString(r.userAgent)
	b.WriteString("\r\nContent-Length: ")
	b.WriteString(strconv.Itoa(len(r.body)))
	b.WriteString("\r\n")
	if r.soap {
		b.WriteString("Content-Type: " + contentTypeSOAP + "\r\nSOAPAction: \"\"\r\n")
	}
	if r.contentEncoding != "" {
		b.WriteString("Content-Encoding: ")
		b.WriteString(r.contentEncoding)
		b.WriteString("\r\n")
	}
	if r.acceptEncoding {
		b.WriteString("Accept-Encoding: gzip, deflate\r\n")
	}
	if r.cookie != "" {
		b.WriteString("Cookie: ")
		b.WriteString(r.cookie)
		b.WriteString("\r\n")
	}
	if r.authorization != "" {
		b.WriteString("Authorization: ")
		b.WriteString(r.authorization)
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	if len(r.body) <= 16<<10 {
		b.Write(r.body)
		_, err := w.Write(b.Bytes())
		return err
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return err
	}
	_, err := w.Write(r.body)
	return err
}

var (
	errMalformedResponse = errors.New("cwmp: malformed HTTP response from the ACS")
	errBodyTooLarge      = errors.New("cwmp: ACS response body larger than a message may be")
)

// maxHeaderLine bounds one line of a response head (status line, header,
// chunk size): net/http's own limit for a whole head is 1 MB, and each of
// ours must fit the head's budget anyway.
const maxHeaderLine = 8 << 10

// readLine reads one CRLF- (or LF-) terminated line without its end.
// The returned slice is valid until the next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// Longer than the buffer (a long cookie): gather it, to a bound.
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull {
			if len(long) > maxHeaderLine {
				return nil, errHeaderTooLarge
			}
			line, err = br.ReadSlice('\n')
			long = append(long, line...)
		}
		if len(long) > maxHeaderLine {
			return nil, errHeaderTooLarge
		}
		line = long
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readResponse reads one response to a POST (RFC 9112): the status line,
// the header fields the session uses, and the body (Content-Length,
// chunked or, without either, up to the connection's end). Interim 1xx
// responses are skipped. budget bounds the head; the body is bounded by
// the message cap (soap.MaxMessageSize), past which errBodyTooLarge.
func readResponse(br *bufio.Reader, budget *budgetReader) (*wireResponse, error) {
	for {
		budget.left = MaxResponseHeaderBytes
		r, length, chunked, err := readHead(br)
		if err != nil {
			return nil, err
		}
		if r.status >= 100 && r.status < 200 {
			continue // 100 Continue and the like: the answer follows
		}
		budget.left = 2*int64(soap.MaxMessageSize) + MaxResponseHeaderBytes
		switch {
		case r.status == 204 || r.status == 304:
			// No body, whatever the header says (RFC 9112 6.3).
		case chunked:
			r.body, err = readChunked(br)
		case length >= 0:
			if length > soap.MaxMessageSize {
				return nil, errBodyTooLarge
			}
			r.body = make([]byte, length)
			_, err = io.ReadFull(br, r.body)
		default:
			// Delimited by the connection's end (RFC 9112 6.3, rule 8).
			r.close = true
			r.body, err = io.ReadAll(io.LimitReader(br, soap.MaxMessageSize+1))
			if err == nil && len(r.body) > soap.MaxMessageSize {
				err = errBodyTooLarge
			}
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return r, nil
	}
}

// readHead reads a status line and header fields up to the empty line.
func readHead(br *bufio.Reader) (r *wireResponse, length int64, chunked bool, err error) {
	line, err := readLine(br)
	if err != nil {
		return nil, 0, false, err
	}
	r = &wireResponse{}
	// "HTTP/1.1 200 OK": the version, a space, three digits (RFC 9112 4).
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' ||
		(len(line) > 12 && line[12] != ' ') {
		return nil, 0, false, fmt.Errorf("%w: status line %q", errMalformedResponse, clip(line))
	}
	http10 := line[7] == '0'
	r.close = http10
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil || code < 100 {
		return nil, 0, false, fmt.Errorf("%w: status line %q", errMalformedResponse, clip(line))
	}
	r.status = code
	length = -1
	for n := 0; ; n++ {
		line, err := readLine(br)
		if err != nil {
			return nil, 0, false, err
		}
		if len(line) == 0 {
			return r, length, chunked, nil
		}
		if n >= MaxResponseHeaders {
			return nil, 0, false, errHeaderTooLarge
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return nil, 0, false, fmt.Errorf("%w: header line %q", errMalformedResponse, clip(line))
		}
		name, value := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			v, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || v < 0 || (length >= 0 && v != length) {
				return nil, 0, false, fmt.Errorf("%w: Content-Length %q", errMalformedResponse, clip(value))
			}
			length = v
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			// Only chunked is a coding an HTTP/1.1 server may send to a
			// client that asked for no other (RFC 9112 6.1).
			if !bytes.EqualFold(bytes.TrimSpace(value), []byte("chunked")) {
				return nil, 0, false, fmt.Errorf("%w: Transfer-Encoding %q", errMalformedResponse, clip(value))
			}
			chunked = true
		case bytes.EqualFold(name, []byte("Connection")):
			for _, tok := range strings.Split(string(value), ",") {
				switch strings.ToLower(strings.TrimSpace(tok)) {
				case "close":
					r.close = true
				case "keep-alive":
					if http10 {
						r.close = false
					}
				}
			}
		case bytes.EqualFold(name, []byte("Content-Encoding")):
			r.contentEncoding = string(value)
		case bytes.EqualFold(name, []byte("Location")):
			r.location = string(value)
		case bytes.EqualFold(name, []byte("Retry-After")):
			r.retryAfter = string(value)
		case bytes.EqualFold(name, []byte("Date")):
			r.date = string(value)
		case bytes.EqualFold(name, []byte("WWW-Authenticate")):
			r.wwwAuthenticate = append(r.wwwAuthenticate, string(value))
		case bytes.EqualFold(name, []byte("Set-Cookie")):
			r.setCookie = append(r.setCookie, string(value))
		}
	}
}

// readChunked reads a chunked body (RFC 9112 7.1) and its trailer, which
// is read and dropped.
func readChunked(br *bufio.Reader) ([]byte, error) {
	var body []byte
	for {
		line, err := readLine(br)
		if err != nil {
			return nil, err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions are ignored
		}
		size, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 63)
		if err != nil {
			return nil, fmt.Errorf("%w: chunk size %q", errMalformedResponse, clip(line))
		}
		if size == 0 {
			for n := 0; ; n++ {
				t, err := readLine(br)
				if err != nil {
					return nil, err
				}
				if len(t) == 0 {
					return body, nil
				}
				if n >= MaxResponseHeaders {
					return nil, errHeaderTooLarge
				}
			}
		}
		if uint64(len(body))+size > soap.MaxMessageSize {
			return nil, errBodyTooLarge
		}
		start := len(body)
		body = append(body, make([]byte, size)...)
		if _, err := io.ReadFull(br, body[start:]); err != nil {
			return nil, err
		}
		if line, err := readLine(br); err != nil || len(line) != 0 {
			if err == nil {
				err = fmt.Errorf("%w: chunk without its CRLF", errMalformedResponse)
			}
			return nil, err
		}
	}
}

// clip shortens what an error quotes from the ACS.
func clip(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}
