package assoc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
	"github.com/cwmp-agent/cwmp-agent/internal/clock"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// ClientConfig configures the device side of TR-111 Part 1.
type ClientConfig struct {
	// Interface is the interface facing the gateway.
	Interface string
	// Inform selects DHCPINFORM only: the address is configured by other
	// means (TR-111 1.2.4, Figure 2) and the client only exchanges
	// identities. Otherwise the client obtains and keeps a lease.
	Inform bool
	// Identity returns the Device Identity, read live from DeviceInfo.
	Identity func() tr111.Identity
	// Store and Root locate GatewayInfo (Root "Device").
	Store Store
	Root  string
	// InformServer is where DHCPINFORM goes (unicast); nil means the
	// interface's default gateway, or broadcast without one.
	InformServer net.IP
	// InformInterval is the time between DHCPINFORMs (default 1 h).
	InformInterval time.Duration
	// ReleaseOnExit sends DHCPRELEASE when the agent stops; otherwise the
	// lease is kept for the next start (INIT-REBOOT).
	ReleaseOnExit bool
	// ResolvConf, when set, is written with the lease's DNS servers.
	ResolvConf string
	// StateDir keeps the lease (dhcp-lease.json); "" keeps nothing.
	StateDir string
	// Timeout is the first retransmission timeout, doubled up to 64 s
	// (RFC 2131 4.1; default 4 s).
	Timeout time.Duration
	// Transport and Link replace the sockets and the interface
	// configuration (tests); nil uses the real interface.
	Transport Transport
	Link      Link
	// Clock drives the lease timers and retransmissions; nil is the real
	// clock.
	Clock  clock.Clock
	Logger *slog.Logger
}

// Transport sends one DHCP message and waits for the first matching reply.
// from is the client's source address, nil from an unconfigured interface.
type Transport interface {
	Exchange(ctx context.Context, m *dhcpv4.DHCPv4, from net.IP, to *net.UDPAddr, match func(*dhcpv4.DHCPv4) bool, timeout time.Duration) (*dhcpv4.DHCPv4, error)
	Send(m *dhcpv4.DHCPv4, from net.IP, to *net.UDPAddr) error
	HardwareAddr() net.HardwareAddr
}

// Link applies a lease to the interface and reads its state.
type Link interface {
	Apply(l *ClientLease) error
	Remove(l *ClientLease) error
	// Address is the interface's IPv4 address (Inform mode), nil if none.
	Address() net.IP
	// Gateway is the interface's default gateway, nil if none.
	Gateway() net.IP
}

// ClientLease is a lease as the client keeps it: the DHCPACK that granted
// it and when.
type ClientLease struct {
	ACK   []byte    `json:"ack"`
	Bound time.Time `json:"bound"`

	ack *dhcpv4.DHCPv4
}

// IP is the leased address.
func (l *ClientLease) IP() net.IP { return l.ack.YourIPAddr }

// Mask is the subnet mask (option 1, or the class default).
func (l *ClientLease) Mask() net.IPMask {
	if m := l.ack.SubnetMask(); m != nil {
		return m
	}
	return l.ack.YourIPAddr.DefaultMask()
}

// Router is the first router of option 3, nil without one.
func (l *ClientLease) Router() net.IP {
	if r := l.ack.Router(); len(r) > 0 {
		return r[0]
	}
	return nil
}

// DNS lists option 6.
func (l *ClientLease) DNS() []net.IP { return l.ack.DNS() }

// Server is the server identifier.
func (l *ClientLease) Server() net.IP { return l.ack.ServerIdentifier() }

func (l *ClientLease) leaseTime() time.Duration { return l.ack.IPAddressLeaseTime(time.Hour) }

// T1 is when renewal starts (option 58, default half the lease).
func (l *ClientLease) T1() time.Time {
	return l.Bound.Add(l.ack.IPAddressRenewalTime(l.leaseTime() / 2))
}

// T2 is when rebinding starts (option 59, default 7/8 of the lease).
func (l *ClientLease) T2() time.Time {
	return l.Bound.Add(l.ack.IPAddressRebindingTime(l.leaseTime() * 7 / 8))
}

// Expiry is the end of the lease.
func (l *ClientLease) Expiry() time.Time { return l.Bound.Add(l.leaseTime()) }

// ClientState is what the client reports through the control socket.
type ClientState struct {
	State   string // init, rebooting, bound, renewing, rebinding, informing
	IP      string
	Server  string
	Expires time.Time
	Gateway tr111.Identity
	HasGW   bool
}

// Client is the device side of TR-111 Part 1 (TR-111 1.2.2): its
// DHCPDISCOVER, DHCPREQUEST and DHCPINFORM carry the Device Identity and
// ask for option 125; the Gateway Identity of the DHCPOFFER and DHCPACK is
// recorded in GatewayInfo, and emptied when the lease is released or
// expires without renewal.
type Client struct {
	cfg  ClientConfig
	log  *slog.Logger
	file string

	mu       sync.Mutex
	state    ClientState
	restored bool
	lease    *ClientLease // owned by Run (and Restore before it)
}

// NewClient checks the configuration; Run does the work.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Root != "Device" {
		return nil, fmt.Errorf("assoc: GatewayInfo exists under the Device root only, not %q", cfg.Root)
	}
	if cfg.Identity == nil || cfg.Store == nil {
		return nil, errors.New("assoc: the DHCP client needs the Device Identity and the tree")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 4 * time.Second
	}
	if cfg.InformInterval <= 0 {
		cfg.InformInterval = time.Hour
	}
	if cfg.Transport == nil {
		t, err := newLinkTransport(cfg.Interface)
		if err != nil {
			return nil, err
		}
		cfg.Transport = t
	}
	if cfg.Link == nil {
		cfg.Link = &netLink{ifname: cfg.Interface, resolvConf: cfg.ResolvConf}
	}
	c := &Client{cfg: cfg, log: cfg.Logger.With("component", "dhcp-client", "interface", cfg.Interface)}
	if cfg.StateDir != "" {
		c.file = filepath.Join(cfg.StateDir, "dhcp-lease.json")
	}
	c.state.State = "init"
	return c, nil
}

// State reports the client's state.
func (c *Client) State() ClientState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *Client) setState(s string) {
	c.mu.Lock()
	c.state.State = s
	c.mu.Unlock()
}

// mods are what every request carries: the Device Identity (TR-111 1.2.5,
// never NUL-terminated) and a parameter request list that asks for option
// 125, since servers such as dnsmasq send it only when asked.
func (c *Client) mods() []dhcpv4.Modifier {
	return []dhcpv4.Modifier{
		dhcpv4.WithOption(c.cfg.Identity().DeviceOption().Option()),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionDomainNameServer,
			dhcpv4.OptionIPAddressLeaseTime, dhcpv4.OptionRenewTimeValue, dhcpv4.OptionRebindingTimeValue,
			dhcpv4.OptionVendorIdentifyingVendorSpecific),
		dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(1472)),
	}
}

// record writes GatewayInfo from a server's message (TR-111 1.2.2): the
// identity it carries, an empty string for each missing sub-option, and
// all empty when it carries none.
func (c *Client) record(m *dhcpv4.DHCPv4) {
	var id *tr111.Identity
	if o, ok, err := tr111.FromMessage(m); ok && err == nil {
		if gid, found, err := o.GatewayIdentity(); err == nil && found {
			id = &gid
		} else if err != nil {
			c.log.Warn("ignoring a malformed Gateway Identity", "err", err)
		}
	} else if err != nil {
		c.log.Warn("ignoring a malformed option 125", "err", err)
	}
	c.mu.Lock()
	c.state.HasGW = id != nil
	c.state.Gateway = tr111.Identity{}
	if id != nil {
		c.state.Gateway = *id
	}
	c.mu.Unlock()
	if err := RecordGateway(c.cfg.Store, c.cfg.Root, id); err != nil {
		c.log.Error("recording GatewayInfo", "err", err)
	}
}

func (c *Client) clearGateway(why string) {
	c.mu.Lock()
	had := c.state.HasGW
	c.state.HasGW, c.state.Gateway = false, tr111.Identity{}
	c.mu.Unlock()
	if had {
		c.log.Info("GatewayInfo discarded", "why", why)
	}
	if err := RecordGateway(c.cfg.Store, c.cfg.Root, nil); err != nil {
		c.log.Error("clearing GatewayInfo", "err", err)
	}
}

// Republish writes GatewayInfo again from the lease in use (after a
// factory reset emptied it): the gateway's identity is still true.
func (c *Client) Republish() {
	c.mu.Lock()
	has, gw := c.state.HasGW, c.state.Gateway
	c.mu.Unlock()
	if !has {
		return
	}
	if err := RecordGateway(c.cfg.Store, c.cfg.Root, &gw); err != nil {
		c.log.Error("recording GatewayInfo", "err", err)
	}
}

// Run runs the client until ctx ends.
func (c *Client) Run(ctx context.Context) error {
	if c.cfg.Inform {
		return c.runInform(ctx)
	}
	return c.runLease(ctx)
}

type leaseState int

const (
	stInit leaseState = iota
	stRebooting
	stBound
	stRenewing
	stRebinding
)

var stateNames = [...]string{"init", "rebooting", "bound", "renewing", "rebinding"}

// Restore takes up the saved lease, if it is still valid, and records its
// Gateway Identity, so that a restart within the lease does not change
// GatewayInfo. Run calls it when it has not been called.
func (c *Client) Restore() {
	c.mu.Lock()
	done := c.restored
	c.restored = true
	c.mu.Unlock()
	if done || c.cfg.Inform {
		return
	}
	if l := c.loadLease(); l != nil {
		c.lease = l
		c.record(l.ack)
		c.mu.Lock()
		c.state.IP, c.state.Server, c.state.Expires = l.IP().String(), fmt.Sprint(l.Server()), l.Expiry()
		c.mu.Unlock()
	} else {
		c.clearGateway("no valid lease at start")
	}
}

func (c *Client) runLease(ctx context.Context) error {
	c.Restore()
	st := stInit
	if c.lease != nil {
		st = stRebooting
	}
	wait := c.cfg.Timeout
	for ctx.Err() == nil {
		c.setState(stateNames[st])
		switch st {
		case stInit:
			ack, err := c.acquire(ctx)
			if err != nil {
				if ctx.Err() == nil {
					c.log.Info("no lease yet", "err", err, "retry_in", wait)
					c.sleep(ctx, jitter(wait))
					wait = min(wait*2, 64*time.Second)
				}
				continue
			}
			wait = c.cfg.Timeout
			c.bind(ack)
			st = stBound
		case stRebooting:
			// RFC 2131 3.2: INIT-REBOOT asks to keep the saved address.
			m, err := dhcpv4.New(append(c.mods(), dhcpv4.WithHwAddr(c.cfg.Transport.HardwareAddr()),
				dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
				dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(c.lease.IP())))...)
			if err != nil {
				return err
			}
			r, err := c.retry(ctx, m, nil, bcastServer(), ackOrNak, c.lease.Expiry(), 4)
			switch {
			case err == nil && r.MessageType() == dhcpv4.MessageTypeAck:
				c.bind(r)
				st = stBound
			case err == nil: // NAK
				c.expire("the server refused the saved address (DHCPNAK)")
				st = stInit
			case ctx.Err() != nil:
			default:
				// No answer: the lease is still ours until it ends.
				if err := c.cfg.Link.Apply(c.lease); err != nil {
					c.log.Error("configuring the saved lease", "err", err)
				}
				st = stBound
			}
		case stBound:
			if !c.sleepUntil(ctx, c.lease.T1()) {
				continue
			}
			st = stRenewing
		case stRenewing, stRebinding:
			st = c.extend(ctx, st)
		}
	}
	c.setState("stopped")
	if c.cfg.ReleaseOnExit && c.lease != nil && c.cfg.Clock.Now().Before(c.lease.Expiry()) {
		c.release()
	}
	return nil
}

// acquire is DHCPDISCOVER, DHCPOFFER, DHCPREQUEST, DHCPACK from an
// unconfigured interface.
func (c *Client) acquire(ctx context.Context) (*dhcpv4.DHCPv4, error) {
	hw := c.cfg.Transport.HardwareAddr()
	disc, err := dhcpv4.NewDiscovery(hw, c.mods()...)
	if err != nil {
		return nil, err
	}
	offer, err := c.retry(ctx, disc, nil, bcastServer(), func(m *dhcpv4.DHCPv4) bool {
		return m.MessageType() == dhcpv4.MessageTypeOffer && m.YourIPAddr.To4() != nil && !m.YourIPAddr.Equal(net.IPv4zero)
	}, c.cfg.Clock.Now().Add(2*time.Minute), 0)
	if err != nil {
		return nil, fmt.Errorf("no DHCPOFFER: %w", err)
	}
	c.record(offer) // TR-111 1.2.2: the OFFER's Gateway Identity counts too
	req, err := dhcpv4.NewRequestFromOffer(offer, c.mods()...)
	if err != nil {
		return nil, err
	}
	sid := offer.ServerIdentifier()
	r, err := c.retry(ctx, req, nil, bcastServer(), func(m *dhcpv4.DHCPv4) bool {
		return ackOrNak(m) && (sid == nil || m.ServerIdentifier() == nil || m.ServerIdentifier().Equal(sid))
	}, c.cfg.Clock.Now().Add(2*time.Minute), 4)
	if err == nil && r.MessageType() == dhcpv4.MessageTypeNak {
		err = errors.New("DHCPNAK")
	}
	if err != nil {
		// The OFFER's identity was recorded, but no lease followed: there
		// is no association to report.
		c.clearGateway("the offer was not confirmed")
		return nil, fmt.Errorf("no DHCPACK: %w", err)
	}
	return r, nil
}

// extend renews (unicast to the server) until T2, then rebinds (broadcast)
// until the lease ends (RFC 2131 4.4.5).
func (c *Client) extend(ctx context.Context, st leaseState) leaseState {
	l := c.lease
	m, err := dhcpv4.NewRenewFromAck(l.ack, c.mods()...)
	if err != nil {
		c.log.Error("building a renewal", "err", err)
		return stInit
	}
	to, until := &net.UDPAddr{IP: l.Server(), Port: dhcpv4.ServerPort}, l.T2()
	if st == stRebinding || l.Server() == nil {
		to, until = bcastServer(), l.Expiry()
	}
	for ctx.Err() == nil {
		now := c.cfg.Clock.Now()
		if !now.Before(until) {
			break
		}
		// Wait half the remaining time between attempts, down to a
		// minimum (RFC 2131 4.4.5 says 60 s; short leases get a
		// proportional one).
		left := until.Sub(now)
		minWait := min(60*time.Second, max(l.leaseTime()/16, time.Second))
		timeout := min(max(left/2, minWait), left)
		r, err := c.cfg.Transport.Exchange(ctx, m, l.IP(), to, ackOrNak, timeout)
		if err != nil {
			if ctx.Err() == nil && c.cfg.Clock.Now().Before(until) {
				c.sleepUntil(ctx, now.Add(timeout))
			}
			continue
		}
		if r.MessageType() == dhcpv4.MessageTypeNak {
			c.expire("the server refused the renewal (DHCPNAK)")
			return stInit
		}
		c.bind(r)
		return stBound
	}
	if ctx.Err() != nil {
		return st
	}
	if st == stRenewing && l.Server() != nil {
		c.log.Info("no answer to the renewal: rebinding", "server", l.Server())
		return stRebinding
	}
	c.expire("the lease expired without renewal")
	return stInit
}

// retry sends m with RFC 2131 4.1 retransmissions (4, 8, 16, ... 64 s,
// randomised by ±1 s) until a reply matches, the deadline passes, or (when
// attempts > 0) that many sends went unanswered.
func (c *Client) retry(ctx context.Context, m *dhcpv4.DHCPv4, from net.IP, to *net.UDPAddr, match func(*dhcpv4.DHCPv4) bool, deadline time.Time, attempts int) (*dhcpv4.DHCPv4, error) {
	wait := c.cfg.Timeout
	var last error
	for n := 0; ctx.Err() == nil && c.cfg.Clock.Now().Before(deadline) && (attempts == 0 || n < attempts); n++ {
		r, err := c.cfg.Transport.Exchange(ctx, m, from, to, match, min(jitter(wait), deadline.Sub(c.cfg.Clock.Now())))
		if err == nil {
			return r, nil
		}
		last = err
		wait = min(wait*2, 64*time.Second)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if last == nil {
		last = errors.New("no time left")
	}
	return nil, last
}

// bind takes a DHCPACK: record the Gateway Identity, configure the
// interface, save the lease.
func (c *Client) bind(ack *dhcpv4.DHCPv4) {
	l := &ClientLease{ACK: ack.ToBytes(), Bound: c.cfg.Clock.Now(), ack: ack}
	prev := c.lease
	c.lease = l
	c.record(ack)
	if prev != nil && !prev.IP().Equal(l.IP()) {
		if err := c.cfg.Link.Remove(prev); err != nil {
			c.log.Warn("removing the previous address", "err", err)
		}
	}
	if err := c.cfg.Link.Apply(l); err != nil {
		c.log.Error("configuring the leased address", "err", err)
	}
	c.mu.Lock()
	c.state.IP, c.state.Server, c.state.Expires = l.IP().String(), fmt.Sprint(l.Server()), l.Expiry()
	c.mu.Unlock()
	c.saveLease(l)
	c.log.Info("lease bound", "ip", l.IP(), "server", l.Server(), "lease", l.leaseTime(), "gateway_identity", c.State().HasGW)
}

// expire drops the lease: GatewayInfo is discarded (TR-111 1.2.2) and the
// address removed.
func (c *Client) expire(why string) {
	l := c.lease
	c.lease = nil
	// The address goes first: once GatewayInfo reads empty, nothing of
	// the lease is left in use.
	if l != nil {
		if err := c.cfg.Link.Remove(l); err != nil {
			c.log.Warn("removing the address", "err", err)
		}
	}
	c.clearGateway(why)
	c.mu.Lock()
	c.state.IP, c.state.Server, c.state.Expires = "", "", time.Time{}
	c.mu.Unlock()
	c.saveLease(nil)
	c.log.Info("lease lost", "why", why)
}

// release sends DHCPRELEASE from the leased address (a release from the
// raw socket, with source 0.0.0.0, is dropped by the server's kernel) and
// then drops the lease.
func (c *Client) release() {
	l := c.lease
	m, err := dhcpv4.NewReleaseFromACK(l.ack)
	if err == nil && l.Server() != nil {
		err = c.cfg.Transport.Send(m, l.IP(), &net.UDPAddr{IP: l.Server(), Port: dhcpv4.ServerPort})
	}
	if err != nil {
		c.log.Warn("sending DHCPRELEASE", "err", err)
	}
	c.expire("released")
}

func (c *Client) loadLease() *ClientLease {
	if c.file == "" {
		return nil
	}
	var l ClientLease
	if err := atomicfile.ReadJSON(c.file, &l); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			c.log.Error("saved lease unreadable", "err", err)
		}
		return nil
	}
	ack, err := dhcpv4.FromBytes(l.ACK)
	if err != nil || ack.YourIPAddr.To4() == nil {
		return nil
	}
	l.ack = ack
	if !c.cfg.Clock.Now().Before(l.Expiry()) {
		return nil
	}
	return &l
}

func (c *Client) saveLease(l *ClientLease) {
	if c.file == "" {
		return
	}
	if l == nil {
		if err := os.Remove(c.file); err != nil && !errors.Is(err, os.ErrNotExist) {
			c.log.Warn("removing the saved lease", "err", err)
		}
		return
	}
	if err := atomicfile.WriteJSON(c.file, l); err != nil {
		c.log.Error("saving the lease", "err", err)
	}
}

// runInform exchanges identities with DHCPINFORM (TR-111 1.2.4, Figure 2),
// unicast to the server, every InformInterval and at once when the
// interface's address changes. Three unanswered rounds in a row mean the
// gateway is gone: GatewayInfo is emptied as a lost lease would be.
func (c *Client) runInform(ctx context.Context) error {
	c.clearGateway("start")
	var last net.IP
	var next time.Time
	failures := 0
	wait := c.cfg.Timeout
	for ctx.Err() == nil {
		ip := c.cfg.Link.Address()
		if ip == nil {
			c.setState("no address")
			c.sleep(ctx, 2*time.Second)
			continue
		}
		if ip.Equal(last) && c.cfg.Clock.Now().Before(next) {
			c.sleep(ctx, min(next.Sub(c.cfg.Clock.Now()), 2*time.Second))
			continue
		}
		c.setState("informing")
		to := bcastServer()
		if s := c.cfg.InformServer; s != nil {
			to = &net.UDPAddr{IP: s, Port: dhcpv4.ServerPort}
		} else if gw := c.cfg.Link.Gateway(); gw != nil {
			to = &net.UDPAddr{IP: gw, Port: dhcpv4.ServerPort}
		}
		m, err := dhcpv4.NewInform(c.cfg.Transport.HardwareAddr(), ip, c.mods()...)
		if err != nil {
			return err
		}
		r, err := c.retry(ctx, m, ip, to, func(m *dhcpv4.DHCPv4) bool { return m.MessageType() == dhcpv4.MessageTypeAck },
			c.cfg.Clock.Now().Add(min(c.cfg.InformInterval, 2*time.Minute)), 4)
		if ctx.Err() != nil {
			break
		}
		last = ip
		if err != nil {
			if failures++; failures >= 3 {
				c.clearGateway("three DHCPINFORMs unanswered")
			}
			c.log.Info("DHCPINFORM unanswered", "to", to, "failures", failures)
			next = c.cfg.Clock.Now().Add(min(jitter(wait), c.cfg.InformInterval))
			wait = min(wait*2, 64*time.Second)
			continue
		}
		failures, wait = 0, c.cfg.Timeout
		c.record(r)
		c.mu.Lock()
		c.state.IP, c.state.Server = ip.String(), fmt.Sprint(r.ServerIdentifier())
		c.mu.Unlock()
		c.setState("informed")
		next = c.cfg.Clock.Now().Add(c.cfg.InformInterval)
	}
	c.setState("stopped")
	return nil
}

func ackOrNak(m *dhcpv4.DHCPv4) bool {
	t := m.MessageType()
	return t == dhcpv4.MessageTypeAck || t == dhcpv4.MessageTypeNak
}

func bcastServer() *net.UDPAddr { return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ServerPort} }

// jitter randomises a retransmission wait by ±1 s (RFC 2131 4.1).
func jitter(d time.Duration) time.Duration {
	if d <= 2*time.Second {
		return d
	}
	return d - time.Second + time.Duration(rand.Int64N(int64(2*time.Second)))
}

func (c *Client) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := c.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

func (c *Client) sleepUntil(ctx context.Context, at time.Time) bool {
	return c.sleep(ctx, at.Sub(c.cfg.Clock.Now()))
}
