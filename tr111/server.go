package tr111

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/stun/v3"

	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
)

// Credential is what the server knows of one CPE, statically provisioned
// (TR-111 2.2.2.1): its STUNUsername and STUNPassword, and its Connection
// Request credentials for sending UDP Connection Requests.
type Credential struct {
	STUNUsername string
	STUNPassword string
	CRUsername   string
	CRPassword   string
}

// ParseCredentials reads a credentials file: one CPE per line,
//
//	STUNUsername STUNPassword ConnectionRequestUsername ConnectionRequestPassword
//
// separated by blanks; "#" starts a comment. Values cannot contain blanks.
func ParseCredentials(r io.Reader) (map[string]Credential, error) {
	out := map[string]Credential{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		f := strings.Fields(text)
		if len(f) == 0 {
			continue
		}
		if len(f) != 4 {
			return nil, fmt.Errorf("tr111: credentials line %d: want 4 fields (STUNUsername STUNPassword CRUsername CRPassword), got %d", line, len(f))
		}
		if _, dup := out[f[0]]; dup {
			return nil, fmt.Errorf("tr111: credentials line %d: STUNUsername %q given twice", line, f[0])
		}
		out[f[0]] = Credential{STUNUsername: f[0], STUNPassword: f[1], CRUsername: f[2], CRPassword: f[3]}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tr111: credentials: %w", err)
	}
	return out, nil
}

// Binding is a CPE's recorded Connection Request binding.
type Binding struct {
	Username      string    `json:"username"`
	Address       string    `json:"address"`
	Authenticated bool      `json:"authenticated"`
	Updated       time.Time `json:"updated"`
	LastSeen      time.Time `json:"last_seen"`
}

// binding is the compact in-memory form (well under 300 bytes each).
type binding struct {
	addr     netip.AddrPort
	updated  int64 // unix nanoseconds
	lastSeen int64
	authed   bool
	lastTx   [16]byte // the last transaction that changed it (once per ID)
}

// ServerConfig configures a Server.
type ServerConfig struct {
	// Listen is the primary address (default ":3478"); Secondary an optional
	// second address:port that answers CHANGE-REQUEST and is given as
	// CHANGED-ADDRESS. Without it CHANGED-ADDRESS is the primary address and
	// CHANGE-REQUEST is ignored (TR-111 2.2.2.1).
	Listen    string
	Secondary string
	// StateDir keeps bindings.json across restarts; "" keeps them in memory.
	StateDir string
	// Copies of each UDP Connection Request (default 3) and the gap between
	// them (default 20 ms) (TR-111 2.2.2.3).
	Copies  int
	Spacing time.Duration
	// SharePort opens the primary socket with SO_REUSEADDR (when
	// ListenPacket is nil) so that an ACS
	// sending its own UDP Connection Requests can bind the same port for a
	// moment: TR-111 2.2.2.3 wants them to leave from the STUN server's
	// address and port (GenieACS's UDP_CONNECTION_REQUEST_PORT does this).
	// While the other socket is open the kernel may hand it a STUN request,
	// which the CPE then retransmits.
	SharePort bool
	// ListenPacket opens the sockets; nil means net.ListenPacket.
	ListenPacket func(network, address string) (net.PacketConn, error)
	// OnRequest, when set, is told of every Binding Request the server
	// answers or refuses (tests, metrics). It runs on the serving
	// goroutine and must not block.
	OnRequest func(RequestInfo)
	// OnDropped, when set, is told of every datagram left unanswered (not
	// a Binding Request, malformed): metrics. It must not block.
	OnDropped func()
	// OnConnectionRequestSent, when set, is told of every UDP Connection
	// Request sent (err nil) or failed: metrics.
	OnConnectionRequestSent func(err error)
	Logger                  *slog.Logger
}

// RequestInfo describes one Binding Request and what the server did.
type RequestInfo struct {
	From          *net.UDPAddr
	ID            TxID
	Username      string
	BindingChange bool // BINDING-CHANGE present
	Integrity     bool // MESSAGE-INTEGRITY present (and valid when Code is 0)
	// Code is 0 for a success response, else the error code sent (401,
	// 431, 432).
	Code int
	// To is where the answer went (RESPONSE-ADDRESS honoured, or From).
	To *net.UDPAddr
}

// Server is a STUN server per TR-111 2.2.2: RFC 3489 Binding Requests with
// or without the magic cookie, RESPONSE-ADDRESS honoured, authenticated
// BINDING-CHANGE recording each CPE's binding, and UDP Connection Requests
// sent from its own socket.
type Server struct {
	cfg  ServerConfig
	log  *slog.Logger
	pri  net.PacketConn
	sec  net.PacketConn
	priA *net.UDPAddr
	secA *net.UDPAddr

	creds atomic.Pointer[map[string]Credential]

	mu       sync.Mutex // guards the following
	bindings map[string]*binding
	nextID   uint32
	// seen holds the addresses that sent CONNECTION-REQUEST-BINDING
	// lately (unix nanoseconds), authenticated or not: the addresses the
	// API may send a Connection Request to without a recorded binding
	// (an ACS using the Notification-based approach learned one of them).
	seen map[netip.AddrPort]int64

	saver *atomicfile.Saver // nil keeps bindings in memory only
}

// NewServer opens the sockets and loads saved bindings.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = ":3478"
	}
	if cfg.Copies <= 0 {
		cfg.Copies = 3
	}
	if cfg.Spacing == 0 {
		cfg.Spacing = 20 * time.Millisecond
	}
	listenPrimary := cfg.ListenPacket
	if cfg.ListenPacket == nil {
		cfg.ListenPacket = net.ListenPacket
		listenPrimary = net.ListenPacket
		if cfg.SharePort {
			lc := net.ListenConfig{Control: reuseAddr}
			listenPrimary = func(network, address string) (net.PacketConn, error) {
				return lc.ListenPacket(context.Background(), network, address)
			}
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: cfg.Logger.With("component", "stun-server"), bindings: map[string]*binding{},
		seen: map[netip.AddrPort]int64{}}
	if p := s.statePath(); p != "" {
		atomicfile.RemoveStale(cfg.StateDir, 0) // leftovers of a kill mid-write
		// At most one write a second, however many CPEs move.
		s.saver = atomicfile.NewSaver(p, s.snapshot, time.Second)
	}
	empty := map[string]Credential{}
	s.creds.Store(&empty)
	var idb [4]byte
	rand.Read(idb[:])
	s.nextID = binary.BigEndian.Uint32(idb[:])
	pri, err := listenPrimary("udp4", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("tr111: stun_server.listen %s: %w", cfg.Listen, err)
	}
	s.pri, s.priA = pri, pri.LocalAddr().(*net.UDPAddr)
	if cfg.Secondary != "" {
		sec, err := cfg.ListenPacket("udp4", cfg.Secondary)
		if err != nil {
			pri.Close()
			return nil, fmt.Errorf("tr111: stun_server.secondary %s: %w", cfg.Secondary, err)
		}
		s.sec, s.secA = sec, sec.LocalAddr().(*net.UDPAddr)
	}
	if err := s.load(); err != nil {
		s.log.Error("bindings not restored", "err", err)
	}
	return s, nil
}

// Addr is the primary address.
func (s *Server) Addr() *net.UDPAddr { return s.priA }

// SetCredentials replaces the credentials (SIGHUP reload).
func (s *Server) SetCredentials(c map[string]Credential) { s.creds.Store(&c) }

func (s *Server) credential(user string) (Credential, bool) {
	c, ok := (*s.creds.Load())[user]
	return c, ok
}

// Run serves until ctx ends; the sockets are closed then.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	serve := func(c net.PacketConn, self *net.UDPAddr) {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			ua, ok := from.(*net.UDPAddr)
			if !ok {
				continue
			}
			out, to, via, info := s.respond(buf[:n], ua, c == s.sec)
			if out != nil {
				via.WriteTo(out, to)
				if s.cfg.OnRequest != nil {
					s.cfg.OnRequest(info)
				}
			} else if s.cfg.OnDropped != nil {
				s.cfg.OnDropped()
			}
		}
	}
	wg.Add(3)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Minute)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				s.expireSeen()
			}
		}
	}()
	go serve(s.pri, s.priA)
	go func() {
		defer wg.Done()
		s.saver.Run(ctx, func(err error) { s.log.Error("cannot save bindings", "err", err) })
	}()
	if s.sec != nil {
		wg.Add(1)
		go serve(s.sec, s.secA)
	}
	<-ctx.Done()
	s.pri.Close()
	if s.sec != nil {
		s.sec.Close()
	}
	wg.Wait()
	// What the serving goroutines recorded after the saver stopped.
	if err := s.saver.FlushPending(); err != nil {
		s.log.Error("cannot save bindings", "err", err)
	}
	return ctx.Err()
}

// Respond handles one datagram and returns the answer, where to send it
// and from which socket (nil: no answer). It is the whole per-request path,
// exposed for benchmarks.
func (s *Server) Respond(b []byte, from *net.UDPAddr, onSecondary bool) ([]byte, *net.UDPAddr, net.PacketConn) {
	out, to, via, _ := s.respond(b, from, onSecondary)
	return out, to, via
}

func (s *Server) respond(b []byte, from *net.UDPAddr, onSecondary bool) (out []byte, to *net.UDPAddr, via net.PacketConn, info RequestInfo) {
	if len(b) < 20 || b[0] > 1 {
		return nil, nil, nil, info
	}
	m, err := decodeSTUN(b, false)
	if err != nil || m.Type != stun.BindingRequest {
		return nil, nil, nil, info
	}
	info = RequestInfo{From: from, ID: m.ID, BindingChange: m.Has(AttrBindingChange), Integrity: m.HasIntegrity(), To: from}
	fail := func(code int, reason string) ([]byte, *net.UDPAddr, net.PacketConn, RequestInfo) {
		info.Code = code
		o, t, v := s.errorResponse(m, code, reason, from, via)
		return o, t, v, info
	}
	via = s.pri
	self := s.priA
	if onSecondary {
		via, self = s.sec, s.secA
	}
	// Authentication (TR-111 2.2.2.2.1).
	user, hasUser := m.Username()
	info.Username = user
	var key []byte
	classic := !m.ID.HasCookie()
	if m.HasIntegrity() {
		c, ok := s.credential(user)
		if !hasUser {
			return fail(432, "Missing Username")
		}
		if !ok || !m.CheckIntegrity([]byte(c.STUNPassword)) {
			// A failed authentication gets an error and nothing else.
			return fail(431, "Integrity Check Failure")
		}
		key = []byte(c.STUNPassword)
	}
	crb := false
	if v, ok := m.Get(AttrConnectionRequestBinding); ok && string(v) == ConnectionRequestBindingValue {
		crb = true
		s.sawBinding(from)
	}
	if _, known := s.credential(user); crb && hasUser && known {
		// Only provisioned CPEs are challenged: the server cannot
		// authenticate the others, and must not break their binding
		// discovery (an ACS using the Notification-based approach).
		change := m.Has(AttrBindingChange)
		if key == nil && (change || s.differs(user, from)) {
			// BINDING-CHANGE, or a binding that moved: prove it first.
			return fail(401, "Unauthorized")
		}
		s.record(user, from, key != nil, m.ID)
	}
	// The Binding Response (RFC 3489 11.2): to RESPONSE-ADDRESS if given,
	// from the secondary socket if CHANGE-REQUEST asks and there is one.
	// RESPONSE-ADDRESS is honoured only for the request's own source IP
	// (another port of it: all that TR-111 2.2.1.2 binding-timeout
	// discovery needs) or for an authenticated request, so that the server
	// cannot be made to send its answers to a third party (RFC 3489 12.1
	// names the reflection attack; RFC 5389 dropped the attribute for it).
	to = from
	if ra, err := m.Address(AttrResponseAddress); err == nil {
		if !ra.IP.Equal(from.IP) && key == nil {
			return fail(401, "Unauthorized")
		}
		to = ra
	}
	info.To = to
	if cip, cport := m.ChangeRequest(); (cip || cport) && s.sec != nil && !onSecondary {
		via, self = s.sec, s.secA
	}
	changed := s.priA
	if s.secA != nil {
		changed = s.secA
		if onSecondary {
			changed = s.priA
		}
	}
	setters := []stun.Setter{stun.BindingSuccess, txID(m.ID),
		addressAttr{stun.AttrMappedAddress, from},
		addressAttr{AttrSourceAddress, s.sourceAddr(self)},
		addressAttr{AttrChangedAddress, s.sourceAddr(changed)}}
	if !classic {
		setters = append(setters, &stun.XORMappedAddress{IP: from.IP, Port: from.Port})
	}
	if to != from {
		setters = append(setters, addressAttr{AttrReflectedFrom, from})
	}
	if key != nil {
		if classic {
			setters = append(setters, classicIntegrity(key))
		} else {
			setters = append(setters, stun.NewShortTermIntegrity(string(key)))
		}
	}
	out, err = buildSTUN(setters...)
	if err != nil {
		return nil, nil, nil, info
	}
	return out, to, via, info
}

// sourceAddr makes a wildcard listening address concrete enough to send.
func (s *Server) sourceAddr(a *net.UDPAddr) *net.UDPAddr {
	if a.IP.IsUnspecified() {
		return &net.UDPAddr{IP: net.IPv4zero, Port: a.Port}
	}
	return a
}

func (s *Server) errorResponse(m *Message, code int, reason string, to *net.UDPAddr, via net.PacketConn) ([]byte, *net.UDPAddr, net.PacketConn) {
	out, err := buildSTUN(stun.NewType(stun.MethodBinding, stun.ClassErrorResponse), txID(m.ID),
		&stun.ErrorCodeAttribute{Code: stun.ErrorCode(code), Reason: []byte(reason)})
	if err != nil {
		return nil, nil, nil
	}
	return out, to, via
}

// Bounds of the seen addresses: kept seenTTL after the last request, at
// most maxSeen of them (a flood of spoofed sources fills it, then new ones
// are not added until old ones expire).
const (
	seenTTL = 15 * time.Minute
	maxSeen = 1 << 18
)

func (s *Server) sawBinding(from *net.UDPAddr) {
	ap, ok := netip.AddrFromSlice(from.IP.To4())
	if !ok {
		return
	}
	k := netip.AddrPortFrom(ap, uint16(from.Port))
	now := time.Now().UnixNano()
	s.mu.Lock()
	if _, ok := s.seen[k]; ok || len(s.seen) < maxSeen {
		s.seen[k] = now
	}
	s.mu.Unlock()
}

// expireSeen forgets addresses not heard from within seenTTL.
func (s *Server) expireSeen() {
	limit := time.Now().Add(-seenTTL).UnixNano()
	s.mu.Lock()
	for k, at := range s.seen {
		if at < limit {
			delete(s.seen, k)
		}
	}
	s.mu.Unlock()
}

// KnownAddress reports whether a is a recorded binding or an address that
// sent CONNECTION-REQUEST-BINDING within the last 15 minutes.
func (s *Server) KnownAddress(a netip.AddrPort) bool {
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[a]; ok {
		return true
	}
	for _, b := range s.bindings {
		if b.addr == a {
			return true
		}
	}
	return false
}

// differs reports whether a request comes from another address than the
// user's recorded binding (an unknown user counts as different).
func (s *Server) differs(user string, from *net.UDPAddr) bool {
	ap, ok := netip.AddrFromSlice(from.IP.To4())
	if !ok {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bindings[user]
	if b == nil {
		return true
	}
	if b.addr == netip.AddrPortFrom(ap, uint16(from.Port)) {
		b.lastSeen = time.Now().UnixNano()
		return false
	}
	return true
}

// record stores a binding, once per transaction ID (copies of a request are
// ignored). Unauthenticated requests only refresh an existing binding at
// the same address.
func (s *Server) record(user string, from *net.UDPAddr, authed bool, id TxID) {
	ap, ok := netip.AddrFromSlice(from.IP.To4())
	if !ok {
		return
	}
	addr := netip.AddrPortFrom(ap, uint16(from.Port))
	now := time.Now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.bindings[user]
	if b != nil && b.lastTx == id {
		return
	}
	if !authed {
		if b != nil && b.addr == addr {
			b.lastSeen = now
		}
		return
	}
	if b == nil {
		b = &binding{}
		s.bindings[user] = b
	}
	moved := b.addr != addr
	b.addr, b.lastSeen, b.authed, b.lastTx = addr, now, true, id
	if moved {
		b.updated = now
		s.saver.Mark()
		s.log.Debug("binding recorded", "username", user, "address", addr.String())
	}
}

// BindingCount is the number of bindings held.
func (s *Server) BindingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bindings)
}

// Bindings lists the recorded bindings.
func (s *Server) Bindings() []Binding {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Binding, 0, len(s.bindings))
	for u, b := range s.bindings {
		out = append(out, Binding{Username: u, Address: b.addr.String(), Authenticated: b.authed,
			Updated: time.Unix(0, b.updated).UTC(), LastSeen: time.Unix(0, b.lastSeen).UTC()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Username < out[j].Username })
	return out
}

// ErrUnknownCPE: no binding or no credentials for the STUNUsername.
var ErrUnknownCPE = errors.New("tr111: no binding and credentials for that STUN username")

// ConnectionRequest sends a UDP Connection Request to the CPE that
// registered its binding under the STUNUsername.
func (s *Server) ConnectionRequest(ctx context.Context, stunUser string) (string, error) {
	c, ok := s.credential(stunUser)
	s.mu.Lock()
	b := s.bindings[stunUser]
	var addr netip.AddrPort
	if b != nil {
		addr = b.addr
	}
	s.mu.Unlock()
	if !ok || b == nil {
		return "", ErrUnknownCPE
	}
	to := net.UDPAddrFromAddrPort(addr)
	return to.String(), s.ConnectionRequestTo(ctx, to, authority(addr.Addr().String(), int(addr.Port())), c.CRUsername, c.CRPassword)
}

// ConnectionRequestTo sends a UDP Connection Request from the STUN socket
// (TR-111 2.2.2.3): Copies identical datagrams Spacing apart, ts the current
// Unix time, id unique per request, cn random, sig the HMAC-SHA1.
func (s *Server) ConnectionRequestTo(ctx context.Context, to *net.UDPAddr, authorityValue, crUser, crPass string) error {
	err := s.sendConnectionRequest(ctx, to, authorityValue, crUser, crPass)
	if s.cfg.OnConnectionRequestSent != nil {
		s.cfg.OnConnectionRequestSent(err)
	}
	return err
}

func (s *Server) sendConnectionRequest(ctx context.Context, to *net.UDPAddr, authorityValue, crUser, crPass string) error {
	s.mu.Lock()
	s.nextID++
	id := s.nextID
	s.mu.Unlock()
	var cn [8]byte
	rand.Read(cn[:])
	msg := FormatUDPConnRequest(authorityValue, uint64(time.Now().Unix()), fmt.Sprint(id), crUser, hex.EncodeToString(cn[:]), crPass)
	for i := 0; i < s.cfg.Copies; i++ {
		if i > 0 {
			t := time.NewTimer(s.cfg.Spacing)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		if _, err := s.pri.WriteTo(msg, to); err != nil {
			return fmt.Errorf("tr111: UDP Connection Request to %s: %w", to, err)
		}
	}
	s.log.Info("UDP Connection Request sent", "to", to.String(), "copies", s.cfg.Copies)
	return nil
}

// Persistence of bindings.

type savedBinding struct {
	Address  string `json:"address"`
	Updated  int64  `json:"updated"`
	LastSeen int64  `json:"last_seen"`
}

func (s *Server) statePath() string {
	if s.cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(s.cfg.StateDir, "bindings.json")
}

func (s *Server) load() error {
	p := s.statePath()
	if p == "" {
		return nil
	}
	var saved map[string]savedBinding
	err := atomicfile.ReadJSON(p, &saved)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for u, sb := range saved {
		ap, err := netip.ParseAddrPort(sb.Address)
		if err != nil {
			continue
		}
		s.bindings[u] = &binding{addr: ap, updated: sb.Updated, lastSeen: sb.LastSeen, authed: true}
	}
	return nil
}

// snapshot is the authenticated bindings, for the saver.
func (s *Server) snapshot() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	saved := make(map[string]savedBinding, len(s.bindings))
	for u, b := range s.bindings {
		if b.authed {
			saved[u] = savedBinding{Address: b.addr.String(), Updated: b.updated, LastSeen: b.lastSeen}
		}
	}
	return saved
}

// reuseAddr sets SO_REUSEADDR on a socket before it is bound.
func reuseAddr(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	}); err != nil {
		return err
	}
	return serr
}
