package cwmp

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cwmp-agent/cwmp-agent/soap"
)

// HTTP compression of the session (TR-069 Amendment 6 3.4.7,
// ManagementServer.HTTPCompression): the CPE compresses its POSTs with the
// chosen coding and accepts compressed responses, which are read whatever
// it chose. An ACS that answers a compressed POST with 415 Unsupported
// Media Type gets the message again uncompressed, and no compression for
// the rest of the agent's life at that URL.

// Compression codings, as HTTPCompression names them.
const (
	CompressionDisabled = "Disabled"
	CompressionGZIP     = "GZIP"
	CompressionDeflate  = "Deflate"
)

// contentCoding is the HTTP Content-Encoding of an HTTPCompression value,
// "" for none.
func contentCoding(v string) string {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "GZIP":
		return "gzip"
	case "DEFLATE":
		return "deflate"
	}
	return ""
}

func compressBody(coding string, body []byte) ([]byte, error) {
	var b bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "deflate":
		// HTTP's "deflate" is the zlib format (RFC 9110 8.4.1.2).
		w = zlib.NewWriter(&b)
	default:
		return body, nil
	}
	if _, err := w.Write(body); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// errBomb is a compressed response that inflates past a message's size.
var errBomb = fmt.Errorf("cwmp: compressed response inflates beyond %d bytes", soap.MaxMessageSize)

// decompressBody undoes a response's Content-Encoding, never inflating
// beyond soap.MaxMessageSize (a small body must not become a huge one).
func decompressBody(coding string, data []byte) ([]byte, error) {
	var r io.Reader
	switch strings.ToLower(strings.TrimSpace(coding)) {
	case "", "identity":
		return data, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("cwmp: gzip response: %w", err)
		}
		r = zr
	case "deflate":
		// Some servers send raw deflate instead of zlib: accept both.
		if zr, err := zlib.NewReader(bytes.NewReader(data)); err == nil {
			r = zr
		} else {
			r = flate.NewReader(bytes.NewReader(data))
		}
	default:
		return nil, fmt.Errorf("cwmp: response in an unknown Content-Encoding %q", coding)
	}
	out, err := io.ReadAll(io.LimitReader(r, soap.MaxMessageSize+1))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("cwmp: %s response: %w", coding, err)
	}
	if err != nil {
		return nil, fmt.Errorf("cwmp: truncated %s response", coding)
	}
	if len(out) > soap.MaxMessageSize {
		return nil, errBomb
	}
	return out, nil
}
