package cwmp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
	"github.com/cwmp-agent/cwmp-agent/internal/clock"
	"github.com/cwmp-agent/cwmp-agent/internal/digest"
	"github.com/cwmp-agent/cwmp-agent/internal/netguard"
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
	// Path is the URL path ("/" + random hex); "" makes one, kept in
	// StateDir's connreq.json.
	Path string
	// StateDir keeps the path across restarts; "" keeps it in memory.
	StateDir string
	// PublicURL, when set, is announced instead of the computed URL (a
	// port forward or a name); a URL without a path gets Path appended.
	PublicURL string
	// Burst and Every: at most Burst accepted requests at once, one more each
	// Every. 0 means 10 and 3 s. The limit is the CPE's one for Connection
	// Requests of every kind: the UDP ones ask Allow too.
	Burst int
	Every time.Duration
	// Limits bound the listener's connections: MaxConnReqConns in all and
	// MaxConnReqConnsPerSource from one address when zero.
	Limits netguard.Limits
	// Clock decides the rate limit and the refusal of guessing sources;
	// nil is the real clock.
	Clock clock.Clock
	// OnRequest, when set, is told the outcome of every request on the
	// path: "accepted", "challenged" (401 asking for digest credentials,
	// the first half of every authenticated request), "auth_failed",
	// "blocked" (a source guessing passwords), "rate_limited", "invalid"
	// (a method other than GET). Metrics; it must not block.
	OnRequest func(outcome string)
	// Logger; nil discards.
	Logger *slog.Logger

	ln     net.Listener
	srv    *http.Server
	digest digest.Server
	once   sync.Once
	limit  *rate.Limiter
	guard  *authGuard
}

// Connection Request listener defaults: a CR is one short GET, so a
// client that does not send its headers within ConnReqHeaderTimeout is
// dropped, and no connection is kept idle for long.
const (
	MaxConnReqConns          = 64
	MaxConnReqConnsPerSource = 8
	ConnReqHeaderTimeout     = 5 * time.Second
	connReqIdleTimeout       = 5 * time.Second
)

// connReqState is what connreq.json holds.
type connReqState struct {
	Path string `json:"path"`
}

// ConnReqStateFile is the server's file in the state directory.
const ConnReqStateFile = "connreq.json"

// loadPath gives the server its path: Path when set, else the one kept in
// connreq.json, else (from an agent.json of an earlier release, which kept
// it there) cr_path, else a new random one, saved (TR-069: the path SHOULD
// be random and unique per CPE; it stays the same across restarts and
// factory resets, so that the ACS can keep using it).
func (c *ConnReqServer) loadPath() {
	if c.Path != "" {
		return
	}
	var st connReqState
	if c.StateDir != "" {
		p := filepath.Join(c.StateDir, ConnReqStateFile)
		if err := atomicfile.ReadJSON(p, &st); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.logger().Error("Connection Request path not restored; a new one is made", "err", err)
		}
		if st.Path == "" {
			var old struct {
				CRPath string `json:"cr_path"`
			}
			if atomicfile.PeekJSON(filepath.Join(c.StateDir, StateFileName), &old) == nil && strings.HasPrefix(old.CRPath, "/") {
				st.Path = old.CRPath
			}
		}
	}
	if st.Path == "" {
		var b [12]byte
		rand.Read(b[:])
		st.Path = "/" + hex.EncodeToString(b[:])
	}
	c.Path = st.Path
	if c.StateDir != "" {
		if err := atomicfile.WriteJSON(filepath.Join(c.StateDir, ConnReqStateFile), st); err != nil {
			c.logger().Error("cannot save the Connection Request path", "err", err)
		}
	}
}

// URLPath is the path of the Connection Request URL (made on first use).
func (c *ConnReqServer) URLPath() string {
	c.init()
	return c.Path
}

func (c *ConnReqServer) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

func (c *ConnReqServer) init() {
	c.once.Do(func() {
		if c.Clock == nil {
			c.Clock = clock.Real{}
		}
		burst, every := c.Burst, c.Every
		if burst <= 0 {
			burst = 10
		}
		if every <= 0 {
			every = 3 * time.Second
		}
		c.limit = rate.NewLimiter(rate.Every(every), burst)
		c.guard = newAuthGuard(c.Clock, c.logger())
		if c.digest.Realm == "" {
			c.digest.Realm = "cwmp-agent"
		}
		c.loadPath()
	})
}

// Listen opens the TCP listener (":7547" style address).
func (c *ConnReqServer) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return errorf("connection_request.listen %s: %w", addr, err)
	}
	lim := c.Limits
	if lim.Max == 0 {
		lim.Max = MaxConnReqConns
	}
	if lim.PerSource == 0 {
		lim.PerSource = MaxConnReqConnsPerSource
	}
	c.ln = netguard.Limit(ln, lim)
	return nil
}

// Close closes the listener of a server that will not Serve (a CPE whose
// assembly failed after Listen).
func (c *ConnReqServer) Close() error {
	if c.ln == nil {
		return nil
	}
	return c.ln.Close()
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
	c.srv = NewConnReqHTTPServer(c)
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

// NewConnReqHTTPServer is the http.Server of a Connection Request
// listener (the CPE's, or a fleet's shared one): short timeouts, small
// headers, no idle connections kept, and its errors in the log rather than
// on standard error.
func NewConnReqHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: ConnReqHeaderTimeout, ReadTimeout: 2 * ConnReqHeaderTimeout,
		WriteTimeout: 2 * ConnReqHeaderTimeout, MaxHeaderBytes: 8 << 10, IdleTimeout: connReqIdleTimeout,
		ErrorLog: log.New(io.Discard, "", 0)}
}

// Allow takes one token of the CPE's Connection Request rate limit: at
// most Burst at once, one more every Every. HTTP, UDP (TR-111) and any
// other kind of Connection Request share it.
func (c *ConnReqServer) Allow() bool {
	c.init()
	return c.limit.AllowN(c.Clock.Now(), 1)
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
	c.init()
	if r.URL.Path != c.Path {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		c.observe("invalid")
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	src, _, _ := net.SplitHostPort(r.RemoteAddr)
	if blocked, left := c.guard.blocked(src); blocked {
		c.observe("blocked")
		w.Header().Set("Retry-After", strconv.Itoa(int(left/time.Second)+1))
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	user, pass := c.credentials()
	authz := r.Header.Get("Authorization")
	res := digest.Denied
	if pass != "" {
		// Without a password nothing authenticates: an empty key would
		// let anyone in (the agent generates credentials at first start).
		res = c.digest.Check(authz, r.Method, r.RequestURI, user, pass)
	}
	switch res {
	case digest.OK:
	case digest.Stale:
		c.observe("challenged")
		w.Header().Set("WWW-Authenticate", c.digest.Challenge(true))
		w.WriteHeader(http.StatusUnauthorized)
		return
	default:
		if authz != "" {
			c.guard.failed(src) // a first request without credentials is no failure
			c.observe("auth_failed")
		} else {
			c.observe("challenged")
		}
		w.Header().Set("WWW-Authenticate", c.digest.Challenge(false))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if !c.Allow() {
		c.observe("rate_limited")
		c.logger().Warn("connection request refused by the rate limit", "remote", r.RemoteAddr)
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	c.observe("accepted")
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	c.logger().Info("connection request accepted", "remote", r.RemoteAddr)
	if c.Trigger != nil {
		c.Trigger()
	}
}

func (c *ConnReqServer) observe(outcome string) {
	if c.OnRequest != nil {
		c.OnRequest(outcome)
	}
}

// URL computes the Connection Request URL for an ACS URL: the local address
// this host uses to reach the ACS, the listening port, and the path.
func (c *ConnReqServer) URL(acsURL string) string {
	c.init()
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

// Refresh writes ManagementServer.ConnectionRequestURL when the tree's
// value differs from the computed one: it compares with the tree, not with
// what it wrote last, because a factory reset empties the tree behind its
// back. The write is the device's own, so it reaches the notify engine:
// ConnectionRequestURL has forced Active Notification.
func (c *ConnReqServer) Refresh(acsURL string) {
	u := c.URL(acsURL)
	p := c.Tree.Schema().RootName() + ".ManagementServer.ConnectionRequestURL"
	if cur, _ := c.Tree.Get(p); cur == u {
		return
	}
	if err := c.Tree.Set(p, u); err != nil {
		c.logger().Error("cannot set ConnectionRequestURL", "err", err)
	}
}
