package assoc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"golang.org/x/sys/unix"

	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
	"github.com/cwmp-agent/cwmp-agent/internal/clock"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// ServerConfig configures the gateway's built-in DHCP server.
type ServerConfig struct {
	// Interface is the LAN interface served; it must have an IPv4 address
	// in the pool's subnet.
	Interface string
	// ServerIP and Mask default to the interface's first IPv4 address.
	ServerIP net.IP
	Mask     net.IPMask
	// PoolStart and PoolEnd bound the addresses given out (inclusive).
	PoolStart, PoolEnd net.IP
	// LeaseTime of every lease (default 1 h).
	LeaseTime time.Duration
	// Router is announced as option 3 (default: ServerIP).
	Router net.IP
	// DNS servers announced as option 6 (none by default).
	DNS []net.IP
	// Identity returns the Gateway Identity, read live from the gateway's
	// DeviceInfo (TR-111 1.2.5: sub-options 4, 5 and 6).
	Identity func() tr111.Identity
	// Table receives the devices that sent a Device Identity.
	Table *Table
	// StateDir keeps the leases (dhcp-leases.json); "" keeps nothing.
	StateDir string
	// Conn replaces the interface's port-67 socket (tests).
	Conn   net.PacketConn
	Clock  clock.Clock
	Logger *slog.Logger
}

// offerHold is how long an offered address stays reserved for the client
// it was offered to.
const offerHold = 30 * time.Second

// Server is the gateway side of TR-111 Part 1 as a DHCP server (TR-111
// 1.2.1): every DHCPDISCOVER, DHCPREQUEST and DHCPINFORM is inspected for a
// Device Identity; when there is one, the DHCPOFFER and DHCPACK carry the
// Gateway Identity, and after the DHCPACK the device enters the
// ManageableDevice table. A client without one gets no option 125.
type Server struct {
	cfg   ServerConfig
	log   *slog.Logger
	saver *atomicfile.Saver
	conn  net.PacketConn

	start, end uint32
	serverIP   net.IP

	mu     sync.Mutex
	byMAC  map[string]*slease
	byIP   map[uint32]string // address -> MAC
	cursor uint32

	// Stats counts what the server did, for the control socket and tests.
	Stats ServerStats
}

// ServerStats are the server's counters.
type ServerStats struct {
	Offers, Acks, Naks, Informs, Releases, BadOption125 atomic.Int64
}

type slease struct {
	MAC      string          `json:"mac"`
	IP       string          `json:"ip"`
	Expires  time.Time       `json:"expires"`
	Offered  bool            `json:"offered,omitempty"`
	Identity *tr111.Identity `json:"identity,omitempty"`
	ip       uint32
}

// serving guards against two servers on one interface in this process;
// across processes the socket's bind does (see openServerConn).
var (
	servingMu sync.Mutex
	serving   = map[string]bool{}
)

// NewServer checks the configuration and opens the server's socket.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LeaseTime <= 0 {
		cfg.LeaseTime = time.Hour
	}
	if cfg.Identity == nil {
		return nil, errors.New("assoc: the DHCP server needs the Gateway Identity")
	}
	if cfg.ServerIP == nil || cfg.Mask == nil {
		ip, mask, err := interfaceIPv4(cfg.Interface)
		if err != nil {
			return nil, err
		}
		if cfg.ServerIP == nil {
			cfg.ServerIP = ip
		}
		if cfg.Mask == nil {
			cfg.Mask = mask
		}
	}
	if cfg.Router == nil {
		cfg.Router = cfg.ServerIP
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "dhcp-server", "interface", cfg.Interface),
		byMAC: map[string]*slease{}, byIP: map[uint32]string{}, serverIP: cfg.ServerIP.To4()}
	if s.serverIP == nil {
		return nil, fmt.Errorf("assoc: server address %v is not IPv4", cfg.ServerIP)
	}
	s.start, s.end = ip4u(cfg.PoolStart), ip4u(cfg.PoolEnd)
	if cfg.PoolStart.To4() == nil || cfg.PoolEnd.To4() == nil || s.start > s.end || s.start == 0 {
		return nil, fmt.Errorf("assoc: bad pool %v - %v", cfg.PoolStart, cfg.PoolEnd)
	}
	subnet := net.IPNet{IP: s.serverIP.Mask(cfg.Mask), Mask: cfg.Mask}
	if !subnet.Contains(cfg.PoolStart) || !subnet.Contains(cfg.PoolEnd) {
		return nil, fmt.Errorf("assoc: pool %v - %v is not in the interface's subnet %v", cfg.PoolStart, cfg.PoolEnd, &subnet)
	}
	s.cursor = s.start
	if cfg.StateDir != "" {
		s.saver = atomicfile.NewSaver(filepath.Join(cfg.StateDir, "dhcp-leases.json"), s.snapshot, saveInterval)
		s.load()
	}
	if cfg.Conn != nil {
		s.conn = cfg.Conn
		return s, nil
	}
	servingMu.Lock()
	defer servingMu.Unlock()
	if serving[cfg.Interface] {
		return nil, fmt.Errorf("assoc: a DHCP server already serves %s in this process", cfg.Interface)
	}
	conn, err := openServerConn(cfg.Interface)
	if err != nil {
		return nil, err
	}
	serving[cfg.Interface] = true
	s.conn = conn
	return s, nil
}

// openServerConn opens UDP port 67 bound to the interface. It sets neither
// SO_REUSEADDR nor SO_REUSEPORT (server4's own socket sets both, and two
// servers on one interface would then silently share the traffic): a
// second server on the interface fails to bind and is refused.
func openServerConn(ifname string) (net.PacketConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	f := os.NewFile(uintptr(fd), "dhcp-server")
	defer f.Close()
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
		return nil, os.NewSyscallError("setsockopt SO_BROADCAST", err)
	}
	if err := unix.BindToDevice(fd, ifname); err != nil {
		return nil, fmt.Errorf("assoc: binding to %s: %w", ifname, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: dhcpv4.ServerPort}); err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("assoc: another DHCP server already listens on port 67 of %s (dnsmasq? a second agent?): refusing to share it", ifname)
		}
		return nil, fmt.Errorf("assoc: binding port 67 on %s: %w", ifname, err)
	}
	return net.FilePacketConn(f)
}

func interfaceIPv4(name string) (net.IP, net.IPMask, error) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil, nil, fmt.Errorf("assoc: interface %q: %w", name, err)
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return nil, nil, err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.To4(), n.Mask[len(n.Mask)-4:], nil
		}
	}
	return nil, nil, fmt.Errorf("assoc: interface %s has no IPv4 address", name)
}

func ip4u(ip net.IP) uint32 {
	v := ip.To4()
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint32(v)
}

func u2ip(v uint32) net.IP {
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, v)
	return ip
}

type serverState struct {
	Leases []slease `json:"leases"`
}

func (s *Server) snapshot() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := serverState{Leases: make([]slease, 0, len(s.byMAC))}
	for _, l := range s.byMAC {
		if !l.Offered {
			st.Leases = append(st.Leases, *l)
		}
	}
	sort.Slice(st.Leases, func(i, j int) bool { return st.Leases[i].MAC < st.Leases[j].MAC })
	return st
}

func (s *Server) load() {
	var st serverState
	if err := atomicfile.ReadJSON(s.saver.Path(), &st); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Error("starting without saved DHCP leases", "err", err)
		}
		return
	}
	now := s.cfg.Clock.Now()
	for _, l := range st.Leases {
		v := ip4u(net.ParseIP(l.IP))
		if !l.Expires.After(now) || v < s.start || v > s.end {
			continue
		}
		cp := l
		cp.ip = v
		s.byMAC[l.MAC] = &cp
		s.byIP[v] = l.MAC
	}
}

// Leases lists the bound leases.
func (s *Server) Leases() []Lease {
	st := s.snapshot().(serverState)
	out := make([]Lease, 0, len(st.Leases))
	for _, l := range st.Leases {
		le := Lease{Key: l.MAC, IP: l.IP, Expires: l.Expires, Source: "dhcp-server"}
		if l.Identity != nil {
			le.Identity = *l.Identity
		}
		out = append(out, le)
	}
	return out
}

// Addr is the server's socket address.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	srv, err := server4.NewServer(s.cfg.Interface, nil, func(conn net.PacketConn, _ net.Addr, m *dhcpv4.DHCPv4) {
		reply, dest := s.Handle(m)
		if reply == nil {
			return
		}
		if _, err := conn.WriteTo(reply.ToBytes(), dest); err != nil {
			s.log.Warn("sending a DHCP reply", "to", dest, "err", err)
		}
	}, server4.WithConn(s.conn))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.saver.Run(ctx, func(err error) { s.log.Error("saving DHCP leases", "err", err) })
	}()
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				srv.Close()
				return
			case <-stop:
				return
			case <-t.C:
				s.Sweep()
			}
		}
	}()
	s.log.Info("DHCP server serving", "server", s.serverIP, "pool", fmt.Sprintf("%v-%v", s.cfg.PoolStart, s.cfg.PoolEnd), "lease", s.cfg.LeaseTime)
	err = srv.Serve()
	close(stop)
	wg.Wait()
	if s.cfg.Conn == nil {
		servingMu.Lock()
		delete(serving, s.cfg.Interface)
		servingMu.Unlock()
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Close releases the socket of a server that never ran.
func (s *Server) Close() error {
	if s.cfg.Conn == nil {
		servingMu.Lock()
		delete(serving, s.cfg.Interface)
		servingMu.Unlock()
	}
	return s.conn.Close()
}

// Flush writes the leases now.
func (s *Server) Flush() error { return s.saver.Flush() }

// Sweep forgets expired leases and offers.
func (s *Server) Sweep() {
	now := s.cfg.Clock.Now()
	var gone []string
	s.mu.Lock()
	for mac, l := range s.byMAC {
		if !l.Expires.After(now) {
			s.removeLocked(mac)
			if !l.Offered {
				gone = append(gone, mac)
			}
		}
	}
	s.mu.Unlock()
	if len(gone) > 0 {
		s.saver.Mark()
	}
	if s.cfg.Table != nil {
		s.cfg.Table.Sweep()
	}
}

func (s *Server) removeLocked(mac string) {
	if l := s.byMAC[mac]; l != nil {
		delete(s.byMAC, mac)
		if s.byIP[l.ip] == mac {
			delete(s.byIP, l.ip)
		}
	}
}

// clientIdentity reads the Device Identity of a request. present is false
// without a valid one; a malformed option 125 is counted and logged, and
// the client is answered as one without an identity.
func (s *Server) clientIdentity(m *dhcpv4.DHCPv4) (tr111.Identity, bool) {
	o, ok, err := tr111.FromMessage(m)
	if !ok {
		return tr111.Identity{}, false
	}
	if err == nil {
		var id tr111.Identity
		if id, err = o.DeviceIdentity(); err == nil {
			return id, true
		}
	}
	if !errors.Is(err, tr111.ErrNoIdentity) {
		s.Stats.BadOption125.Add(1)
		s.log.Warn("ignoring a malformed Device Identity", "client", m.ClientHWAddr.String(), "err", err)
	}
	return tr111.Identity{}, false
}

// Handle answers one request: the reply and where to send it, or nil.
func (s *Server) Handle(m *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	if m.OpCode != dhcpv4.OpcodeBootRequest || len(m.ClientHWAddr) == 0 {
		return nil, nil
	}
	mac := m.ClientHWAddr.String()
	id, hasID := s.clientIdentity(m)
	now := s.cfg.Clock.Now()
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		s.mu.Lock()
		ip, ok := s.allocateLocked(mac, m.RequestedIPAddress(), now)
		var known *tr111.Identity
		if l := s.byMAC[mac]; l != nil {
			known = l.Identity
		}
		s.mu.Unlock()
		if !ok {
			s.log.Warn("address pool exhausted", "client", mac)
			return nil, nil
		}
		s.Stats.Offers.Add(1)
		return s.reply(m, dhcpv4.MessageTypeOffer, ip, identityFor(hasID, id, known))
	case dhcpv4.MessageTypeRequest:
		return s.request(m, mac, id, hasID, now)
	case dhcpv4.MessageTypeInform:
		s.Stats.Informs.Add(1)
		ciaddr := m.ClientIPAddr.To4()
		if ciaddr == nil || ciaddr.Equal(net.IPv4zero) {
			return nil, nil
		}
		if hasID && s.cfg.Table != nil {
			// TR-111 1.2.4 Figure 2: DHCPINFORM then DHCPACK completes the
			// association of a device configured by other means. It has no
			// lease to expire; the presence check removes it.
			if err := s.cfg.Table.Bound(Lease{Key: mac, IP: ciaddr.String(), Identity: id, Source: "dhcp-server"}); err != nil {
				s.log.Error("ManageableDevice table", "err", err)
			}
		}
		var gid *tr111.Identity
		if hasID {
			gid = &id
		}
		r, _ := s.reply(m, dhcpv4.MessageTypeAck, nil, gid)
		if r == nil {
			return nil, nil
		}
		// RFC 2131 4.3.5: the DHCPACK to a DHCPINFORM goes to 'ciaddr'.
		return r, &net.UDPAddr{IP: ciaddr, Port: dhcpv4.ClientPort}
	case dhcpv4.MessageTypeRelease:
		s.mu.Lock()
		if l := s.byMAC[mac]; l != nil && u2ip(l.ip).Equal(m.ClientIPAddr) {
			s.removeLocked(mac)
		}
		s.mu.Unlock()
		s.Stats.Releases.Add(1)
		s.saver.Mark()
		if s.cfg.Table != nil {
			s.cfg.Table.Released(mac)
		}
		return nil, nil
	case dhcpv4.MessageTypeDecline:
		s.mu.Lock()
		if l := s.byMAC[mac]; l != nil {
			s.removeLocked(mac)
			// The address is in use by someone else: keep it out of the
			// pool for a lease time under a key no client has.
			bad := &slease{MAC: "declined-" + u2ip(l.ip).String(), IP: u2ip(l.ip).String(), ip: l.ip, Expires: now.Add(s.cfg.LeaseTime)}
			s.byMAC[bad.MAC] = bad
			s.byIP[l.ip] = bad.MAC
		}
		s.mu.Unlock()
		s.saver.Mark()
		if s.cfg.Table != nil {
			s.cfg.Table.Released(mac)
		}
		return nil, nil
	}
	return nil, nil
}

func identityFor(hasID bool, id tr111.Identity, known *tr111.Identity) *tr111.Identity {
	if hasID {
		return &id
	}
	// TR-111 1.2.1: once a client has sent its Device Identity, all
	// subsequent responses carry the Gateway Identity.
	return known
}

// request handles DHCPREQUEST in its four client states (RFC 2131 4.3.2).
func (s *Server) request(m *dhcpv4.DHCPv4, mac string, id tr111.Identity, hasID bool, now time.Time) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	sid := m.ServerIdentifier()
	reqIP := m.RequestedIPAddress()
	ciaddr := m.ClientIPAddr.To4()
	if ciaddr != nil && ciaddr.Equal(net.IPv4zero) {
		ciaddr = nil
	}
	s.mu.Lock()
	if sid != nil && !sid.Equal(s.serverIP) {
		// SELECTING another server's offer: withdraw ours.
		if l := s.byMAC[mac]; l != nil && l.Offered {
			s.removeLocked(mac)
		}
		s.mu.Unlock()
		return nil, nil
	}
	var want net.IP
	switch {
	case sid != nil: // SELECTING
		want = reqIP
	case reqIP != nil && ciaddr == nil: // INIT-REBOOT
		want = reqIP
	default: // RENEWING or REBINDING
		want = ciaddr
	}
	l := s.byMAC[mac]
	v := ip4u(want)
	ok := want != nil && v >= s.start && v <= s.end
	if ok {
		if holder, taken := s.byIP[v]; taken && holder != mac {
			ok = false
		}
	}
	if !ok {
		s.mu.Unlock()
		if sid == nil && ciaddr != nil && !s.inSubnet(want) {
			// RFC 2131 4.3.2: a REBINDING request for an address this
			// server knows nothing about gets no answer.
			return nil, nil
		}
		s.Stats.Naks.Add(1)
		return s.nak(m)
	}
	if l == nil || l.ip != v {
		if l != nil {
			s.removeLocked(mac)
		}
		l = &slease{MAC: mac, IP: u2ip(v).String(), ip: v}
		s.byMAC[mac] = l
		s.byIP[v] = mac
	}
	l.Offered = false
	l.Expires = now.Add(s.cfg.LeaseTime)
	if hasID {
		idc := id
		l.Identity = &idc
	}
	gid := l.Identity
	expires := l.Expires
	s.mu.Unlock()
	s.saver.Mark()
	if gid != nil && s.cfg.Table != nil {
		if err := s.cfg.Table.Bound(Lease{Key: mac, IP: u2ip(v).String(), Identity: *gid, Expires: expires, Source: "dhcp-server"}); err != nil {
			s.log.Error("ManageableDevice table", "err", err)
		}
	}
	s.Stats.Acks.Add(1)
	return s.reply(m, dhcpv4.MessageTypeAck, u2ip(v), gid)
}

func (s *Server) inSubnet(ip net.IP) bool {
	n := net.IPNet{IP: s.serverIP.Mask(s.cfg.Mask), Mask: s.cfg.Mask}
	return ip != nil && n.Contains(ip)
}

// allocateLocked picks the client's address: its current lease, the
// address it asks for when free, or the next free one of the pool. The
// address is held for offerHold unless the client already has a lease.
func (s *Server) allocateLocked(mac string, requested net.IP, now time.Time) (net.IP, bool) {
	if l := s.byMAC[mac]; l != nil && l.Expires.After(now) {
		if l.Offered {
			l.Expires = now.Add(offerHold)
		}
		return u2ip(l.ip), true
	}
	s.removeLocked(mac)
	pick := uint32(0)
	if v := ip4u(requested); v >= s.start && v <= s.end && s.freeLocked(v, now) {
		pick = v
	}
	if pick == 0 {
		size := s.end - s.start + 1
		for i := uint32(0); i < size; i++ {
			v := s.start + (s.cursor-s.start+i)%size
			if v != ip4u(s.serverIP) && s.freeLocked(v, now) {
				pick = v
				s.cursor = s.start + (v-s.start+1)%size
				break
			}
		}
	}
	if pick == 0 {
		return nil, false
	}
	if old, taken := s.byIP[pick]; taken {
		s.removeLocked(old) // expired
	}
	l := &slease{MAC: mac, IP: u2ip(pick).String(), ip: pick, Offered: true, Expires: now.Add(offerHold)}
	s.byMAC[mac] = l
	s.byIP[pick] = mac
	return u2ip(pick), true
}

func (s *Server) freeLocked(v uint32, now time.Time) bool {
	holder, taken := s.byIP[v]
	if !taken {
		return true
	}
	l := s.byMAC[holder]
	return l == nil || !l.Expires.After(now)
}

// reply builds an OFFER or ACK: address, lease, subnet, router, DNS, and
// the Gateway Identity when gid is not nil (TR-111 1.2.1).
func (s *Server) reply(m *dhcpv4.DHCPv4, typ dhcpv4.MessageType, yiaddr net.IP, gid *tr111.Identity) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(typ),
		dhcpv4.WithServerIP(s.serverIP),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.serverIP)),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(s.cfg.Mask)),
		dhcpv4.WithOption(dhcpv4.OptRouter(s.cfg.Router)),
	}
	if len(s.cfg.DNS) > 0 {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDNS(s.cfg.DNS...)))
	}
	if yiaddr != nil {
		lt := s.cfg.LeaseTime
		mods = append(mods, dhcpv4.WithYourIP(yiaddr),
			dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(lt)),
			dhcpv4.WithOption(dhcpv4.OptRenewTimeValue(lt/2)),
			dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(lt*7/8)))
	}
	if gid != nil {
		mods = append(mods, dhcpv4.WithOption(s.cfg.Identity().GatewayOption().Option()))
	}
	r, err := dhcpv4.NewReplyFromRequest(m, mods...)
	if err != nil {
		return nil, nil
	}
	if m.MessageType() == dhcpv4.MessageTypeInform {
		r.ClientIPAddr = m.ClientIPAddr
	}
	return r, s.dest(m)
}

func (s *Server) nak(m *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, *net.UDPAddr) {
	r, err := dhcpv4.NewReplyFromRequest(m, dhcpv4.WithMessageType(dhcpv4.MessageTypeNak),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.serverIP)))
	if err != nil {
		return nil, nil
	}
	// RFC 2131 4.3.2: a DHCPNAK is broadcast (the client may not have the
	// address it asked about).
	if g := m.GatewayIPAddr.To4(); g != nil && !g.Equal(net.IPv4zero) {
		return r, &net.UDPAddr{IP: g, Port: dhcpv4.ServerPort}
	}
	return r, &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
}

// dest is where a reply goes (RFC 2131 4.1): a relay, the client's own
// address when it has one, or broadcast. A client without an address is
// answered by broadcast even without the broadcast flag, which every client
// accepts (they listen on raw sockets) and spares the server from writing
// the kernel's ARP table.
func (s *Server) dest(m *dhcpv4.DHCPv4) *net.UDPAddr {
	if g := m.GatewayIPAddr.To4(); g != nil && !g.Equal(net.IPv4zero) {
		return &net.UDPAddr{IP: g, Port: dhcpv4.ServerPort}
	}
	if c := m.ClientIPAddr.To4(); c != nil && !c.Equal(net.IPv4zero) {
		return &net.UDPAddr{IP: c, Port: dhcpv4.ClientPort}
	}
	return &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort}
}
