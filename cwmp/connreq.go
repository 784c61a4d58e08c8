package cwmp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/cwmp-agent/cwmp-agent/internal/digest"
)

// ConnReqServer answers HTTP Connection Requests (TR-069 3.2.2): an
// authenticated GET on the exact path of ManagementServer.ConnectionRequestURL
// gets 200 with an empty body at once, and the agent starts a session with
// 6 CONNECTION REQUEST. Authentication is HTTP Digest (qop=auth) with
// ConnectionRequestUsername/Password, the digest uri checked against the
// request; accepted requests are rate limited, the excess answered 503.
type ConnReqServer struct {
	// Tree supplies the credentials and receives ConnectionRequestURL.
	Tree DataModel
	// Trigger is called for each accepted request (Agent.ConnectionRequest).
	Trigger func()
	// Path is the URL path ("/" + random hex); see Agent.ConnectionRequestPath.
	Path string
	// PublicURL, when set, is announced instead of the computed URL (a
	// port forward or a name); a URL without a path gets Path appended.
	PublicURL string
	// Burst and Every: at most Burst accepted requests at once, one more each
	// Every. 0 means 10 and 3 s.
	Burst int
	Every time.Duration
	// Logger; nil discards.
	Logger *slog.Logger

	ln      net.Listener
	srv     *http.Server
	digest  digest.Server
	mu      sync.Mutex // guards the following
	tokens  float64
	last    time.Time
	lastURL string
}

// ConnectionRequestPath returns the random path of this CPE's Connection
// Request URL, created once and kept in agent.json (TR-069: the path SHOULD
// be random and unique per CPE).
func (a *Agent) ConnectionRequestPath() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st.CRPath == "" {
		var b [12]byte
		rand.Read(b[:])
		a.st.CRPath = "/" + hex.EncodeToString(b[:])
		a.saveLocked()
	}
	return a.st.CRPath
}

// SetNotifier sets the source of changed parameters (before Run).
func (a *Agent) SetNotifier(n Notifier) { a.cfg.Notifier = n }

// AttachConnReq lets the agent keep the server's announced URL current
// before every session.
func (a *Agent) AttachConnReq(c *ConnReqServer) { a.cfg.ConnReq = c }

func (c *ConnReqServer) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// Listen opens the TCP listener (":7547" style address).
func (c *ConnReqServer) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return errorf("connection_request.listen %s: %w", addr, err)
	}
	c.ln = ln
	return nil
}

// Addr is the listening address (after Listen).
func (c *ConnReqServer) Addr() net.Addr {
	if c.ln == nil {
		return nil
	}
	return c.ln.Addr()
}

// Serve answers requests until ctx is done.
func (c *ConnReqServer) Serve(ctx context.Context) error {
	if c.ln == nil {
		return errors.New("cwmp: ConnReqServer.Serve before Listen")
	}
	c.srv = &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 15 * time.Second,
		WriteTimeout: 15 * time.Second, MaxHeaderBytes: 8 << 10, IdleTimeout: 60 * time.Second}
	done := make(chan struct{})
	go func() {
		// Keep ConnectionRequestURL current when the address changes
		// between sessions too.
		tick := time.NewTicker(30 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				c.srv.Shutdown(sctx)
				cancel()
				return
			case <-done:
				return
			case <-tick.C:
				if u, err := c.Tree.Get(c.Tree.Schema().RootName() + ".ManagementServer.URL"); err == nil && u != "" {
					c.Refresh(u)
				}
			}
		}
	}()
	err := c.srv.Serve(c.ln)
	close(done)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func (c *ConnReqServer) allow() bool {
	burst, every := c.Burst, c.Every
	if burst <= 0 {
		burst = 10
	}
	if every <= 0 {
		every = 3 * time.Second
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.last.IsZero() {
		c.tokens = float64(burst)
	} else {
		c.tokens += float64(now.Sub(c.last)) / float64(every)
		if c.tokens > float64(burst) {
			c.tokens = float64(burst)
		}
	}
	c.last = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

func (c *ConnReqServer) credentials() (string, string) {
	root := c.Tree.Schema().RootName() + ".ManagementServer."
	u, _ := c.Tree.Get(root + "ConnectionRequestUsername")
	p, _ := c.Tree.Get(root + "ConnectionRequestPassword")
	return u, p
}

// ServeHTTP handles one request. Bodies and queries are ignored (TR-069:
// no data is conveyed).
func (c *ConnReqServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != c.Path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if c.digest.Realm == "" {
		c.digest.Realm = "cwmp-agent"
	}
	user, pass := c.credentials()
	switch c.digest.Check(r.Header.Get("Authorization"), r.Method, r.RequestURI, user, pass) {
	case digest.OK:
	case digest.Stale:
		w.Header().Set("WWW-Authenticate", c.digest.Challenge(true))
		w.WriteHeader(http.StatusUnauthorized)
		return
	default:
		w.Header().Set("WWW-Authenticate", c.digest.Challenge(false))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if !c.allow() {
		c.logger().Warn("connection request refused by the rate limit", "remote", r.RemoteAddr)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	c.logger().Info("connection request accepted", "remote", r.RemoteAddr)
	if c.Trigger != nil {
		c.Trigger()
	}
}

// URL computes the Connection Request URL for an ACS URL: the local address
// this host uses to reach the ACS, the listening port, and the path.
func (c *ConnReqServer) URL(acsURL string) string {
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err == nil && (u.Path == "" || u.Path == "/") {
			u.Path = c.Path
			return u.String()
		}
		return c.PublicURL
	}
	port := "7547"
	host := ""
	if c.ln != nil {
		if ta, ok := c.ln.Addr().(*net.TCPAddr); ok {
			port = strconv.Itoa(ta.Port)
			if !ta.IP.IsUnspecified() {
				host = ta.IP.String()
			}
		}
	}
	if host == "" {
		host = localAddrFor(acsURL)
	}
	return "http://" + net.JoinHostPort(host, port) + c.Path
}

// localAddrFor returns the source address the kernel picks to reach the ACS
// (a connected UDP socket sends nothing), or a best guess.
func localAddrFor(acsURL string) string {
	u, err := url.Parse(acsURL)
	if err == nil && u.Hostname() != "" {
		port := u.Port()
		if port == "" {
			port = "80"
		}
		if conn, err := net.Dial("udp", net.JoinHostPort(u.Hostname(), port)); err == nil {
			defer conn.Close()
			if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
				return ua.IP.String()
			}
		}
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLoopback() && ip.IP.To4() != nil {
			return ip.IP.String()
		}
	}
	return "127.0.0.1"
}

// Refresh writes ManagementServer.ConnectionRequestURL when it changed. The
// write is the device's own, so it reaches the notify engine:
// ConnectionRequestURL has forced Active Notification.
func (c *ConnReqServer) Refresh(acsURL string) {
	u := c.URL(acsURL)
	c.mu.Lock()
	same := u == c.lastURL
	c.lastURL = u
	c.mu.Unlock()
	if same {
		return
	}
	p := c.Tree.Schema().RootName() + ".ManagementServer.ConnectionRequestURL"
	if cur, _ := c.Tree.Get(p); cur == u {
		return
	}
	if err := c.Tree.Set(p, u); err != nil {
		c.logger().Error("cannot set ConnectionRequestURL", "err", err)
	}
}
