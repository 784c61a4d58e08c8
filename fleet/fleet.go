// Package fleet runs many virtual CPEs in one process for ACS testing. Each
// one is a whole CPE assembled by package cpe, exactly as the single agent
// is (same sessions, events, retry, RPCs, transfers), with its own tree,
// event queue, cookies and Connection Request credentials. What they share
// is what is immutable: the schema, the template's factory values, the TLS
// settings, and two listeners (one HTTP port for Connection Requests routed
// by path, one UDP port for UDP Connection Requests routed by `un`).
package fleet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/cwmp-agent/cwmp-agent/cpe"
	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/diag"
	"github.com/cwmp-agent/cwmp-agent/internal/netguard"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// Config describes a fleet.
type Config struct {
	// Count is the number of virtual CPEs.
	Count int
	// First is the index of the first CPE (default 1).
	First int
	// Serial is the serial number pattern, with one %d (default "SIM%06d").
	Serial string
	// Base is the template of every CPE: root, shared factory values
	// (configuration and template file), the agent's settings. Its
	// StateDir, listeners and control socket are ignored.
	Base cpe.Config
	// StateDir, when set, gives each CPE <StateDir>/<serial>/.
	StateDir string
	// CRListen is the shared HTTP Connection Request listener ("" none).
	CRListen string
	// CRHost is the host announced in every ConnectionRequestURL (default:
	// the listener's address, or the one used to reach the ACS).
	CRHost string
	// UDPListen is the shared UDP Connection Request port ("" none).
	UDPListen string
	// CRUsername and CRPassword are patterns; "{serial}" becomes the CPE's
	// serial number (defaults "{serial}" and "cr-{serial}").
	CRUsername, CRPassword string
	// Rate is how many CPEs start (and hold their first session) per
	// second; 0 starts them all at once.
	Rate float64
	// SourceIPs, when set, gives CPE i the source address SourceIPs.IP + 1
	// + i (wrapping within the network) for its sessions: an ACS sees each
	// CPE from its own address, and at high session rates the connections
	// do not run out of distinct (address, port) pairs while the ACS's
	// TIME_WAIT sockets hold the ones it just closed. On loopback every
	// 127/8 address works; elsewhere the addresses must be on an interface.
	SourceIPs *net.IPNet
	// NoJitter keeps every CPE's periodic Informs in phase; by default
	// each gets a random phase within its interval.
	NoJitter bool
	// Shard and Shards say which part of a larger fleet this one is (its
	// CPEs are First..First+Count-1 of it): they go into the report, so
	// that merged reports can say what they cover. 0 and 0: the whole.
	Shard, Shards int
	// Observer, when set, is told what every CPE does (aggregated
	// metrics: one Observer for the fleet, never one per CPE).
	Observer cpe.Observer
	Logger   *slog.Logger
}

// Device is one virtual CPE of the fleet.
type Device struct {
	Serial string
	CPE    *cpe.CPE
	udp    *tr111.UDPAcceptor
	up     bool // its last session succeeded
	// busyUntil is when the ACS's last 503 (or 429) allowed the next
	// attempt: a session started before it did not honour Retry-After.
	busyUntil time.Time
}

// Fleet is a running set of virtual CPEs.
type Fleet struct {
	cfg    Config
	log    *slog.Logger
	Stats  *Stats
	devs   []*Device
	byPath map[string]*Device
	byUser map[string]*Device

	crLn   net.Listener
	udp    net.PacketConn
	mu     sync.Mutex
	nUp    int
	start  time.Time
	runErr error
	series series
}

func pattern(p, serial string) string { return strings.ReplaceAll(p, "{serial}", serial) }

// New builds every CPE and opens the shared listeners.
func New(cfg Config) (*Fleet, error) {
	if cfg.Count < 1 {
		return nil, errors.New("fleet: count must be at least 1")
	}
	if cfg.First == 0 {
		cfg.First = 1
	}
	if cfg.Serial == "" {
		cfg.Serial = "SIM%06d"
	}
	if strings.Count(cfg.Serial, "%") != 1 || !strings.Contains(cfg.Serial, "%") {
		return nil, fmt.Errorf("fleet: serial pattern %q needs exactly one %%d", cfg.Serial)
	}
	if cfg.CRUsername == "" {
		cfg.CRUsername = "{serial}"
	}
	if cfg.CRPassword == "" {
		cfg.CRPassword = "cr-{serial}"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Base.Root == "" {
		// The root names the CPEs' own values (serial numbers, credentials).
		s, err := cpe.ModelSchema(cfg.Base)
		if err != nil {
			return nil, err
		}
		cfg.Base.Root = s.RootName()
	}
	if cfg.Base.Diagnostics == nil {
		// Virtual CPEs answer diagnostics with simulated results: a
		// fleet never probes from its host unless its configuration
		// gives a real prober (a fleet of one).
		cfg.Base.Diagnostics = &diag.Simulated{}
	}
	f := &Fleet{cfg: cfg, log: cfg.Logger.With("component", "fleet"), Stats: newStats(), byPath: map[string]*Device{}, byUser: map[string]*Device{}}
	tc, err := cwmp.ClientTLS(cfg.Base.Agent.TLS)
	if err != nil {
		return nil, err
	}
	crBase := ""
	if cfg.CRListen != "" {
		ln, err := net.Listen("tcp", cfg.CRListen)
		if err != nil {
			return nil, fmt.Errorf("fleet: connection request listener %s: %w", cfg.CRListen, err)
		}
		// One listener for the whole fleet, so the bounds are a fleet's:
		// an ACS asks many CPEs at once, from one address.
		f.crLn = netguard.Limit(ln, netguard.Limits{Max: 4096, PerSource: 1024})
		crBase = "http://" + announce(ln.Addr(), cfg.CRHost, acsURL(cfg.Base))
	}
	udpAddr := ""
	if cfg.UDPListen != "" {
		pc, err := net.ListenPacket("udp", cfg.UDPListen)
		if err != nil {
			f.closeListeners()
			return nil, fmt.Errorf("fleet: UDP connection request listener %s: %w", cfg.UDPListen, err)
		}
		f.udp = pc
		udpAddr = announce(pc.LocalAddr(), cfg.CRHost, acsURL(cfg.Base))
	}
	root := cfg.Base.Root
	ms, di := root+".ManagementServer.", root+".DeviceInfo."
	// One copy of the template's values for the whole fleet; each CPE
	// copies an object's values when it first changes one.
	shared := datamodel.NewShared()
	f.devs = make([]*Device, cfg.Count)
	for i := range f.devs {
		serial := fmt.Sprintf(cfg.Serial, cfg.First+i)
		user, pass := pattern(cfg.CRUsername, serial), pattern(cfg.CRPassword, serial)
		overlay := map[string]string{di + "SerialNumber": serial, ms + "ConnectionRequestUsername": user, ms + "ConnectionRequestPassword": pass}
		if udpAddr != "" {
			overlay[ms+"UDPConnectionRequestAddress"] = udpAddr
		}
		c := cfg.Base
		c.Observer = cfg.Observer
		c.FactoryOverlay = overlay
		c.Shared = shared
		c.StateDir = ""
		if cfg.StateDir != "" {
			c.StateDir = filepath.Join(cfg.StateDir, serial)
			if err := os.MkdirAll(c.StateDir, 0o700); err != nil {
				f.closeListeners()
				return nil, err
			}
		}
		c.ConnReqListen, c.ControlSocket, c.UDPListen = "", "", ""
		c.ConnReqURL = crBase
		if crBase == "" {
			// Without a listener the URL still names the path, so that the
			// ACS sees a well-formed value.
			c.ConnReqURL = "http://127.0.0.1:7547"
		}
		c.Agent.Virtual.ClientTLS = tc
		if cfg.SourceIPs != nil {
			// Numbered across the whole fleet, so that shards on one host
			// do not share addresses.
			c.Agent.Virtual.LocalAddr = nthAddr(cfg.SourceIPs, cfg.First-1+i)
		}
		if !cfg.NoJitter {
			c.Agent.Virtual.PeriodicPhase = time.Duration(rand.Int64N(int64(24 * time.Hour)))
		}
		d := &Device{Serial: serial}
		c.Agent.OnSession = func(r cwmp.SessionResult) { f.sessionDone(d, r) }
		if cfg.Base.Logger != nil {
			c.Logger = cfg.Base.Logger.With("cpe", serial)
		}
		built, err := cpe.Build(c)
		if err != nil {
			f.closeListeners()
			return nil, fmt.Errorf("fleet: CPE %s: %w", serial, err)
		}
		d.CPE = built
		f.byPath[built.ConnReq.URLPath()] = d
		if udpAddr != "" {
			ts := tr111.OpenTimestamps(c.StateDir, cfg.Logger)
			d.udp = tr111.NewUDPAcceptor(func() (string, string) {
				u, _ := built.Tree.Get(ms + "ConnectionRequestUsername")
				p, _ := built.Tree.Get(ms + "ConnectionRequestPassword")
				return u, p
			}, ts.Last(), ts.Save)
			d.udp.Allow = built.ConnReq.Allow // the CPE's one Connection Request rate limit
			if _, dup := f.byUser[user]; dup {
				f.closeListeners()
				return nil, fmt.Errorf("fleet: Connection Request username %q is not unique (use {serial} in the pattern)", user)
			}
			f.byUser[user] = d
		}
		f.devs[i] = d
	}
	return f, nil
}

// acsURL is the factory ACS URL of the template.
func acsURL(c cpe.Config) string {
	if u := c.FactoryOverlay[c.Root+".ManagementServer.URL"]; u != "" {
		return u
	}
	return c.Factory[c.Root+".ManagementServer.URL"]
}

// announce is host:port for a listener: the given host, the listener's own
// address when it is specific, or the local address used to reach the ACS.
func announce(a net.Addr, host, acs string) string {
	h, port, _ := net.SplitHostPort(a.String())
	if host != "" {
		return net.JoinHostPort(host, port)
	}
	if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
		return net.JoinHostPort(h, port)
	}
	probe := &cwmp.ConnReqServer{Path: "/"}
	u := probe.URL(acs) // "http://<local address>:7547/"
	u = strings.TrimPrefix(strings.TrimSuffix(u, "/"), "http://")
	lh, _, _ := net.SplitHostPort(u)
	return net.JoinHostPort(lh, port)
}

func (f *Fleet) closeListeners() {
	if f.crLn != nil {
		f.crLn.Close()
	}
	if f.udp != nil {
		f.udp.Close()
	}
}

// Devices lists the CPEs.
func (f *Fleet) Devices() []*Device { return f.devs }

// CRAddr is the shared Connection Request listener's address (nil: none).
func (f *Fleet) CRAddr() net.Addr {
	if f.crLn == nil {
		return nil
	}
	return f.crLn.Addr()
}

// UDPAddr is the shared UDP Connection Request port (nil: none).
func (f *Fleet) UDPAddr() net.Addr {
	if f.udp == nil {
		return nil
	}
	return f.udp.LocalAddr()
}

// Up is the number of CPEs whose last session succeeded.
func (f *Fleet) Up() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nUp
}

func (f *Fleet) sessionDone(d *Device, r cwmp.SessionResult) {
	f.Stats.record(r)
	f.mu.Lock()
	// A second of slack: Retry-After counts whole seconds.
	if !d.busyUntil.IsZero() && r.Start.Before(d.busyUntil.Add(-time.Second)) {
		f.Stats.busyEarly.Add(1)
	}
	d.busyUntil = time.Time{}
	var he *cwmp.HTTPError
	if errors.As(r.Err, &he) && he.RetryAfter > 0 {
		d.busyUntil = r.Start.Add(r.Duration + he.RetryAfter)
	}
	ok := r.Err == nil
	if ok != d.up {
		d.up = ok
		if ok {
			f.nUp++
		} else {
			f.nUp--
		}
	}
	f.mu.Unlock()
}

// ServeHTTP routes a Connection Request to the CPE owning its path.
func (f *Fleet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := f.byPath[r.URL.Path]
	if d == nil {
		http.NotFound(w, r)
		return
	}
	d.CPE.ConnReq.ServeHTTP(w, r)
}

// Run starts the CPEs at the configured rate and runs them until ctx ends.
func (f *Fleet) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if f.crLn != nil {
		srv := cwmp.NewConnReqHTTPServer(f)
		wg.Add(2)
		go func() { defer wg.Done(); srv.Serve(f.crLn) }()
		go func() {
			defer wg.Done()
			<-ctx.Done()
			sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
			srv.Shutdown(sctx)
			c()
		}()
	}
	if f.udp != nil {
		wg.Add(2)
		go func() { defer wg.Done(); f.serveUDP() }()
		go func() { defer wg.Done(); <-ctx.Done(); f.udp.Close() }()
	}
	f.start = time.Now()
	f.Stats.begin(f.start)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(SampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				f.sample(time.Now()) // the last, partial interval
				return
			case now := <-tick.C:
				f.sample(now)
			}
		}
	}()
	var errOnce sync.Once
	for i, d := range f.devs {
		if f.cfg.Rate > 0 {
			at := f.start.Add(time.Duration(float64(i) / f.cfg.Rate * float64(time.Second)))
			if w := time.Until(at); w > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(w):
				}
			}
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(d *Device) {
			defer wg.Done()
			if err := d.CPE.Run(ctx); err != nil && ctx.Err() == nil {
				f.log.Error("virtual CPE stopped", "serial", d.Serial, "err", err)
				errOnce.Do(func() { f.runErr = err })
			}
		}(d)
		f.Stats.started.Add(1)
	}
	// The steady state begins when every CPE is up, or 30 s after the last
	// one started if some never come up.
	allStarted := time.Now()
	for ctx.Err() == nil && f.Up() < len(f.devs) && time.Since(allStarted) < 30*time.Second {
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	if ctx.Err() == nil {
		f.Stats.markSteady(time.Now())
		// The ramp's garbage is gone and will not come back soon: each
		// CPE now allocates only for its sessions. Without this the heap
		// keeps the ramp's high-water mark (twice the live heap, GOGC's
		// headroom) resident for as long as the fleet idles.
		debug.FreeOSMemory()
	}
	<-ctx.Done()
	f.Stats.markRunning()
	wg.Wait()
	return nil
}

// serveUDP reads UDP Connection Requests and routes each by `un` to its
// CPE's acceptor (TR-111 2.2.1.4 validation, per CPE ts and id).
func (f *Fleet) serveUDP() {
	buf := make([]byte, 2048)
	for {
		n, _, err := f.udp.ReadFrom(buf)
		if err != nil {
			return
		}
		r, err := tr111.ParseUDPConnRequest(buf[:n])
		var d *Device
		if err == nil {
			if d = f.byUser[r.UN]; d == nil {
				err = tr111.ErrWrongUser
			} else {
				err = d.udp.Accept(r)
			}
		}
		if f.cfg.Observer != nil {
			f.cfg.Observer.ConnectionRequest("udp", tr111.UDPOutcome(err))
		}
		if err != nil {
			f.Stats.udpDropped.Add(1)
			continue
		}
		f.Stats.udpAccepted.Add(1)
		d.CPE.Agent.ConnectionRequest()
	}
}

// State is what the fleet's CPEs are doing now.
type State struct {
	Count    int // CPEs in the fleet
	Started  int // started so far by the ramp
	Up       int // last session succeeded
	Retrying int // in the retry back-off after failed sessions
	Pending  int // events queued, over all CPEs
}

// State reads the CPEs' state (a walk over them: for scrapes, not for
// every session).
func (f *Fleet) State() State {
	st := State{Count: len(f.devs), Started: int(f.Stats.started.Load()), Up: f.Up()}
	for _, d := range f.devs {
		if _, _, retry := d.CPE.Agent.Stats(); retry > 0 {
			st.Retrying++
		}
		st.Pending += d.CPE.Agent.PendingEvents()
	}
	return st
}

// Ready reports whether the ramp has started every CPE.
func (f *Fleet) Ready() error {
	if n, all := f.Stats.started.Load(), len(f.devs); n < int64(all) {
		return fmt.Errorf("ramp: %d of %d CPEs started", n, all)
	}
	return nil
}

// Serials lists the serial numbers (for reports and tests).
func (f *Fleet) Serials() []string {
	out := make([]string, len(f.devs))
	for i, d := range f.devs {
		out[i] = d.Serial
	}
	return out
}

// Device returns the CPE with that serial number, nil if none.
func (f *Fleet) Device(serial string) *Device {
	for _, d := range f.devs {
		if d.Serial == serial {
			return d
		}
	}
	return nil
}

// nthAddr is the (i+1)th host address of an IPv4 network, wrapping around
// and skipping the network and broadcast addresses when there are any.
func nthAddr(n *net.IPNet, i int) net.IP {
	ip4 := n.IP.To4()
	ones, bits := n.Mask.Size()
	if ip4 == nil || bits != 32 {
		return nil
	}
	size := uint64(1) << (32 - ones)
	base := uint64(binary.BigEndian.Uint32(ip4)) &^ (size - 1)
	off := uint64(i) % size
	if size > 2 {
		off = 1 + uint64(i)%(size-2)
	}
	out := make(net.IP, 4)
	binary.BigEndian.PutUint32(out, uint32(base+off))
	return out
}
