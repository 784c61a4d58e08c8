// Package xmppcr receives XMPP Connection Requests (TR-069 Amendment 5
// Annex K, Device:2's Device.XMPP.Connection.{i} and ManagementServer's
// ConnReqXMPPConnection): the CPE keeps one authenticated XMPP connection
// to its server, and an ACS asks for a session with a connectionRequest IQ
// that the CPE accepts only from an allowed Jabber ID with the Connection
// Request credentials.
//
// The XMPP stream (TLS, SASL, binding, keep-alive) is gosrc.io/xmpp's; the
// rules of TR-069 are this package's. One goroutine, Run's, owns the
// connection; tree hooks post to it.
package xmppcr

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/xml"
	"errors"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"gosrc.io/xmpp"
	"gosrc.io/xmpp/stanza"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
)

// NS is the namespace of the connectionRequest IQ (TR-069 Annex K).
const NS = "urn:broadband-forum-org:cwmp:xmppConnReq-1-0"

// Tree is what the client needs of the parameter tree.
type Tree interface {
	Schema() *datamodel.Schema
	Get(path string) (string, error)
	SetValues(changes []datamodel.Change, opt datamodel.SetOptions) error
	OnCommit(fn func([]datamodel.Event))
}

// Config configures a Client.
type Config struct {
	Tree Tree
	// Trigger starts a session with 6 CONNECTION REQUEST.
	Trigger func()
	// Allow is the Connection Request rate limit the HTTP and UDP ones
	// share; nil allows every one.
	Allow func() bool
	// TLS holds the roots the server's certificate is checked against.
	TLS *tls.Config
	// OnRequest, when set, is told the outcome of every connection request
	// ("accepted", "blocked", "auth_failed", "rate_limited"): metrics. It
	// must not block.
	OnRequest func(outcome string)
	Logger    *slog.Logger
}

const ms = "Device.ManagementServer."

// Supported reports whether a schema has XMPP Connection Requests.
func Supported(s *datamodel.Schema) bool {
	return s.Param(ms+"ConnReqXMPPConnection") != nil && s.Object("Device.XMPP.Connection.{i}.") != nil
}

// Client keeps the XMPP connection the ACS reaches the CPE through.
type Client struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}

	mu       sync.Mutex // guards accepted, refused
	accepted int
	refused  int
}

// New builds the client and watches the tree for its parameters.
func New(cfg Config) (*Client, error) {
	if !Supported(cfg.Tree.Schema()) {
		return nil, errors.New("xmppcr: the data model has no XMPP Connection Requests")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Allow == nil {
		cfg.Allow = func() bool { return true }
	}
	c := &Client{cfg: cfg, log: cfg.Logger.With("component", "xmpp"), wake: make(chan struct{}, 1)}
	cfg.Tree.OnCommit(func(evs []datamodel.Event) {
		for _, e := range evs {
			// The connection's own settings (an instance added or deleted,
			// a writable parameter); what it learns itself is read-only.
			xmppSetting := strings.HasPrefix(e.Path, "Device.XMPP.") && (e.Def == nil || e.Def.Writable)
			if e.Kind == datamodel.Reset || e.Path == ms+"ConnReqXMPPConnection" || xmppSetting {
				select {
				case c.wake <- struct{}{}:
				default:
				}
				return
			}
		}
	})
	return c, nil
}

// Counts reports the connection requests accepted and refused.
func (c *Client) Counts() (accepted, refused int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.accepted, c.refused
}

func (c *Client) get(p string) string { v, _ := c.cfg.Tree.Get(p); return v }

func (c *Client) set(vals map[string]string) {
	ch := make([]datamodel.Change, 0, len(vals))
	for k, v := range vals {
		if c.cfg.Tree.Schema().Param(datamodel.SchemaPath(k)) != nil {
			ch = append(ch, datamodel.Change{Path: k, Value: v})
		}
	}
	if err := c.cfg.Tree.SetValues(ch, datamodel.SetOptions{Origin: datamodel.OriginDevice}); err != nil {
		c.log.Error("cannot write the XMPP connection's state", "err", err)
	}
}

// conn is the configuration of the connection in use.
type conn struct {
	path                         string // Device.XMPP.Connection.N.
	user, pass, domain, resource string
	address                      string // host:port; "" the domain's SRV record or domain:5222
	useTLS                       bool
	keepAlive                    time.Duration
	attempts                     int
	retryInit, retryMax          time.Duration
	retryMult                    float64
	allowed                      []string
	crUser, crPass               string
	disabled, misconfigured      bool
	algorithm                    string
}

func (c *Client) current() conn {
	ref := strings.TrimSuffix(c.get(ms+"ConnReqXMPPConnection"), ".")
	k := conn{path: ref + "."}
	if ref == "" || c.cfg.Tree.Schema().Object(datamodel.SchemaPath(k.path)) == nil {
		k.disabled = true
		return k
	}
	if _, err := c.cfg.Tree.Get(k.path + "Enable"); err != nil {
		k.disabled = true
		return k
	}
	g := func(n string) string { return c.get(k.path + n) }
	k.disabled = g("Enable") != "true"
	k.user, k.pass, k.domain, k.resource = g("Username"), g("Password"), g("Domain"), g("Resource")
	k.useTLS = g("UseTLS") == "true"
	if ka, _ := strconv.Atoi(g("KeepAliveInterval")); ka > 0 {
		k.keepAlive = time.Duration(ka) * time.Second
	}
	k.attempts, _ = strconv.Atoi(g("ServerConnectAttempts"))
	ri, _ := strconv.Atoi(g("ServerRetryInitialInterval"))
	rm, _ := strconv.Atoi(g("ServerRetryIntervalMultiplier"))
	rx, _ := strconv.Atoi(g("ServerRetryMaxInterval"))
	k.retryInit, k.retryMax, k.retryMult = time.Duration(max(ri, 1))*time.Second, time.Duration(max(rx, 1))*time.Second, float64(max(rm, 1000))/1000
	k.algorithm = g("ServerConnectAlgorithm")
	if k.algorithm == "ServerTable" {
		// The enabled server of the lowest Priority.
		best := -1
		for i := 1; i <= 64; i++ {
			p := k.path + "Server." + strconv.Itoa(i) + "."
			if _, err := c.cfg.Tree.Get(p + "Enable"); err != nil {
				continue
			}
			if c.get(p+"Enable") != "true" || c.get(p+"ServerAddress") == "" {
				continue
			}
			prio, _ := strconv.Atoi(c.get(p + "Priority"))
			if best < 0 || prio < best {
				best = prio
				port, _ := strconv.Atoi(c.get(p + "Port"))
				if port == 0 {
					port = 5222
				}
				k.address = net.JoinHostPort(c.get(p+"ServerAddress"), strconv.Itoa(port))
			}
		}
		if k.address == "" {
			k.misconfigured = true
		}
	} else if k.algorithm == "DNS" && k.domain != "" {
		k.address = net.JoinHostPort(k.domain, "5222")
	}
	if k.user == "" || k.domain == "" || k.pass == "" {
		k.misconfigured = true
	}
	for _, j := range strings.Split(c.get(ms+"ConnReqAllowedJabberIDs"), ",") {
		if j = strings.TrimSpace(j); j != "" {
			k.allowed = append(k.allowed, j)
		}
	}
	k.crUser, k.crPass = c.get(ms+"ConnectionRequestUsername"), c.get(ms+"ConnectionRequestPassword")
	return k
}

func (k conn) same(o conn) bool {
	return k.path == o.path && k.user == o.user && k.pass == o.pass && k.domain == o.domain && k.resource == o.resource &&
		k.address == o.address && k.useTLS == o.useTLS && k.keepAlive == o.keepAlive && k.disabled == o.disabled
}

func (c *Client) status(k conn, st string) {
	if k.path == "." {
		return
	}
	c.set(map[string]string{k.path + "Status": st, k.path + "LastChangeDate": time.Now().UTC().Format(time.RFC3339)})
}

// Run keeps the connection until ctx ends: connected while the referenced
// Connection is enabled and configured, reconnecting after a loss with
// the model's back-off (ServerRetryInitialInterval, ...Multiplier,
// ...MaxInterval; ServerConnectAttempts, then Error).
func (c *Client) Run(ctx context.Context) error {
	for {
		k := c.current()
		if k.disabled {
			c.set(map[string]string{ms + "ConnReqJabberID": ""})
			if k.path != "." {
				c.status(k, "Disabled")
			}
			if !c.sleep(ctx, 0) {
				return nil
			}
			continue
		}
		if k.misconfigured {
			c.status(k, "Error_Misconfigured")
			if !c.sleep(ctx, 0) {
				return nil
			}
			continue
		}
		if !c.session(ctx, k) {
			return nil
		}
	}
}

// sleep waits for d (0: for ever) or a change of the parameters; false
// when ctx ended.
func (c *Client) sleep(ctx context.Context, d time.Duration) bool {
	var t <-chan time.Time
	if d > 0 {
		tm := time.NewTimer(d)
		defer tm.Stop()
		t = tm.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-c.wake:
		return true
	case <-t:
		return true
	}
}

// session connects (retrying) and serves until the connection is lost or
// the parameters change; false when ctx ended.
func (c *Client) session(ctx context.Context, k conn) bool {
	for attempt := 0; ; attempt++ {
		if k.attempts > 0 && attempt >= k.attempts {
			c.status(k, "Error")
			return c.sleep(ctx, 0)
		}
		c.status(k, "Connecting")
		cl, lost, err := c.connect(k)
		if err == nil {
			jid := cl.Session.BindJid
			c.set(map[string]string{k.path + "JabberID": jid, k.path + "TLSEstablished": strconv.FormatBool(cl.Session.TlsEnabled),
				ms + "ConnReqJabberID": jid})
			c.status(k, "Enabled")
			c.log.Info("XMPP connection up", "jid", jid, "tls", cl.Session.TlsEnabled)
			select {
			case <-ctx.Done():
				cl.Disconnect()
				return false
			case <-c.wake:
				cl.Disconnect()
				if k.same(c.current()) {
					// A change of something else (the allowed JIDs, the
					// credentials): they are read per request.
					c.log.Debug("XMPP parameters changed; reconnecting")
				}
				return true
			case <-lost:
				cl.Disconnect()
				c.log.Warn("XMPP connection lost; reconnecting")
				attempt = -1
				continue
			}
		}
		status := "ServerNotPresent"
		if strings.Contains(strings.ToLower(err.Error()), "auth") {
			status = "Error_AuthenticationFailure"
		}
		c.status(k, status)
		// TR-069 3.2.1.1's back-off with the XMPP parameters.
		wait := time.Duration(float64(k.retryInit) * math.Pow(k.retryMult, float64(min(attempt, 10))))
		wait = min(wait, k.retryMax)
		c.log.Warn("XMPP connection failed", "err", err, "retry_in", wait)
		if !c.sleep(ctx, wait) {
			return false
		}
		if !k.same(c.current()) {
			return true
		}
	}
}

func (c *Client) connect(k conn) (*xmpp.Client, <-chan struct{}, error) {
	jid := k.user + "@" + k.domain
	if k.resource != "" {
		jid += "/" + k.resource
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.cfg.TLS != nil {
		tc = c.cfg.TLS.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = k.domain
	}
	conf := &xmpp.Config{
		TransportConfiguration: xmpp.TransportConfiguration{Address: k.address, Domain: k.domain, TLSConfig: tc},
		Jid:                    jid, Credential: xmpp.Password(k.pass), Insecure: !k.useTLS,
		KeepaliveInterval: k.keepAlive, ConnectTimeout: 15,
	}
	if conf.KeepaliveInterval <= 0 {
		conf.KeepaliveInterval = 60 * time.Second
	}
	if conf.Address == "" {
		conf.Address = net.JoinHostPort(k.domain, "5222")
	}
	router := xmpp.NewRouter()
	var cl *xmpp.Client
	router.NewRoute().Packet("iq").HandlerFunc(func(s xmpp.Sender, p stanza.Packet) {
		iq, ok := p.(*stanza.IQ)
		if !ok {
			return
		}
		c.handle(s, iq)
	})
	lost := make(chan struct{})
	var once sync.Once
	cl, err := xmpp.NewClient(conf, router, func(err error) {
		c.log.Debug("XMPP stream error", "err", err)
		once.Do(func() { close(lost) })
	})
	if err != nil {
		return nil, nil, err
	}
	// The receive loop tells errHandler when the stream ends (a lost
	// connection, a stream error): that is the loss.
	if err := cl.Connect(); err != nil {
		return nil, nil, err
	}
	return cl, lost, nil
}

// handle answers one IQ: a connectionRequest from an allowed Jabber ID
// with the Connection Request credentials gets an empty result and starts
// a session; any other gets the error TR-069 Annex K names.
func (c *Client) handle(s xmpp.Sender, iq *stanza.IQ) {
	if iq.Type != stanza.IQTypeGet && iq.Type != stanza.IQTypeSet {
		return
	}
	node := iq.Any
	if node == nil || node.XMLName.Space != NS || node.XMLName.Local != "connectionRequest" {
		c.reply(s, iq, 501, "cancel", "feature-not-implemented")
		return
	}
	var user, pass string
	for _, n := range node.Nodes {
		switch n.XMLName.Local {
		case "username":
			user = strings.TrimSpace(n.Content)
		case "password":
			pass = strings.TrimSpace(n.Content)
		}
	}
	k := c.current()
	if !allowed(k.allowed, iq.From) {
		c.count("blocked")
		c.log.Warn("XMPP connection request from a Jabber ID not allowed", "from", iq.From)
		c.reply(s, iq, 503, "cancel", "service-unavailable")
		return
	}
	ok := k.crPass != "" && subtle.ConstantTimeCompare([]byte(user), []byte(k.crUser)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(k.crPass)) == 1
	if !ok {
		c.count("auth_failed")
		c.log.Warn("XMPP connection request with wrong credentials", "from", iq.From)
		c.reply(s, iq, 401, "auth", "not-authorized")
		return
	}
	if !c.cfg.Allow() {
		c.count("rate_limited")
		c.reply(s, iq, 503, "wait", "resource-constraint")
		return
	}
	c.count("accepted")
	res := &stanza.IQ{Attrs: stanza.Attrs{Type: stanza.IQTypeResult, Id: iq.Id, From: iq.To, To: iq.From}}
	if err := s.Send(res); err != nil {
		c.log.Warn("cannot answer the XMPP connection request", "err", err)
	}
	c.log.Info("XMPP connection request accepted", "from", iq.From)
	if c.cfg.Trigger != nil {
		c.cfg.Trigger()
	}
}

func (c *Client) count(outcome string) {
	if c.cfg.OnRequest != nil {
		c.cfg.OnRequest(outcome)
	}
	c.mu.Lock()
	if outcome == "accepted" {
		c.accepted++
	} else {
		c.refused++
	}
	c.mu.Unlock()
}

// reply sends an error IQ; the request's payload (with its password) is
// not echoed back.
func (c *Client) reply(s xmpp.Sender, iq *stanza.IQ, code int, typ, reason string) {
	out := &stanza.IQ{Attrs: stanza.Attrs{Type: stanza.IQTypeError, Id: iq.Id, From: iq.To, To: iq.From},
		Error: &stanza.Err{XMLName: xml.Name{Local: "error"}, Code: code, Type: stanza.ErrorType(typ), Reason: reason}}
	_ = s.Send(out)
}

// allowed applies ConnReqAllowedJabberIDs: a full JID matches exactly, a
// bare one any resource; an empty list allows none (the description's
// list names who may, and the agent does not guess).
func allowed(list []string, from string) bool {
	bare, _, _ := strings.Cut(from, "/")
	for _, j := range list {
		if strings.Contains(j, "/") {
			if strings.EqualFold(j, from) {
				return true
			}
		} else if strings.EqualFold(j, bare) {
			return true
		}
	}
	return false
}
