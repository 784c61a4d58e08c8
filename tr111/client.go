package tr111

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/stun/v3"

	"github.com/cwmp-agent/cwmp-agent/internal/clock"
)

// Store is what the TR-111 modules need of the parameter tree; writes are
// the device's own (they reach the notify engine).
type Store interface {
	Get(path string) (string, error)
	Set(path, value string) error
}

// ClientConfig configures the CPE side of TR-111 Part 2.
type ClientConfig struct {
	Store Store
	// Root is "Device" or "InternetGatewayDevice".
	Root string
	// ListenAddr is the primary UDP address (udp_connection_request.listen):
	// STUN requests leave from it and UDP Connection Requests arrive on it.
	ListenAddr string
	// ListenPacket opens UDP sockets and Dial connects one (to learn the
	// local source address); nil means net.ListenPacket and net.Dial. Tests
	// give functions that work inside a network namespace.
	ListenPacket func(network, address string) (net.PacketConn, error)
	Dial         func(network, address string) (net.Conn, error)
	// OnConnectionRequest is called for each accepted UDP Connection Request.
	OnConnectionRequest func()
	// OnUDPRequest, when set, is told the outcome (UDPOutcome) of every
	// UDP Connection Request received: metrics. It must not block.
	OnUDPRequest func(outcome string)
	// LastTimestamp and SaveTimestamp keep the last accepted ts (TR-111
	// 2.2.1.4 allows keeping it across reboots); nil keeps it in memory.
	LastTimestamp func() uint64
	SaveTimestamp func(uint64)
	// MaxTimestampAhead bounds how far ahead of the CPE's clock a UDP
	// Connection Request's ts may be; 0 means DefaultMaxAhead.
	MaxTimestampAhead time.Duration
	// AllowConnectionRequest is the CPE's Connection Request rate limit,
	// shared with the HTTP listener; nil allows every request.
	AllowConnectionRequest func() bool
	// Clock drives every timer and timestamp; nil is the real clock.
	Clock clock.Clock
	// RTO is the first STUN retransmission interval; 0 means RFC 3489's
	// 100 ms (then doubling to 16 times it, nine requests in all).
	RTO time.Duration
	// Resolution ends binding-timeout discovery; 0 means 1 s.
	Resolution time.Duration
	// DiscoveryCap bounds discovery when STUNMaximumKeepAlivePeriod is -1;
	// 0 means 10 minutes.
	DiscoveryCap time.Duration
	// AddressPoll is how often the local address is checked; 0 means 5 s.
	AddressPoll time.Duration
	// CookieIDs sends RFC 5389-style transaction IDs (magic cookie first);
	// off by default: servers such as coturn change behaviour on the cookie.
	CookieIDs bool
	Logger    *slog.Logger
}

// State is what the client knows, for logs, tests and the control socket.
type State struct {
	Enabled        bool
	Phase          string // disabled, binding, discovery, monitoring, fixed, no-nat, unreachable
	Server         string
	Local          string
	Mapped         string
	NAT            bool
	Period         time.Duration // the keep-alive period in use
	Probes         int           // timeout-discovery probes sent in the last discovery
	BindingChanges int           // BINDING-CHANGE requests acknowledged
	Requests       int           // UDP Connection Requests accepted
}

// announcement is what a BINDING-CHANGE told a STUN server: a mapping,
// under a username and password. A server or credentials the CPE has not
// announced the mapping to (a new STUNServerAddress, a new STUNPassword)
// must hear of it as if the binding were new (TR-111 2.2.1.3): that server
// has no binding for the CPE.
type announcement struct {
	mapped, server, user, pass string
}

// ClientParams are the ManagementServer parameters the client reads: a
// committed change of any of them restarts it (TR-111 2.2.1: a change
// takes effect at once), once per transaction however many it changes.
var ClientParams = []string{"URL", "STUNEnable", "STUNServerAddress", "STUNServerPort", "STUNUsername",
	"STUNPassword", "STUNMaximumKeepAlivePeriod", "STUNMinimumKeepAlivePeriod"}

// IsClientParam reports whether a parameter path of the root is one of
// ClientParams.
func IsClientParam(root, path string) bool {
	rest, ok := strings.CutPrefix(path, root+".ManagementServer.")
	return ok && slices.Contains(ClientParams, rest)
}

// Client runs TR-111 2.2.1 on one UDP socket. Its reader goroutine owns the
// socket and tells STUN (first byte 0 or 1) from Connection Requests (a
// letter); its manager goroutine runs binding discovery, keep-alive and
// binding-timeout discovery.
type Client struct {
	cfg    ClientConfig
	log    *slog.Logger
	conn   net.PacketConn
	reload chan struct{}

	mu           sync.Mutex // guards the following
	pending      map[TxID]chan *Message
	lastActivity time.Time // last packet on the primary binding, either way
	lastSend     time.Time // last request from the primary port
	lastPlainTx  time.Time // last new plain (no BINDING-CHANGE) transaction from it
	acceptor     *UDPAcceptor
	leak         bool // a probe answer reached the secondary port
	server       *net.UDPAddr
	st           State
	announced    announcement // what the last BINDING-CHANGE told a server
	authFailures int          // failed UDP Connection Requests since authLogged
	authLogged   time.Time
}

// NewClient opens the primary socket.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Store == nil || cfg.Root == "" {
		return nil, errors.New("tr111: ClientConfig needs Store and Root")
	}
	if cfg.ListenPacket == nil {
		cfg.ListenPacket = net.ListenPacket
	}
	if cfg.Dial == nil {
		cfg.Dial = net.Dial
	}
	if cfg.RTO == 0 {
		cfg.RTO = 100 * time.Millisecond
	}
	if cfg.Resolution == 0 {
		cfg.Resolution = time.Second
	}
	if cfg.DiscoveryCap == 0 {
		cfg.DiscoveryCap = 10 * time.Minute
	}
	if cfg.AddressPoll == 0 {
		cfg.AddressPoll = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = ":7547"
	}
	conn, err := cfg.ListenPacket("udp4", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("tr111: udp_connection_request.listen %s: %w", cfg.ListenAddr, err)
	}
	c := &Client{cfg: cfg, log: cfg.Logger.With("component", "tr111"), conn: conn, reload: make(chan struct{}, 1),
		pending: map[TxID]chan *Message{}}
	var last uint64
	if cfg.LastTimestamp != nil {
		last = cfg.LastTimestamp()
	}
	c.acceptor = NewUDPAcceptor(func() (string, string) {
		return c.param("ConnectionRequestUsername"), c.param("ConnectionRequestPassword")
	}, last, cfg.SaveTimestamp)
	c.acceptor.Now, c.acceptor.MaxAhead, c.acceptor.Allow = cfg.Clock.Now, cfg.MaxTimestampAhead, cfg.AllowConnectionRequest
	return c, nil
}

// LocalAddr is the primary socket's address.
func (c *Client) LocalAddr() *net.UDPAddr { return c.conn.LocalAddr().(*net.UDPAddr) }

// Reload makes the client read its parameters again at once (the ACS
// changed a STUN parameter).
func (c *Client) Reload() {
	select {
	case c.reload <- struct{}{}:
	default:
	}
}

// State returns a snapshot.
func (c *Client) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

func (c *Client) param(name string) string {
	v, _ := c.cfg.Store.Get(c.cfg.Root + ".ManagementServer." + name)
	return v
}

// Run reads the socket and manages the binding until ctx ends.
func (c *Client) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.readLoop(ctx) }()
	go func() { defer wg.Done(); c.manage(ctx) }()
	<-ctx.Done()
	c.conn.Close()
	wg.Wait()
	return ctx.Err()
}

func (c *Client) readLoop(ctx context.Context) {
	buf := make([]byte, 2048)
	for {
		n, from, err := c.conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			c.log.Warn("read", "err", err)
			continue
		}
		if n == 0 {
			continue
		}
		b := buf[:n]
		switch first := b[0]; {
		case first == 0 || first == 1: // STUN (TR-111 2.2.1.4)
			c.handleSTUN(b, from)
		case first >= 'A' && first <= 'Z' || first >= 'a' && first <= 'z':
			c.handleConnReq(b, from)
		}
	}
}

func (c *Client) fromServer(from net.Addr) bool {
	ua, ok := from.(*net.UDPAddr)
	return ok && c.server != nil && ua.IP.Equal(c.server.IP) && ua.Port == c.server.Port
}

func (c *Client) handleSTUN(b []byte, from net.Addr) {
	m, err := DecodeSTUN(b)
	if err != nil || m.Type.Class == stun.ClassRequest || m.Type.Class == stun.ClassIndication {
		return
	}
	c.mu.Lock()
	if c.fromServer(from) {
		c.lastActivity = c.cfg.Clock.Now()
	}
	ch := c.pending[m.ID]
	c.mu.Unlock()
	if ch != nil {
		select {
		case ch <- m:
		default:
		}
	}
}

// handleConnReq validates and authenticates a UDP Connection Request
// (TR-111 2.2.1.4); anything that fails is ignored silently.
func (c *Client) handleConnReq(b []byte, from net.Addr) {
	r, err := ParseUDPConnRequest(b)
	if err != nil {
		c.observeUDP(err)
		return
	}
	c.mu.Lock()
	if c.fromServer(from) {
		c.lastActivity = c.cfg.Clock.Now() // it came through the binding and refreshed it
	}
	c.mu.Unlock()
	err = c.acceptor.Accept(r)
	c.observeUDP(err)
	if err != nil {
		c.log.Debug("UDP Connection Request ignored", "err", err, "from", from)
		if errors.Is(err, ErrBadSignature) || errors.Is(err, ErrWrongUser) {
			c.authFailed(from)
		}
		return
	}
	c.mu.Lock()
	c.st.Requests++
	c.mu.Unlock()
	c.log.Info("UDP Connection Request accepted", "from", from)
	if c.cfg.OnConnectionRequest != nil {
		c.cfg.OnConnectionRequest()
	}
}

func (c *Client) observeUDP(err error) {
	if c.cfg.OnUDPRequest != nil {
		c.cfg.OnUDPRequest(UDPOutcome(err))
	}
}

// authFailed logs failed UDP Connection Request authentications, at most
// one line a minute with the count (never the credentials). They are not
// blocked by source: a UDP source can be forged, and blocking it would let
// a forger lock out the ACS's STUN server.
func (c *Client) authFailed(from net.Addr) {
	now := c.cfg.Clock.Now()
	c.mu.Lock()
	c.authFailures++
	n := c.authFailures
	logIt := c.authLogged.IsZero() || now.Sub(c.authLogged) >= time.Minute
	if logIt {
		c.authLogged, c.authFailures = now, 0
	}
	c.mu.Unlock()
	if logIt {
		c.log.Warn("UDP Connection Request authentication failed", "from", from.String(), "failures", n)
	}
}

// stunParams is the client's view of the ManagementServer parameters.
type stunParams struct {
	enable     bool
	host       string
	port       int
	user, pass string
	min, max   time.Duration // max < 0: none
}

func (c *Client) readParams() stunParams {
	var p stunParams
	p.enable = c.param("STUNEnable") == "true"
	p.host = c.param("STUNServerAddress")
	if p.host == "" {
		// TR-111 2.2.1.1: the host of the ACS URL.
		if u, err := url.Parse(c.param("URL")); err == nil {
			p.host = u.Hostname()
		}
	}
	p.port, _ = strconv.Atoi(c.param("STUNServerPort"))
	if p.port == 0 {
		p.port = 3478
	}
	p.user, p.pass = c.param("STUNUsername"), c.param("STUNPassword")
	mn, _ := strconv.Atoi(c.param("STUNMinimumKeepAlivePeriod"))
	mx, err := strconv.Atoi(c.param("STUNMaximumKeepAlivePeriod"))
	if err != nil {
		mx = -1
	}
	p.min = time.Duration(mn) * time.Second
	p.max = time.Duration(mx) * time.Second
	if mx < 0 {
		p.max = -1
	}
	return p
}

var (
	errReload    = errors.New("tr111: parameters changed")
	errMoved     = errors.New("tr111: local address changed")
	errTimeout   = errors.New("tr111: no STUN response")
	errRejected  = errors.New("tr111: STUN error response")
	errNoMapping = errors.New("tr111: response without MAPPED-ADDRESS")
)

func (c *Client) setPhase(phase string) {
	c.mu.Lock()
	c.st.Phase = phase
	c.mu.Unlock()
}

// manage restarts a cycle whenever parameters or the local address change.
// Cycles never overlap: one goroutine runs them one after the other, and a
// parameter change ends the running one at its next wait (or aborts its
// plain Binding Request) before the next reads the parameters.
func (c *Client) manage(ctx context.Context) {
	backoff := time.Duration(0)
	moved := true // the first cycle has no earlier request to space from
	for ctx.Err() == nil {
		err := c.cycle(ctx, moved)
		moved = errors.Is(err, errMoved)
		switch {
		case err == nil, errors.Is(err, errReload), errors.Is(err, errMoved):
			backoff = 0
			continue
		case ctx.Err() != nil:
			return
		}
		// The server is unreachable or refuses: try again later, sooner if
		// something changes.
		if backoff == 0 {
			backoff = 5 * time.Second
		} else if backoff < 5*time.Minute {
			backoff *= 2
		}
		c.log.Warn("STUN binding discovery failed", "err", err, "retry_in", backoff)
		c.setPhase("unreachable")
		if errors.Is(c.sleep(ctx, c.cfg.Clock.Now().Add(backoff), ""), errReload) {
			backoff = 0
		}
	}
}

// sleep waits until t; it returns errReload or errMoved early when the
// parameters or (if local is set) the local address change.
func (c *Client) sleep(ctx context.Context, t time.Time, local string) error {
	for {
		d := t.Sub(c.cfg.Clock.Now())
		if d <= 0 {
			return nil
		}
		if local != "" && d > c.cfg.AddressPoll {
			d = c.cfg.AddressPoll
		}
		tm := c.cfg.Clock.NewTimer(d)
		select {
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		case <-c.reload:
			tm.Stop()
			return errReload
		case <-tm.C():
		}
		if local != "" && c.localIP() != local {
			return errMoved
		}
	}
}

// localIP is the address this host uses towards the server (or the ACS),
// as a socket bound to the wildcard address cannot say.
func (c *Client) localIP() string {
	if la := c.LocalAddr(); !la.IP.IsUnspecified() {
		return la.IP.String()
	}
	target := ""
	c.mu.Lock()
	if c.server != nil {
		target = c.server.String()
	}
	c.mu.Unlock()
	if target == "" {
		if u, err := url.Parse(c.param("URL")); err == nil && u.Hostname() != "" {
			port := u.Port()
			if port == "" {
				port = "80"
			}
			target = net.JoinHostPort(u.Hostname(), port)
		}
	}
	if target == "" {
		return ""
	}
	// A connected UDP socket learns its source address without sending.
	conn, err := c.cfg.Dial("udp4", target)
	if err != nil {
		return ""
	}
	defer conn.Close()
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		return ua.IP.String()
	}
	return ""
}

// authority formats host:port, leaving the port out when it is 80 (TR-111
// Table 6).
func authority(ip string, port int) string {
	if port == 80 {
		return ip
	}
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

// publish writes NATDetected and UDPConnectionRequestAddress when they
// changed (TR-111 2.2.1.3).
func (c *Client) publish(nat bool, addr string) {
	root := c.cfg.Root + ".ManagementServer."
	n := strconv.FormatBool(nat)
	if v, _ := c.cfg.Store.Get(root + "NATDetected"); v != n {
		c.cfg.Store.Set(root+"NATDetected", n)
	}
	if v, _ := c.cfg.Store.Get(root + "UDPConnectionRequestAddress"); v != addr && addr != "" {
		c.cfg.Store.Set(root+"UDPConnectionRequestAddress", addr)
		c.log.Info("UDPConnectionRequestAddress", "value", addr, "nat", nat)
	}
}

// cycle runs from reading the parameters until they or the address change.
// moved says the local address changed (or this is the first cycle): a
// binding for a new address is discovered at once; otherwise the first
// Binding Request waits until STUNMinimumKeepAlivePeriod has passed since
// the last one, as only retransmissions may come closer (TR-111 data
// model, STUNMinimumKeepAlivePeriod).
func (c *Client) cycle(ctx context.Context, moved bool) error {
	p := c.readParams()
	port := c.LocalAddr().Port
	c.mu.Lock()
	c.st = State{Enabled: p.enable, Requests: c.st.Requests, BindingChanges: c.st.BindingChanges}
	c.mu.Unlock()
	if !p.enable {
		c.mu.Lock()
		c.server = nil
		c.st.Phase = "disabled"
		c.mu.Unlock()
		// STUN off: NATDetected is false and the address is the local one.
		local := c.localIP()
		c.publish(false, authority(local, port))
		c.mu.Lock()
		c.st.Local = authority(local, port)
		c.mu.Unlock()
		return c.sleep(ctx, c.cfg.Clock.Now().Add(24*time.Hour), orNone(local))
	}
	if p.host == "" {
		return errors.New("tr111: no STUN server (STUNServerAddress empty and no ACS URL host)")
	}
	server, err := net.ResolveUDPAddr("udp4", net.JoinHostPort(p.host, strconv.Itoa(p.port)))
	if err != nil {
		return fmt.Errorf("tr111: STUN server %s: %w", p.host, err)
	}
	c.mu.Lock()
	c.server = server
	c.st.Server = server.String()
	c.st.Phase = "binding"
	c.mu.Unlock()
	local := c.localIP()
	if local == "" {
		return errors.New("tr111: no local address towards the STUN server")
	}
	c.mu.Lock()
	c.st.Local = authority(local, port)
	last := c.lastPlainTx
	c.mu.Unlock()
	if !moved && p.min > 0 && !last.IsZero() {
		if err := c.sleep(ctx, last.Add(p.min), local); err != nil {
			return err
		}
	}

	mapped, err := c.bind(ctx, p, server)
	if err != nil {
		return err
	}
	if err := c.useBinding(ctx, p, server, local, port, mapped); err != nil {
		return err
	}

	nat := c.State().NAT
	switch {
	case !nat:
		// Nothing to keep alive; look again now and then in case a NAT
		// appears.
		period := 5 * time.Minute
		if p.max > 0 {
			period = p.max
		}
		if p.min > period {
			period = p.min
		}
		c.setPeriod("no-nat", period)
		return c.keepAlive(ctx, p, server, local, port, period)
	case p.min == p.max && p.min > 0:
		c.setPeriod("fixed", p.min)
		return c.keepAlive(ctx, p, server, local, port, p.min)
	}
	return c.discoverAndMonitor(ctx, p, server, local, port)
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *Client) setPeriod(phase string, d time.Duration) {
	c.mu.Lock()
	c.st.Phase, c.st.Period = phase, d
	c.mu.Unlock()
	c.log.Info("STUN keep-alive", "phase", phase, "period", d)
}

// useBinding records a mapping: NATDetected, UDPConnectionRequestAddress,
// and a BINDING-CHANGE when it is new to the server and credentials in use
// (TR-111 2.2.1.3). It returns an error only when ctx ends.
func (c *Client) useBinding(ctx context.Context, p stunParams, server *net.UDPAddr, local string, port int, mapped *net.UDPAddr) error {
	nat := !(mapped.IP.String() == local && mapped.Port == port)
	addr := authority(local, port)
	if nat {
		addr = authority(mapped.IP.String(), mapped.Port)
	}
	now := announcement{mapped: mapped.String(), server: server.String(), user: p.user, pass: p.pass}
	c.mu.Lock()
	c.st.NAT, c.st.Mapped = nat, mapped.String()
	changed := c.announced != now
	c.mu.Unlock()
	c.publish(nat, addr)
	if !changed {
		return nil
	}
	// Once per change, with retransmissions; a failure is not retried
	// until the binding changes again. A parameter change does not cut
	// it short: it is one request, and cutting it would make the next
	// cycle send a second one for the same binding.
	err := c.bindingChange(ctx, p, server)
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case err != nil:
		c.log.Warn("BINDING-CHANGE not acknowledged", "err", err)
	default:
		c.mu.Lock()
		c.st.BindingChanges++
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.announced = now
	c.mu.Unlock()
	return nil
}

// keepAlive sends a Binding Request from the primary port every period and
// follows changes of the mapping.
func (c *Client) keepAlive(ctx context.Context, p stunParams, server *net.UDPAddr, local string, port int, period time.Duration) error {
	for {
		c.mu.Lock()
		next := c.lastSend.Add(period)
		c.mu.Unlock()
		if err := c.sleep(ctx, next, local); err != nil {
			return err
		}
		mapped, err := c.bind(ctx, p, server)
		if err != nil {
			return err
		}
		if err := c.useBinding(ctx, p, server, local, port, mapped); err != nil {
			return err
		}
		if nat := c.State().NAT; nat && (p.min != p.max) && c.State().Phase == "no-nat" {
			return nil // a NAT appeared: start over with discovery
		}
	}
}

// discoverAndMonitor learns the binding timeout with probes from a second
// port (TR-111 2.2.1.2): a binary search between STUNMinimumKeepAlivePeriod
// and STUNMaximumKeepAlivePeriod, each probe asking the server (with
// RESPONSE-ADDRESS) to answer to the primary binding after it has been idle
// for the candidate time. Then it keeps the binding alive at the period
// found, testing it before each refresh, and starts over when it is lost.
func (c *Client) discoverAndMonitor(ctx context.Context, p stunParams, server *net.UDPAddr, local string, port int) error {
	sec, err := c.cfg.ListenPacket("udp4", net.JoinHostPort(localBind(c.LocalAddr()), "0"))
	if err != nil {
		return fmt.Errorf("tr111: secondary port: %w", err)
	}
	defer sec.Close()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.drainSecondary(sctx, sec)

	lo := p.min
	hi := p.max
	if hi < 0 || hi > c.cfg.DiscoveryCap {
		hi = c.cfg.DiscoveryCap
	}
	floor := p.min
	if floor < time.Second {
		floor = time.Second
	}
	for {
		c.mu.Lock()
		c.st.Phase, c.st.Probes = "discovery", 0
		c.mu.Unlock()
		c.log.Info("binding-timeout discovery", "from", lo, "to", hi)
		for hi-lo > c.cfg.Resolution {
			x := lo + (hi-lo)/2
			alive, err := c.probeAfter(ctx, p, server, sec, local, x)
			if err != nil {
				return err
			}
			if c.leaked() {
				// The server ignores RESPONSE-ADDRESS: the timeout cannot be
				// measured; keep the binding alive at the minimum period.
				c.log.Warn("the STUN server ignores RESPONSE-ADDRESS; binding-timeout discovery is not possible")
				period := floor
				if p.max > 0 && period > p.max {
					period = p.max
				}
				c.setPeriod("fixed", period)
				return c.keepAlive(ctx, p, server, local, port, period)
			}
			if alive {
				lo = x
			} else {
				hi = x
				if err := c.rebind(ctx, p, server, local, port); err != nil {
					return err
				}
			}
		}
		// The longest idle time known to keep the binding, less a margin
		// for timer jitter, within [max(min, 1 s), max].
		period := lo - lo/20
		if period < floor {
			period = floor
		}
		if p.max > 0 && period > p.max {
			period = p.max
		}
		c.setPeriod("monitoring", period)
		for {
			alive, err := c.probeAfter(ctx, p, server, sec, local, period)
			if err != nil {
				return err
			}
			if !alive {
				c.log.Info("binding lost before the keep-alive; discovering the timeout again", "period", period)
				if err := c.rebind(ctx, p, server, local, port); err != nil {
					return err
				}
				lo, hi = p.min, period
				break
			}
			mapped, err := c.bind(ctx, p, server)
			if err != nil {
				return err
			}
			if err := c.useBinding(ctx, p, server, local, port, mapped); err != nil {
				return err
			}
		}
	}
}

func localBind(a *net.UDPAddr) string {
	if a.IP.IsUnspecified() {
		return ""
	}
	return a.IP.String()
}

// rebind discovers the binding again from the primary port.
func (c *Client) rebind(ctx context.Context, p stunParams, server *net.UDPAddr, local string, port int) error {
	mapped, err := c.bind(ctx, p, server)
	if err != nil {
		return err
	}
	return c.useBinding(ctx, p, server, local, port, mapped)
}

func (c *Client) leaked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leak
}

// drainSecondary reads the secondary port: an answer there means the server
// did not honour RESPONSE-ADDRESS.
func (c *Client) drainSecondary(ctx context.Context, sec net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, _, err := sec.ReadFrom(buf)
		if err != nil {
			return
		}
		if n > 0 && buf[0] <= 1 {
			if m, err := DecodeSTUN(buf[:n]); err == nil && m.Type.Class != stun.ClassRequest {
				c.mu.Lock()
				c.leak = true
				c.mu.Unlock()
			}
		}
	}
}

// probeAfter waits until the primary binding has been idle for d, then asks
// the server, from the secondary port, to answer to the primary binding.
// The Minimum limit does not apply to the secondary port (TR-111 2.2.1.2).
func (c *Client) probeAfter(ctx context.Context, p stunParams, server *net.UDPAddr, sec net.PacketConn, local string, d time.Duration) (bool, error) {
	c.mu.Lock()
	at := c.lastActivity.Add(d)
	mapped := c.st.Mapped
	c.mu.Unlock()
	if err := c.sleep(ctx, at, local); err != nil {
		return false, err
	}
	// Something may have crossed the binding meanwhile (a Connection
	// Request): the idle time counts from the last packet.
	c.mu.Lock()
	if later := c.lastActivity.Add(d); later.After(at) {
		c.mu.Unlock()
		return c.probeAfter(ctx, p, server, sec, local, d)
	}
	c.st.Probes++
	c.mu.Unlock()
	ra, err := net.ResolveUDPAddr("udp4", mapped)
	if err != nil {
		return false, err
	}
	id := NewTxID(c.cfg.CookieIDs)
	req, err := buildSTUN(stun.BindingRequest, txID(id), addressAttr{AttrResponseAddress, ra})
	if err != nil {
		return false, err
	}
	_, err = c.transact(ctx, sec, server, id, req, txProbe, nil)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errTimeout):
		return false, nil
	}
	return false, err
}

// bind sends a Binding Request from the primary port and returns the
// mapped address. A 401 is answered once with USERNAME and
// MESSAGE-INTEGRITY (TR-111 2.2.1.1).
func (c *Client) bind(ctx context.Context, p stunParams, server *net.UDPAddr) (*net.UDPAddr, error) {
	m, err := c.request(ctx, p, server, false)
	if err != nil {
		return nil, err
	}
	if a, err := m.Address(stun.AttrMappedAddress); err == nil {
		return a, nil
	}
	if m.ID.HasCookie() {
		var xa stun.XORMappedAddress
		if err := xa.GetFrom(&m.view); err == nil {
			return &net.UDPAddr{IP: xa.IP, Port: xa.Port}, nil
		}
	}
	return nil, errNoMapping
}

// bindingChange announces a new binding (TR-111 2.2.1.3): from the primary
// port, with BINDING-CHANGE, never RESPONSE-ADDRESS or CHANGE-REQUEST.
func (c *Client) bindingChange(ctx context.Context, p stunParams, server *net.UDPAddr) error {
	_, err := c.request(ctx, p, server, true)
	return err
}

// request sends a Binding Request from the primary port: always with
// CONNECTION-REQUEST-BINDING, with USERNAME when STUNUsername is set, and
// MESSAGE-INTEGRITY only in answer to a 401.
func (c *Client) request(ctx context.Context, p stunParams, server *net.UDPAddr, change bool) (*Message, error) {
	build := func(id TxID, integrity bool) ([]byte, error) {
		s := []stun.Setter{stun.BindingRequest, txID(id), connReqBinding{}}
		if change {
			s = append(s, bindingChange{})
		}
		if p.user != "" {
			s = append(s, paddedUsername(p.user))
		}
		if integrity {
			s = append(s, classicIntegrity(p.pass))
		}
		return buildSTUN(s...)
	}
	kind := txPlain
	if change {
		kind = txChange
	}
	id := NewTxID(c.cfg.CookieIDs)
	req, err := build(id, false)
	if err != nil {
		return nil, err
	}
	m, err := c.transact(ctx, c.conn, server, id, req, kind, nil)
	if err != nil {
		return nil, err
	}
	if m.Type.Class == stun.ClassErrorResponse {
		if m.ErrorCode() == 401 && p.user != "" && p.pass != "" {
			// The same request again, with credentials: part of this
			// exchange, not a new Binding Request for the minimum period.
			id = NewTxID(c.cfg.CookieIDs)
			req, err = build(id, true)
			if err != nil {
				return nil, err
			}
			if kind == txPlain {
				kind = txPlainRetry
			}
			m, err = c.transact(ctx, c.conn, server, id, req, kind, []byte(p.pass))
			if err != nil {
				return nil, err
			}
			if m.Type.Class != stun.ClassErrorResponse {
				return m, nil
			}
		}
		return nil, fmt.Errorf("%w: %d", errRejected, m.ErrorCode())
	}
	return m, nil
}

// txKind says what a transaction is, for the timing rules.
type txKind uint8

const (
	txProbe      txKind = iota // from the secondary port (binding-timeout discovery)
	txPlain                    // a new Binding Request from the primary port
	txPlainRetry               // the same, again with MESSAGE-INTEGRITY after a 401
	txChange                   // a BINDING-CHANGE from the primary port
)

// transact sends a request with the RFC 3489 retransmissions (RTO, doubling
// up to 16 RTO, nine requests, then 16 RTO more) and returns the first
// matching response. With key set, a response without valid
// MESSAGE-INTEGRITY is discarded (TR-111 2.2.1.1). A parameter change
// aborts it with errReload, except a BINDING-CHANGE, which is seen through.
func (c *Client) transact(ctx context.Context, conn net.PacketConn, to *net.UDPAddr, id TxID, req []byte, kind txKind, key []byte) (*Message, error) {
	primary := kind != txProbe
	reload := c.reload
	if kind == txChange {
		reload = nil
	}
	ch := make(chan *Message, 4)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	rto := c.cfg.RTO
	wait := rto
	// RFC 3489 9.3: nine requests, then 16*RTO more (9.5 s at the default
	// 100 ms). A binding-timeout probe gives up after five (3.1 s): its
	// answer fails to come when the binding is gone, which the search
	// expects half the time, and a probe taken for dead that was not only
	// makes the period found shorter, the safe side (TR-111 2.2.1.2 leaves
	// the probes' procedure to the CPE).
	maxSends := 9
	if kind == txProbe {
		maxSends = 5
	}
	for sent := 0; ; {
		if sent < maxSends {
			if _, err := conn.WriteTo(req, to); err != nil {
				return nil, fmt.Errorf("tr111: send: %w", err)
			}
			sent++
			if primary {
				c.mu.Lock()
				now := c.cfg.Clock.Now()
				c.lastActivity, c.lastSend = now, now
				if kind == txPlain && sent == 1 {
					c.lastPlainTx = now
				}
				c.mu.Unlock()
			}
		}
		if sent == maxSends {
			wait = 16 * rto
		}
		tm := c.cfg.Clock.NewTimer(wait)
	recv:
		for {
			select {
			case <-ctx.Done():
				tm.Stop()
				return nil, ctx.Err()
			case <-reload:
				tm.Stop()
				return nil, errReload
			case m := <-ch:
				if key != nil && m.Type.Class == stun.ClassSuccessResponse && !m.CheckIntegrity(key) {
					c.log.Warn("STUN response without valid MESSAGE-INTEGRITY discarded")
					continue
				}
				tm.Stop()
				return m, nil
			case <-tm.C():
				break recv
			}
		}
		if sent == maxSends && wait == 16*rto {
			return nil, errTimeout
		}
		if wait < 16*rto {
			wait *= 2
		}
	}
}
