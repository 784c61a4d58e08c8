package cwmp

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSessionConn: one connection for the whole session when the ACS keeps
// it; a new one (same session, nothing lost) after every Connection: close,
// as GenieACS sends; chunked bodies; another host after a redirect.
func TestSessionConn(t *testing.T) {
	var conns atomic.Int32
	closeEach := atomic.Bool{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if closeEach.Load() {
			w.Header().Set("Connection", "close")
		}
		// No Content-Length and a flush: a chunked response.
		w.Write([]byte("got:"))
		w.(http.Flusher).Flush()
		w.Write(body)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	post := func(c *sessionConn, raw, body string) string {
		u, err := url.Parse(raw)
		require.NoError(t, err)
		resp, err := c.post(context.Background(), 5*time.Second, u, &wireRequest{host: u.Host, uri: u.RequestURI(), body: []byte(body)})
		require.NoError(t, err)
		return string(resp.body)
	}
	sc := &sessionConn{timeout: 5 * time.Second}
	c := sc
	for _, m := range []string{"inform", "", "gpv-response"} {
		assert.Equal(t, "got:"+m, post(c, srv.URL+"/acs", m))
	}
	sc.close()
	assert.Equal(t, int32(1), conns.Load(), "one connection for the session")

	closeEach.Store(true)
	sc = &sessionConn{timeout: 5 * time.Second}
	c = sc
	for _, m := range []string{"a", "b", "c"} {
		assert.Equal(t, "got:"+m, post(c, srv.URL+"/acs", m))
	}
	sc.close()
	assert.Equal(t, int32(4), conns.Load(), "a new connection after each Connection: close")

	// Another server (a redirect's target): the connection follows.
	closeEach.Store(false)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("other")) }))
	defer other.Close()
	sc = &sessionConn{timeout: 5 * time.Second}
	c = sc
	post(c, srv.URL+"/acs", "x")
	assert.Equal(t, "other", post(c, other.URL+"/acs", "y"))
	sc.close()

	// A cancelled context ends a blocked exchange at once.
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // then the server notices the client leaving
		select {           // an ACS that never answers (until the client goes away)
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	}))
	defer stall.Close()
	sc = &sessionConn{timeout: 5 * time.Second}
	defer sc.close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	u, _ := url.Parse(stall.URL)
	start := time.Now()
	_, err := sc.post(ctx, 5*time.Second, u, &wireRequest{host: u.Host, uri: "/", body: []byte("z")})
	assert.Error(t, err)
	assert.Less(t, time.Since(start), 2*time.Second)
}
