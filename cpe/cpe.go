// Package cpe assembles one CPE from its parts: the parameter tree of the
// chosen root, the bindings of computed parameters, the notify engine, the
// CWMP agent, the Connection Request listener and the control socket. The
// daemon, the demo and the fleet build devices through it, so that a
// virtual CPE of a fleet runs exactly the code of a single agent.
package cpe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cwmp-agent/cwmp-agent/cpe/control"
	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/datamodel/backend"
	"github.com/cwmp-agent/cwmp-agent/diag"
	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
	"github.com/cwmp-agent/cwmp-agent/internal/linux/sysinfo"
	"github.com/cwmp-agent/cwmp-agent/internal/logring"
	"github.com/cwmp-agent/cwmp-agent/internal/netguard"
	"github.com/cwmp-agent/cwmp-agent/notify"
	"github.com/cwmp-agent/cwmp-agent/schemas"
	"github.com/cwmp-agent/cwmp-agent/soap"
	"github.com/cwmp-agent/cwmp-agent/swmod"
	"github.com/cwmp-agent/cwmp-agent/tr111"
	"github.com/cwmp-agent/cwmp-agent/tr111/assoc"
	"github.com/cwmp-agent/cwmp-agent/xmppcr"
)

// Config describes one CPE.
type Config struct {
	// DataModel names the model served: "Device:1.1",
	// "InternetGatewayDevice:1.2" or "Device:2.19" (schemas.Model). ""
	// takes it from Root.
	DataModel string
	// Schema, when set, is the model served as it is (a model extended by
	// vendors' files or a template's parameters); it wins over DataModel.
	Schema *datamodel.Schema
	// Root is "Device" or "InternetGatewayDevice"; with neither DataModel
	// nor Schema, "Device" is Device:1.1. Build sets it from the model.
	Root string
	// StateDir persists the tree, events and notifications; "" keeps them
	// in memory.
	StateDir string
	// Factory holds factory values by full parameter path; it is only read,
	// so a fleet shares one template among its CPEs.
	Factory map[string]string
	// FactoryOverlay holds this CPE's own factory values on top of Factory.
	FactoryOverlay map[string]string
	// Shared holds what the trees of CPEs built from one Factory have in
	// common (a fleet); nil: nothing shared.
	Shared *datamodel.Shared
	// Agent is the template of the agent's configuration; Tree, Notifier
	// and ConnReq are filled in here.
	Agent cwmp.Config
	// ConnReqListen is the Connection Request listen address (":7547");
	// "" means no listener of its own (a fleet routes by path instead).
	ConnReqListen string
	// ConnReqURL is announced instead of the computed URL when set.
	ConnReqURL string
	// ConnReqLimits bound the listener's connections (zero values: the
	// cwmp defaults, 64 and 8 per source).
	ConnReqLimits netguard.Limits
	// ControlSocket is the control socket path; "" means none.
	ControlSocket string
	// Host, when not nil, binds system values (interface address and
	// counters of the ACS-facing interface); nil leaves them at defaults.
	Host *sysinfo.Host
	// Log receives the agent's log tail for DeviceInfo.DeviceLog.
	Log *logring.Ring
	// NotifyPoll is the notify engine's poll interval; 0 means 10 s.
	NotifyPoll time.Duration
	// UDPListen is the TR-111 UDP address (STUN and UDP Connection
	// Requests); "" means no TR-111 Part 2.
	UDPListen string
	// VolatileUDPTimestamp forgets the last accepted UDP Connection Request
	// timestamp at restart (TR-111 2.2.1.4 allows either).
	VolatileUDPTimestamp bool
	// STUN tunes the TR-111 client (tests); zero values are the defaults.
	STUN tr111.ClientConfig
	// DHCP configures TR-111 Part 1 (Device-Gateway Association).
	DHCP DHCPConfig
	// Mapping mounts backends on parameters (a real device's live values).
	Mapping []backend.Entry
	// Diagnostics runs the tests the ACS asks for (TR-143); nil is
	// diag.Real, whose probes leave this host and which runs the UDP echo
	// server of UDPEchoConfig. A fleet gives a *diag.Simulated.
	Diagnostics diag.Prober
	// SoftwareModules installs what ChangeDUState asks for on a Device:2
	// root; nil is swmod.Virtual (the tables follow, nothing installs).
	SoftwareModules swmod.Backend
	// Observer, when set, is told what the CPE does: its sessions, the
	// RPCs it answers, the Connection Requests of every kind it receives
	// (metrics; a fleet shares one among its CPEs).
	Observer Observer
	Logger   *slog.Logger
}

// Observer is told what a CPE does. Its methods run on the CPE's
// goroutines and must not block.
type Observer interface {
	// Session is told of every session ended (cwmp.Config.OnSession).
	Session(cwmp.SessionResult)
	// RPC is told of every ACS request answered (cwmp.Config.OnRPC).
	RPC(method string, fault int)
	// ConnectionRequest is told of every Connection Request received:
	// kind "http", "udp" or "xmpp", and what became of it.
	ConnectionRequest(kind, outcome string)
}

// DHCPConfig configures TR-111 Part 1. On an InternetGatewayDevice the
// ManageableDevice table always exists (dnsmasq feeds it through the
// control socket); the built-in server is optional. On a Device, hook mode
// needs nothing here; the built-in client is optional.
type DHCPConfig struct {
	// ClientMode is "" (no built-in client), "lease" or "inform".
	ClientMode      string
	ClientInterface string
	InformServer    net.IP
	InformInterval  time.Duration
	ReleaseOnExit   bool
	ResolvConf      string
	// ServerInterface enables the built-in server on that LAN interface.
	ServerInterface    string
	PoolStart, PoolEnd net.IP
	LeaseTime          time.Duration
	Router             net.IP
	DNS                []net.IP
	// PresenceInterval is the ManageableDevice presence check period (the
	// kernel neighbour table); 0 disables it.
	PresenceInterval time.Duration
	// Client and Server replace parts for tests.
	ClientTransport assoc.Transport
	ClientLink      assoc.Link
}

// CPE is one assembled device.
type CPE struct {
	Tree    *datamodel.Tree
	Agent   *cwmp.Agent
	ConnReq *cwmp.ConnReqServer
	Notify  *notify.Engine
	Control *control.Server
	STUN    *tr111.Client // nil without UDPListen
	// Table, DHCPServer and DHCPClient are TR-111 Part 1: the table on an
	// InternetGatewayDevice, the built-in server and client when enabled.
	Table      *assoc.Table
	DHCPServer *assoc.Server
	DHCPClient *assoc.Client
	Diag       *diag.Engine
	SWMod      *swmod.Manager // nil without Device.SoftwareModules
	XMPP       *xmppcr.Client // nil without Device.XMPP
	cfg        Config
	net        *netInfo          // the interface that reaches the ACS (with Host)
	hosts      map[string]uint32 // LAN hosts by MAC -> Hosts.Host instance
	// stunAfterSession: the ACS changed a STUN parameter; the client
	// restarts when the session ends.
	stunAfterSession atomic.Bool
}

// ModelSchema is the schema a configuration serves.
func ModelSchema(cfg Config) (*datamodel.Schema, error) {
	switch {
	case cfg.Schema != nil:
		return cfg.Schema, nil
	case cfg.DataModel != "":
		return schemas.Model(cfg.DataModel)
	}
	return schemas.For(cfg.Root)
}

// Build assembles the CPE: the tree is loaded from the state directory (a
// corrupt file is reported and factory values used), computed parameters are
// bound, the Connection Request URL is computed before the notify engine
// starts watching (so that the first value is not a "change").
func Build(cfg Config) (*CPE, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := ModelSchema(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Root != "" && cfg.Root != s.RootName() {
		return nil, fmt.Errorf("cpe: root %s does not match the data model %s", cfg.Root, s.Model)
	}
	cfg.Root = s.RootName()
	if cfg.StateDir != "" {
		// Writes are atomic (temporary file, fsync, rename); a kill in
		// the middle leaves the temporary file, which no one else removes.
		if n := atomicfile.RemoveStale(cfg.StateDir, 0); n > 0 {
			cfg.Logger.Info("removed the temporary files of interrupted writes", "count", n, "state_dir", cfg.StateDir)
		}
	}
	overlay := cfg.FactoryOverlay
	if strings.HasPrefix(s.Model, "Device:2") {
		// A real Device:2 CPE has its interface and log from the start;
		// the built-in DHCP server's pool is Pool.1.
		extra := dhcpv4PoolFactory(cfg.DHCP)
		if cfg.Host != nil {
			for k, v := range device2Factory() {
				if extra == nil {
					extra = map[string]string{}
				}
				extra[k] = v
			}
		}
		if len(extra) > 0 {
			m := map[string]string{}
			for k, v := range extra {
				if s.Param(datamodel.SchemaPath(k)) != nil {
					m[k] = v
				}
			}
			for k, v := range cfg.Factory {
				if _, ok := m[k]; ok {
					m[k] = v // the configuration's own values win
				}
			}
			for k, v := range overlay {
				m[k] = v
			}
			overlay = m
		}
	}
	tree, err := datamodel.New(s, datamodel.Options{StateDir: cfg.StateDir, Factory: cfg.Factory, FactoryOverlay: overlay,
		Shared: cfg.Shared, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	if err := tree.Load(); err != nil {
		if !errors.Is(err, datamodel.ErrCorruptState) {
			return nil, err
		}
		cfg.Logger.Error("starting from factory values", "err", err)
	}
	c := &CPE{Tree: tree, cfg: cfg}
	if len(cfg.Mapping) > 0 {
		// ACS writes to subtrees owned by a device daemon go to the control
		// socket's watchers.
		deliver := func(path, value string) error {
			if c.Control == nil {
				return errors.New("no control socket: no device daemon can receive the value")
			}
			return c.Control.Deliver(path, value)
		}
		if _, err := backend.Mount(tree, cfg.Mapping, deliver); err != nil {
			return nil, err
		}
	}
	c.ensureCredentials()
	// The parts are built in the order their data flows, each complete at
	// construction; what a part tells the agent (a Connection Request, an
	// Active Notification) goes through trigger, which posts to the agent
	// built last (it only runs once Run starts).
	var agent *cwmp.Agent
	trigger := func(code cwmp.EventCode) { agent.Trigger(code, "") }
	c.ConnReq = &cwmp.ConnReqServer{Tree: tree, StateDir: cfg.StateDir, Trigger: func() { trigger(cwmp.EventConnectionRequest) },
		PublicURL: cfg.ConnReqURL, Limits: cfg.ConnReqLimits, Clock: cfg.Agent.Clock, Logger: cfg.Logger.With("component", "connreq")}
	if obs := cfg.Observer; obs != nil {
		c.ConnReq.OnRequest = func(outcome string) { obs.ConnectionRequest("http", outcome) }
	}
	if cfg.ConnReqListen != "" {
		if err := c.ConnReq.Listen(cfg.ConnReqListen); err != nil {
			return nil, err
		}
	}
	c.bind()
	if url := tree.MustGet(cfg.Root + ".ManagementServer.URL"); url != "" {
		c.ConnReq.Refresh(url)
	}
	// TR-111 Part 1 writes its restored state (the ManageableDevice table,
	// the saved lease's GatewayInfo) before the notify engine watches, so
	// that a restart is not reported as a change.
	if err := c.buildAssociation(); err != nil {
		return nil, err
	}
	// A factory reset returns the tree to factory values; what the agent
	// itself computed and wrote there must be written again at once (the
	// BOOTSTRAP Inform after it carries ConnectionRequestURL).
	tree.OnCommit(func(evs []datamodel.Event) {
		if len(evs) == 1 && evs[0].Kind == datamodel.Reset {
			c.afterReset()
		}
	})
	c.Notify = notify.New(notify.Config{Tree: tree, OnActive: func() { trigger(cwmp.EventValueChange) },
		StateDir: cfg.StateDir, PollInterval: cfg.NotifyPoll, Clock: cfg.Agent.Clock, Logger: cfg.Logger})
	ac := cfg.Agent
	ac.Tree, ac.Notifier, ac.ConnReq = tree, c.Notify, c.ConnReq
	if obs := cfg.Observer; obs != nil {
		if own := ac.OnSession; own != nil {
			ac.OnSession = func(r cwmp.SessionResult) { obs.Session(r); own(r) }
		} else {
			ac.OnSession = obs.Session
		}
		ac.OnRPC = obs.RPC
	}
	ac.StateDir = cfg.StateDir
	if ac.Logger == nil {
		ac.Logger = cfg.Logger
	}
	if ac.UploadSource == nil {
		ac.UploadSource = c.uploadSource
	}
	prober := cfg.Diagnostics
	if prober == nil {
		prober = &diag.Real{Logger: cfg.Logger}
	}
	_, realProbes := prober.(*diag.Real)
	c.Diag, err = diag.New(diag.Config{Tree: tree, Prober: prober, Complete: func() { trigger(cwmp.EventDiagnosticsComplete) },
		Interface: c.diagInterface, EchoServer: realProbes, Clock: cfg.Agent.Clock, Logger: cfg.Logger})
	if err != nil {
		c.ConnReq.Close()
		return nil, err
	}
	if cfg.UDPListen != "" {
		ac.AppliedAfterSession = func(path string) bool { return tr111.IsClientParam(cfg.Root, path) }
	}
	if swmod.Supported(s) {
		backend := cfg.SoftwareModules
		if backend == nil {
			backend = &swmod.Virtual{}
		}
		c.SWMod, err = swmod.New(swmod.Config{Tree: tree, Backend: backend,
			Fetch: func(ctx context.Context, url, user, pass string) (string, error) {
				return agent.FetchFile(ctx, url, user, pass)
			},
			Complete:   func(r []soap.OpResult, key string) { agent.DUStateChangeComplete(r, key) },
			Autonomous: func(r []soap.OpResult) { agent.AutonomousDUStateChangeComplete(r) },
			Vendor:     tree.MustGet(cfg.Root + ".DeviceInfo.Manufacturer"), Version: tree.MustGet(cfg.Root + ".DeviceInfo.SoftwareVersion"),
			StateDir: cfg.StateDir, Clock: cfg.Agent.Clock, Logger: cfg.Logger})
		if err != nil {
			c.ConnReq.Close()
			return nil, err
		}
		ac.SoftwareModules = c.SWMod
	}
	// Work the ACS's session asked for starts when it ends: a STUN
	// restart, the diagnostics.
	ac.AfterSession = func() {
		if c.stunAfterSession.Swap(false) && c.STUN != nil {
			c.STUN.Reload()
		}
		c.Diag.SessionEnded()
		if c.SWMod != nil {
			c.SWMod.SessionEnded()
		}
	}
	agent, err = cwmp.New(ac)
	if err != nil {
		c.ConnReq.Close()
		return nil, err
	}
	c.Agent = agent
	if xmppcr.Supported(s) {
		// XMPP Connection Requests (TR-069 Annex K) share the rate limit
		// of the HTTP and UDP ones, and trust what the ACS's TLS trusts.
		tc, err := cwmp.ClientTLS(cfg.Agent.TLS)
		if err != nil {
			return nil, err
		}
		xc := xmppcr.Config{Tree: tree, Trigger: agent.ConnectionRequest, Allow: c.ConnReq.Allow, TLS: tc, Logger: cfg.Logger}
		if obs := cfg.Observer; obs != nil {
			xc.OnRequest = func(outcome string) { obs.ConnectionRequest("xmpp", outcome) }
		}
		c.XMPP, err = xmppcr.New(xc)
		if err != nil {
			return nil, err
		}
	}
	if cfg.UDPListen != "" {
		sc := cfg.STUN
		sc.Store, sc.Root, sc.ListenAddr = tree, cfg.Root, cfg.UDPListen
		sc.OnConnectionRequest = agent.ConnectionRequest
		if obs := cfg.Observer; obs != nil {
			sc.OnUDPRequest = func(outcome string) { obs.ConnectionRequest("udp", outcome) }
		}
		// One rate limit for Connection Requests of every kind: a flood of
		// valid UDP ones must not start more sessions than HTTP ones can.
		sc.AllowConnectionRequest = c.ConnReq.Allow
		if sc.Clock == nil {
			sc.Clock = ac.Clock
		}
		if !cfg.VolatileUDPTimestamp {
			ts := tr111.OpenTimestamps(cfg.StateDir, cfg.Logger)
			sc.LastTimestamp, sc.SaveTimestamp = ts.Last, ts.Save
		}
		if sc.Logger == nil {
			sc.Logger = cfg.Logger
		}
		client, err := tr111.NewClient(sc)
		if err != nil {
			return nil, err
		}
		c.STUN = client
		// A change of a STUN parameter restarts the client, once for a
		// transaction that changes several (a factory reset may change
		// them all). One the ACS makes takes effect when its session
		// ends: the ACS that enables STUN usually asks for Active
		// Notification on UDPConnectionRequestAddress later in the same
		// session, and a binding discovered before that request would be
		// a change never reported (GenieACS's provisions do exactly
		// this). Local changes apply at once.
		tree.OnCommit(func(evs []datamodel.Event) {
			for _, e := range evs {
				if e.Kind == datamodel.Reset {
					client.Reload()
					return
				}
				if e.Kind == datamodel.ValueSet && e.Value != e.Old && tr111.IsClientParam(cfg.Root, e.Path) {
					if e.Origin == datamodel.OriginACS {
						c.stunAfterSession.Store(true)
					} else {
						client.Reload()
					}
					return
				}
			}
		})
	}
	if cfg.ControlSocket != "" {
		c.Control = &control.Server{Tree: tree, Logger: cfg.Logger.With("component", "control"), Inform: c.inform}
		// "getrpcmethods": the next session asks the ACS for its methods;
		// the answer shows the list the last session got.
		c.Control.Register("getrpcmethods", func(map[string]string) (map[string]string, error) {
			agent.RequestRPCMethods()
			return map[string]string{"last": strings.Join(agent.ACSMethods(), ",")}, nil
		})
		if c.STUN != nil {
			// "stun.state": what the TR-111 client knows (phase, mapping,
			// keep-alive period), for operators and tests.
			c.Control.Register("stun.state", func(map[string]string) (map[string]string, error) {
				st := c.STUN.State()
				return map[string]string{"phase": st.Phase, "server": st.Server, "local": st.Local, "mapped": st.Mapped,
					"nat": strconv.FormatBool(st.NAT), "period_ms": strconv.FormatInt(st.Period.Milliseconds(), 10),
					"probes": strconv.Itoa(st.Probes), "binding_changes": strconv.Itoa(st.BindingChanges),
					"udp_connection_requests": strconv.Itoa(st.Requests)}, nil
			})
		}
		c.registerAssociation()
		c.registerOwnRequests()
		if c.SWMod != nil {
			// "du.changed": the device installed, updated or removed a
			// deployment unit on its own (AutonomousDUStateChangeComplete).
			c.Control.Register("du.changed", func(a map[string]string) (map[string]string, error) {
				u := swmod.Unit{UUID: a["uuid"], Name: a["name"], Version: a["version"], Vendor: a["vendor"], Description: a["description"]}
				if err := c.SWMod.Changed(a["operation"], u, a["url"]); err != nil {
					return nil, err
				}
				return map[string]string{"done": "true"}, nil
			})
		}
		if err := c.Control.Listen(cfg.ControlSocket); err != nil {
			return nil, err
		}
		if c.Table != nil {
			c.drainSpool(DnsmasqSpool(cfg.ControlSocket))
		}
	}
	return c, nil
}

// ensureCredentials gives the Connection Request listeners credentials
// when none were configured: an empty username and password would let
// anyone start sessions (HTTP, TR-069 3.2.2) and sign UDP Connection
// Requests with an empty key (TR-111 2.2.1.4). The random values are
// written as the device's own, so they persist; the ACS reads the
// username through GetParameterValues and sets its own password (the
// password stays write-only, as every password does).
func (c *CPE) ensureCredentials() {
	ms := c.cfg.Root + ".ManagementServer."
	user, pass := c.Tree.MustGet(ms+"ConnectionRequestUsername"), c.Tree.MustGet(ms+"ConnectionRequestPassword")
	if user != "" && pass != "" {
		return
	}
	var ch []datamodel.Change
	if user == "" {
		user = "cpe-" + randomHex(6)
		ch = append(ch, datamodel.Change{Path: ms + "ConnectionRequestUsername", Value: user})
	}
	if pass == "" {
		ch = append(ch, datamodel.Change{Path: ms + "ConnectionRequestPassword", Value: randomHex(16)})
	}
	if err := c.Tree.SetValues(ch, datamodel.SetOptions{Origin: datamodel.OriginDevice}); err != nil {
		c.cfg.Logger.Error("cannot store generated Connection Request credentials", "err", err)
		return
	}
	c.cfg.Logger.Warn("no Connection Request credentials configured: random ones generated and kept in the state directory; "+
		"the ACS reads ConnectionRequestUsername and sets ConnectionRequestPassword (or configure connection_request.username and .password)",
		"username", user)
}

// afterReset writes again what the agent computes (runs after a factory
// reset of the tree): credentials, ConnectionRequestURL, GatewayInfo from
// the lease in use, the ManageableDevice entries of the leases. The STUN
// client restarts on its own (it watches the reset) and publishes
// NATDetected and UDPConnectionRequestAddress again.
func (c *CPE) afterReset() {
	c.ensureCredentials()
	if url := c.Tree.MustGet(c.cfg.Root + ".ManagementServer.URL"); url != "" && c.ConnReq != nil {
		c.ConnReq.Refresh(url)
	}
	if c.DHCPClient != nil {
		c.DHCPClient.Republish()
	}
	if c.Table != nil {
		c.Table.Republish()
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (c *CPE) inform(ev string) error {
	if ev == "" {
		ev = string(cwmp.EventPeriodic)
	}
	switch cwmp.EventCode(ev) {
	case cwmp.EventBootstrap, cwmp.EventBoot, cwmp.EventTransferComplete, cwmp.EventMReboot, cwmp.EventMDownload,
		cwmp.EventMUpload, cwmp.EventMScheduleDownload, cwmp.EventMScheduleInform:
		return fmt.Errorf("inform: %q is the agent's own to raise", ev)
	}
	c.Agent.Trigger(cwmp.EventCode(ev), "")
	return nil
}

func (c *CPE) uploadSource(fileType string) ([]byte, error) {
	switch {
	case fileType == "2 Vendor Log File" || len(fileType) > 18 && fileType[:18] == "4 Vendor Log File ":
		if c.cfg.Log == nil {
			return []byte{}, nil
		}
		return []byte(c.cfg.Log.String()), nil
	default:
		return c.configDump()
	}
}

// Run runs every part until ctx ends.
func (c *CPE) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	run := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- err
				cancel() // one part failing stops the device
			}
		}()
	}
	// A listener that fails (it rides out temporary errors itself) stops
	// only itself: the agent keeps its sessions, and its state, without it.
	listener := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				c.cfg.Logger.Error("listener stopped; the agent goes on without it", "listener", name, "err", err)
			}
		}()
	}
	// The notify and diagnostics engines hold a goroutine only while they
	// have work.
	c.Notify.Start(ctx)
	c.Diag.Start()
	if c.SWMod != nil {
		run(c.SWMod.Run)
	}
	if c.XMPP != nil {
		listener("xmpp", c.XMPP.Run)
	}
	if c.cfg.ConnReqListen != "" {
		listener("connection_request", c.ConnReq.Serve)
	}
	if c.Control != nil {
		listener("control", c.Control.Serve)
	}
	if c.STUN != nil {
		run(c.STUN.Run)
	}
	if c.Table != nil {
		run(c.Table.Run)
	}
	if c.DHCPServer != nil {
		run(c.DHCPServer.Run)
	}
	if c.DHCPClient != nil {
		run(c.DHCPClient.Run)
	}
	if c.cfg.Host != nil && (c.hostsTable() != "" || c.isDevice2()) {
		run(c.runHosts)
	}
	// The agent runs on the caller's goroutine: an idle fleet CPE costs
	// one goroutine less.
	if err := c.Agent.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		errs <- err
	}
	cancel()
	wg.Wait()
	c.Diag.Stop()
	c.Notify.Stop()
	c.Notify.Close()
	close(errs)
	return <-errs
}

// diagInterface maps a diagnostic's Interface parameter to the interface
// the agent binds to the data model: the one that reaches the ACS, which
// is Device:2's IP.Interface.1 and Ethernet.Interface.1, and the gateway's
// first WAN connection.
func (c *CPE) diagInterface(ref string) (string, net.IP, bool) {
	if c.net == nil {
		return "", nil, false
	}
	switch strings.TrimSuffix(ref, ".") {
	case "Device.IP.Interface.1", "Device.Ethernet.Interface.1",
		"InternetGatewayDevice.WANDevice.1.WANConnectionDevice.1.WANIPConnection.1":
	default:
		return "", nil, false
	}
	v := c.net.get()
	c.net.mu.Lock()
	name := c.net.name
	c.net.mu.Unlock()
	return name, net.ParseIP(v.ip), name != ""
}

// registerOwnRequests adds the control actions through which the device
// makes the CPE's own requests of the ACS:
//
//	request-download file_type=TYPE [NAME=VALUE...]   RequestDownload, the other arguments as FileTypeArg
//	transfer.autonomous is_download=true file_type=TYPE transfer_url=URL [file_size=N target_file_name=F
//	                    announce_url=URL fault_code=N fault_string=S start_time=T complete_time=T]
func (c *CPE) registerOwnRequests() {
	c.Control.Register("request-download", func(a map[string]string) (map[string]string, error) {
		ft := a["file_type"]
		if ft == "" {
			return nil, errors.New("request-download: file_type is required (e.g. \"1 Firmware Upgrade Image\")")
		}
		names := make([]string, 0, len(a))
		for k := range a {
			if k != "file_type" {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		if len(names) > 16 {
			return nil, errors.New("request-download: at most 16 arguments")
		}
		var args []soap.Arg
		for _, k := range names {
			args = append(args, soap.Arg{Name: k, Value: a[k]})
		}
		c.Agent.RequestDownload(ft, args)
		return map[string]string{"queued": "RequestDownload"}, nil
	})
	c.Control.Register("transfer.autonomous", func(a map[string]string) (map[string]string, error) {
		m := soap.AutonomousTransferComplete{AnnounceURL: a["announce_url"], TransferURL: a["transfer_url"],
			IsDownload: a["is_download"] != "false", FileType: a["file_type"], TargetFileName: a["target_file_name"]}
		if m.FileType == "" || m.TransferURL == "" {
			return nil, errors.New("transfer.autonomous: file_type and transfer_url are required")
		}
		if v := a["file_size"]; v != "" {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("transfer.autonomous: file_size %q", v)
			}
			m.FileSize = uint32(n)
		}
		if v := a["fault_code"]; v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("transfer.autonomous: fault_code %q", v)
			}
			m.FaultStruct = soap.FaultStruct{FaultCode: n, FaultString: a["fault_string"]}
		}
		now := time.Now().UTC()
		m.StartTime, m.CompleteTime = now, now
		for key, dst := range map[string]*time.Time{"start_time": &m.StartTime, "complete_time": &m.CompleteTime} {
			if v := a[key]; v != "" {
				t, err := soap.ParseTime(v)
				if err != nil {
					return nil, fmt.Errorf("transfer.autonomous: %s: %v", key, err)
				}
				*dst = t
			}
		}
		c.Agent.AutonomousTransferComplete(m)
		return map[string]string{"queued": "AutonomousTransferComplete"}, nil
	})
}
