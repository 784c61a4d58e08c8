package cwmp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/soap"
)

// rawACS accepts connections and answers every request by running
// respond on the raw connection; it counts the bytes respond wrote.
type rawACS struct {
	ln      net.Listener
	written atomic.Int64
}

func newRawACS(t *testing.T, respond func(w io.Writer) error) *rawACS {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a := &rawACS{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				respond(&countingWriter{w: c, n: &a.written})
			}()
		}
	}()
	return a
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (a *rawACS) post(t *testing.T) error {
	sc := &sessionConn{timeout: 5 * time.Second}
	defer sc.close()
	x, err := newExchanger(sc, "http://"+a.ln.Addr().String()+"/acs", "", "", 20*time.Second)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = x.post(ctx, []byte("<x/>"))
	return err
}

// TestHostileACSHeaders: endless header lines, or too many headers, end
// the exchange at the limits instead of growing without bound (688 MB in
// 5 s once, then "fatal error: out of memory" under a 1 GiB limit).
func TestHostileACSHeaders(t *testing.T) {
	endless := newRawACS(t, func(w io.Writer) error {
		if _, err := io.WriteString(w, "HTTP/1.1 200 OK\r\n"); err != nil {
			return err
		}
		line := []byte("X-Flood: " + strings.Repeat("a", 1000) + "\r\n")
		for {
			if _, err := w.Write(line); err != nil {
				return err
			}
		}
	})
	err := endless.post(t)
	assert.ErrorIs(t, err, errHeaderTooLarge)
	assert.Less(t, endless.written.Load(), int64(16<<20), "the agent stopped reading near the limit")

	many := newRawACS(t, func(w io.Writer) error {
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n")
		for i := 0; i < 2*MaxResponseHeaders; i++ {
			b.WriteString("X-" + strings.Repeat("h", 1+i%20) + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ": 1\r\n")
		}
		b.WriteString("\r\n")
		_, err := io.WriteString(w, b.String())
		return err
	})
	assert.ErrorIs(t, many.post(t), errHeaderTooLarge)
}

// TestHostileACSEndlessBody: an endless chunked body is dropped at the
// message cap; it was drained until acs.response_timeout.
func TestHostileACSEndlessBody(t *testing.T) {
	endless := newRawACS(t, func(w io.Writer) error {
		if _, err := io.WriteString(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"); err != nil {
			return err
		}
		chunk := []byte("1000\r\n" + strings.Repeat("<", 0x1000) + "\r\n")
		for {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
		}
	})
	start := time.Now()
	err := endless.post(t)
	assert.True(t, errors.Is(err, soap.ErrTooLarge), "%v", err)
	assert.Less(t, endless.written.Load(), int64(3*soap.MaxMessageSize), "read up to the cap, not drained (%v)", time.Since(start))
}
