package assoc

import (
	"context"
	"encoding/hex"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/schemas"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

var (
	gwIdentity  = tr111.Identity{ManufacturerOUI: "001122", SerialNumber: "GW-0001", ProductClass: "IGD"}
	devIdentity = tr111.Identity{ManufacturerOUI: "00D09E", SerialNumber: "STB-42", ProductClass: "SetTopBox"}
)

func gatewayTree(t testing.TB) *datamodel.Tree {
	t.Helper()
	tr, err := datamodel.New(schemas.IGD(), datamodel.Options{})
	require.NoError(t, err)
	return tr
}

func deviceTree(t testing.TB) *datamodel.Tree {
	t.Helper()
	tr, err := datamodel.New(schemas.Device(), datamodel.Options{})
	require.NoError(t, err)
	return tr
}

// testServer is a gateway on 192.168.60.1/24 with no socket of its own:
// tests call Handle, or reach it through memTransport.
func testServer(t testing.TB, tree *datamodel.Tree, lease time.Duration, dir string) (*Server, *Table) {
	t.Helper()
	tab, err := NewTable(TableConfig{Store: tree, Root: "InternetGatewayDevice", StateDir: dir})
	require.NoError(t, err)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	s, err := NewServer(ServerConfig{Interface: "lan0", ServerIP: net.IPv4(192, 168, 60, 1), Mask: net.CIDRMask(24, 32),
		PoolStart: net.IPv4(192, 168, 60, 100), PoolEnd: net.IPv4(192, 168, 60, 199), LeaseTime: lease,
		DNS:      []net.IP{net.IPv4(192, 168, 60, 1)},
		Identity: func() tr111.Identity { return gwIdentity }, Table: tab, StateDir: dir, Conn: pc})
	require.NoError(t, err)
	return s, tab
}

// memTransport carries the client's messages to a Server in memory,
// through their wire form; down drops everything, as a gateway that left.
type memTransport struct {
	srv  *Server
	hw   net.HardwareAddr
	down atomic.Bool
	// dropRequests loses every DHCPREQUEST (the OFFER still comes).
	dropRequests atomic.Bool
	mu           sync.Mutex
	seen         []*dhcpv4.DHCPv4 // what the server received
	dest         []*net.UDPAddr   // where the client sent it
}

func (m *memTransport) HardwareAddr() net.HardwareAddr { return m.hw }

func (m *memTransport) deliver(msg *dhcpv4.DHCPv4, to *net.UDPAddr) (*dhcpv4.DHCPv4, error) {
	req, err := dhcpv4.FromBytes(msg.ToBytes())
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.seen = append(m.seen, req)
	m.dest = append(m.dest, to)
	m.mu.Unlock()
	if m.down.Load() || m.dropRequests.Load() && req.MessageType() == dhcpv4.MessageTypeRequest {
		return nil, nil
	}
	r, _ := m.srv.Handle(req)
	if r == nil {
		return nil, nil
	}
	return dhcpv4.FromBytes(r.ToBytes())
}

func (m *memTransport) Exchange(ctx context.Context, msg *dhcpv4.DHCPv4, from net.IP, to *net.UDPAddr, match func(*dhcpv4.DHCPv4) bool, timeout time.Duration) (*dhcpv4.DHCPv4, error) {
	r, err := m.deliver(msg, to)
	if err == nil && r != nil && match(r) {
		return r, nil
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return nil, nclient4.ErrNoResponse
}

func (m *memTransport) Send(msg *dhcpv4.DHCPv4, from net.IP, to *net.UDPAddr) error {
	_, err := m.deliver(msg, to)
	return err
}

func (m *memTransport) sent(typ dhcpv4.MessageType) []*dhcpv4.DHCPv4 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*dhcpv4.DHCPv4
	for _, s := range m.seen {
		if s.MessageType() == typ {
			out = append(out, s)
		}
	}
	return out
}

// fakeLink records what the client does to the interface.
type fakeLink struct {
	mu      sync.Mutex
	addr    net.IP
	applied []string
	removed []string
}

func (f *fakeLink) Apply(l *ClientLease) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, l.IP().String())
	return nil
}

func (f *fakeLink) Remove(l *ClientLease) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, l.IP().String())
	return nil
}

func (f *fakeLink) Address() net.IP {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addr
}

func (f *fakeLink) Gateway() net.IP { return net.IPv4(192, 168, 60, 1) }

func gatewayInfo(t *datamodel.Tree) tr111.Identity {
	return tr111.Identity{ManufacturerOUI: t.MustGet("Device.GatewayInfo.ManufacturerOUI"),
		SerialNumber: t.MustGet("Device.GatewayInfo.SerialNumber"), ProductClass: t.MustGet("Device.GatewayInfo.ProductClass")}
}

func startClient(t *testing.T, cfg ClientConfig) (*Client, context.CancelFunc) {
	t.Helper()
	c, err := NewClient(cfg)
	require.NoError(t, err)
	return c, testrun.Go(t, c.Run)
}

// TestAssociationLifecycle: our device side against our gateway side in
// memory: DORA with both identities, renewal at T1, GatewayInfo discarded
// when the lease expires without renewal, association again when the
// gateway comes back, and DHCPRELEASE on exit.
func TestAssociationLifecycle(t *testing.T) { synctest.Test(t, testAssociationLifecycle) }

func testAssociationLifecycle(t *testing.T) {
	gw, dev := gatewayTree(t), deviceTree(t)
	srv, tab := testServer(t, gw, 3*time.Second, "")
	tp := &memTransport{srv: srv, hw: net.HardwareAddr{2, 0, 0, 0, 0, 7}}
	link := &fakeLink{}
	c, stop := startClient(t, ClientConfig{Interface: "eth0", Identity: func() tr111.Identity { return devIdentity },
		Store: dev, Root: "Device", Transport: tp, Link: link, Timeout: 100 * time.Millisecond, ReleaseOnExit: true})

	require.Eventually(t, func() bool { return c.State().State == "bound" }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, gwIdentity, gatewayInfo(dev), "the Gateway Identity of the ACK is in GatewayInfo")
	assert.Equal(t, "1", gw.MustGet("InternetGatewayDevice.ManagementServer.ManageableDeviceNumberOfEntries"))
	assert.Equal(t, devIdentity.SerialNumber, gw.MustGet("InternetGatewayDevice.ManagementServer.ManageableDevice.1.SerialNumber"))
	assert.Equal(t, devIdentity.ProductClass, gw.MustGet("InternetGatewayDevice.ManagementServer.ManageableDevice.1.ProductClass"))
	assert.Equal(t, []string{"192.168.60.100"}, link.applied)

	// Every request carried the Device Identity and asked for option 125.
	for _, typ := range []dhcpv4.MessageType{dhcpv4.MessageTypeDiscover, dhcpv4.MessageTypeRequest} {
		ms := tp.sent(typ)
		require.NotEmpty(t, ms, typ)
		o, ok, err := tr111.FromMessage(ms[0])
		require.NoError(t, err)
		require.True(t, ok, typ)
		id, err := o.DeviceIdentity()
		require.NoError(t, err)
		assert.Equal(t, devIdentity, id)
		assert.True(t, ms[0].IsOptionRequested(dhcpv4.OptionVendorIdentifyingVendorSpecific), "option 125 in the parameter request list")
	}

	// Renewal at T1 (1.5 s): unicast to the server, from the leased address.
	require.Eventually(t, func() bool { return len(tp.sent(dhcpv4.MessageTypeRequest)) >= 2 }, 4*time.Second, 10*time.Millisecond)
	renew := tp.sent(dhcpv4.MessageTypeRequest)[1]
	assert.Equal(t, "192.168.60.100", renew.ClientIPAddr.String())
	tp.mu.Lock()
	assert.Equal(t, "192.168.60.1", tp.dest[len(tp.dest)-1].IP.String(), "renewal is unicast to the server")
	tp.mu.Unlock()
	require.Eventually(t, func() bool { return c.State().State == "bound" }, 2*time.Second, 10*time.Millisecond)

	// The gateway leaves: renewing, rebinding (broadcast), then expiry.
	tp.down.Store(true)
	require.Eventually(t, func() bool { return c.State().State == "rebinding" }, 6*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return gatewayInfo(dev) == tr111.Identity{} }, 6*time.Second, 10*time.Millisecond,
		"GatewayInfo is emptied when the lease expires without renewal")
	link.mu.Lock()
	assert.Equal(t, []string{"192.168.60.100"}, link.removed, "the address goes with the lease")
	link.mu.Unlock()
	srv.Sweep()
	assert.Equal(t, "0", gw.MustGet("InternetGatewayDevice.ManagementServer.ManageableDeviceNumberOfEntries"), "the gateway's entry expires with the lease")

	// It comes back: a new lease, the identity recorded again.
	tp.down.Store(false)
	require.Eventually(t, func() bool { return c.State().State == "bound" && gatewayInfo(dev) == gwIdentity }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1, tab.Len())

	// Stopping releases the lease: the gateway forgets the device, the
	// device forgets the gateway.
	stop()
	assert.Equal(t, int64(1), srv.Stats.Releases.Load())
	assert.Equal(t, 0, tab.Len())
	assert.Equal(t, "0", gw.MustGet("InternetGatewayDevice.ManagementServer.ManageableDeviceNumberOfEntries"))
	assert.Equal(t, tr111.Identity{}, gatewayInfo(dev))
}

// TestInformMode: a device with a static address associates with
// DHCPINFORM, unicast to its gateway; the entry has no lease to expire.
func TestInformMode(t *testing.T) { synctest.Test(t, testInformMode) }

func testInformMode(t *testing.T) {
	gw, dev := gatewayTree(t), deviceTree(t)
	srv, tab := testServer(t, gw, time.Hour, "")
	tp := &memTransport{srv: srv, hw: net.HardwareAddr{2, 0, 0, 0, 0, 8}}
	link := &fakeLink{addr: net.IPv4(192, 168, 60, 7)}
	c, _ := startClient(t, ClientConfig{Interface: "eth0", Inform: true, Identity: func() tr111.Identity { return devIdentity },
		Store: dev, Root: "Device", Transport: tp, Link: link, Timeout: 100 * time.Millisecond})
	require.Eventually(t, func() bool { return c.State().State == "informed" }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, gwIdentity, gatewayInfo(dev))
	informs := tp.sent(dhcpv4.MessageTypeInform)
	require.Len(t, informs, 1)
	assert.Equal(t, "192.168.60.7", informs[0].ClientIPAddr.String())
	tp.mu.Lock()
	assert.Equal(t, "192.168.60.1", tp.dest[0].IP.String(), "DHCPINFORM is unicast to the gateway")
	tp.mu.Unlock()
	ls := tab.Leases()
	require.Len(t, ls, 1)
	assert.True(t, ls[0].Expires.IsZero())
	assert.Equal(t, "192.168.60.7", ls[0].IP)
	assert.Empty(t, link.applied, "inform mode never configures the interface")

	// The address changes: a new DHCPINFORM at once.
	link.mu.Lock()
	link.addr = net.IPv4(192, 168, 60, 8)
	link.mu.Unlock()
	require.Eventually(t, func() bool { return len(tp.sent(dhcpv4.MessageTypeInform)) == 2 }, 5*time.Second, 10*time.Millisecond)
}

// TestGatewayWithoutIdentity: a server that sends no option 125 leaves
// GatewayInfo empty; a client without a Device Identity gets none.
func TestGatewayWithoutIdentity(t *testing.T) {
	gw := gatewayTree(t)
	srv, tab := testServer(t, gw, time.Hour, "")
	disc, err := dhcpv4.NewDiscovery(net.HardwareAddr{2, 0, 0, 0, 0, 9})
	require.NoError(t, err)
	offer, dest := srv.Handle(disc)
	require.NotNil(t, offer)
	assert.Equal(t, "255.255.255.255:68", dest.String())
	_, ok, _ := tr111.FromMessage(offer)
	assert.False(t, ok, "no Device Identity, no Gateway Identity")
	req, err := dhcpv4.NewRequestFromOffer(offer)
	require.NoError(t, err)
	ack, _ := srv.Handle(req)
	require.NotNil(t, ack)
	assert.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
	_, ok, _ = tr111.FromMessage(ack)
	assert.False(t, ok)
	assert.Equal(t, 0, tab.Len())

	// The device side records empty strings for a gateway without TR-111.
	dev := deviceTree(t)
	require.NoError(t, dev.Set("Device.GatewayInfo.SerialNumber", "OLD"))
	c, err := NewClient(ClientConfig{Interface: "eth0", Identity: func() tr111.Identity { return devIdentity }, Store: dev, Root: "Device",
		Transport: &memTransport{srv: srv}, Link: &fakeLink{}})
	require.NoError(t, err)
	c.record(ack)
	assert.Equal(t, tr111.Identity{}, gatewayInfo(dev))

	// A gateway sending only sub-option 5: the others are empty strings.
	ack.UpdateOption(tr111.VIVendorOptions{{Enterprise: tr111.EnterpriseBBF, Data: []byte{5, 3, 'G', 'W', '2'}}}.Option())
	c.record(ack)
	assert.Equal(t, tr111.Identity{SerialNumber: "GW2"}, gatewayInfo(dev))
}

// TestServerBadOption125: malformed or invalid Device Identities never
// crash the server nor enter the table; the client is served without one.
func TestServerBadOption125(t *testing.T) {
	gw := gatewayTree(t)
	srv, tab := testServer(t, gw, time.Hour, "")
	bad := []string{
		"00000de9" + "10" + "0106303044303945", // block past the end
		"00000de9" + "04" + "01063030",         // sub-option past the end
		"00000d",                               // short header
		"00000de9" + "0f" + "0106303064303965" + "0205534e313233", // lower-case OUI
		"00000de9" + "08" + "0106303044303945",                    // no serial number
		"00000de9" + "0a" + "0106303044303945" + "0200",           // empty serial number
	}
	for i, h := range bad {
		raw, _ := hex.DecodeString(h)
		hw := net.HardwareAddr{2, 0, 0, 0, 1, byte(i)}
		disc, err := dhcpv4.NewDiscovery(hw, dhcpv4.WithGeneric(dhcpv4.OptionVendorIdentifyingVendorSpecific, raw))
		require.NoError(t, err)
		offer, _ := srv.Handle(disc)
		require.NotNil(t, offer, "the client is still served: %s", h)
		_, ok, _ := tr111.FromMessage(offer)
		assert.False(t, ok, "no Gateway Identity for an invalid Device Identity: %s", h)
		req, err := dhcpv4.NewRequestFromOffer(offer, dhcpv4.WithGeneric(dhcpv4.OptionVendorIdentifyingVendorSpecific, raw))
		require.NoError(t, err)
		ack, _ := srv.Handle(req)
		require.NotNil(t, ack)
		assert.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
	}
	assert.Equal(t, 0, tab.Len())
	assert.Equal(t, "0", gw.MustGet("InternetGatewayDevice.ManagementServer.ManageableDeviceNumberOfEntries"))
	assert.Equal(t, int64(10), srv.Stats.BadOption125.Load(), "malformed or invalid identities are counted (one without sub-option 2 is simply no identity)")
}

func exchange(t testing.TB, srv *Server, hw net.HardwareAddr, id *tr111.Identity) *dhcpv4.DHCPv4 {
	t.Helper()
	var mods []dhcpv4.Modifier
	if id != nil {
		mods = append(mods, dhcpv4.WithOption(id.DeviceOption().Option()))
	}
	disc, err := dhcpv4.NewDiscovery(hw, mods...)
	require.NoError(t, err)
	offer, _ := srv.Handle(disc)
	require.NotNil(t, offer)
	req, err := dhcpv4.NewRequestFromOffer(offer, mods...)
	require.NoError(t, err)
	ack, _ := srv.Handle(req)
	require.NotNil(t, ack)
	require.Equal(t, dhcpv4.MessageTypeAck, ack.MessageType())
	return ack
}

// TestTableOneEntryPerIdentity: two leases with the same Device Identity
// make one entry (TR-111 1.2.1: added only if no matching entry is
// listed), which goes with the last of them; a renewal without option 125
// still gets the Gateway Identity.
func TestTableOneEntryPerIdentity(t *testing.T) {
	gw := gatewayTree(t)
	srv, tab := testServer(t, gw, time.Hour, "")
	a, b := net.HardwareAddr{2, 0, 0, 0, 2, 1}, net.HardwareAddr{2, 0, 0, 0, 2, 2}
	ackA := exchange(t, srv, a, &devIdentity)
	exchange(t, srv, b, &devIdentity)
	assert.Equal(t, 1, tab.Len())
	other := tr111.Identity{ManufacturerOUI: "ABCDEF", SerialNumber: "X1"}
	exchange(t, srv, net.HardwareAddr{2, 0, 0, 0, 2, 3}, &other)
	assert.Equal(t, "2", gw.MustGet("InternetGatewayDevice.ManagementServer.ManageableDeviceNumberOfEntries"))
	assert.Equal(t, "", gw.MustGet("InternetGatewayDevice.ManagementServer.ManageableDevice.2.ProductClass"), "no product class: empty")

	renew, err := dhcpv4.NewRenewFromAck(ackA)
	require.NoError(t, err)
	r, dest := srv.Handle(renew)
	require.NotNil(t, r)
	assert.Equal(t, ackA.YourIPAddr.String()+":68", dest.String(), "a renewal is answered to the client's address")
	_, ok, _ := tr111.FromMessage(r)
	assert.True(t, ok, "once the client sent its identity, every response carries the gateway's")

	for _, hw := range []net.HardwareAddr{a, b} {
		rel, err := dhcpv4.NewReleaseFromACK(exchange(t, srv, hw, nil))
		require.NoError(t, err)
		srv.Handle(rel)
	}
	assert.Equal(t, 1, tab.Len())
	assert.Equal(t, "X1", gw.MustGet("InternetGatewayDevice.ManagementServer.ManageableDevice.2.SerialNumber"))
}

// TestServerNaks: a request for an address held by another client, or
// outside the subnet, is refused.
func TestServerNaks(t *testing.T) {
	srv, _ := testServer(t, gatewayTree(t), time.Hour, "")
	ack := exchange(t, srv, net.HardwareAddr{2, 0, 0, 0, 3, 1}, nil)
	for name, ip := range map[string]net.IP{"taken": ack.YourIPAddr, "other subnet": net.IPv4(10, 0, 0, 5)} {
		m, err := dhcpv4.New(dhcpv4.WithHwAddr(net.HardwareAddr{2, 0, 0, 0, 3, 2}), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip)))
		require.NoError(t, err)
		r, dest := srv.Handle(m)
		require.NotNil(t, r, name)
		assert.Equal(t, dhcpv4.MessageTypeNak, r.MessageType(), name)
		assert.Equal(t, "255.255.255.255:68", dest.String())
	}
	// INIT-REBOOT for its own address: ACK.
	m, err := dhcpv4.New(dhcpv4.WithHwAddr(net.HardwareAddr{2, 0, 0, 0, 3, 1}), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ack.YourIPAddr)))
	require.NoError(t, err)
	r, _ := srv.Handle(m)
	require.NotNil(t, r)
	assert.Equal(t, dhcpv4.MessageTypeAck, r.MessageType())
}

// TestPersistenceAcrossRestart: the table and the server's leases come
// back after a restart while the leases are valid; expired ones do not.
func TestPersistenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	srv, tab := testServer(t, gatewayTree(t), time.Hour, dir)
	ack := exchange(t, srv, net.HardwareAddr{2, 0, 0, 0, 4, 1}, &devIdentity)
	require.NoError(t, tab.Bound(Lease{Key: "02:00:00:00:04:09", IP: "192.168.60.9", Identity: tr111.Identity{ManufacturerOUI: "00AABB", SerialNumber: "OLD"},
		Expires: time.Now().Add(-time.Minute), Source: "dnsmasq"}))
	require.NoError(t, tab.Flush())
	require.NoError(t, srv.Flush())

	gw2 := gatewayTree(t)
	srv2, tab2 := testServer(t, gw2, time.Hour, dir)
	require.NoError(t, tab2.Load())
	assert.Equal(t, 1, tab2.Len(), "the valid lease comes back, the expired one does not")
	assert.Equal(t, devIdentity.SerialNumber, gw2.MustGet("InternetGatewayDevice.ManagementServer.ManageableDevice.1.SerialNumber"))
	ls := srv2.Leases()
	require.Len(t, ls, 1)
	assert.Equal(t, ack.YourIPAddr.String(), ls[0].IP)
	// The same client gets the same address.
	again := exchange(t, srv2, net.HardwareAddr{2, 0, 0, 0, 4, 1}, &devIdentity)
	assert.Equal(t, ack.YourIPAddr.String(), again.YourIPAddr.String())
}

type fakePresence struct{ present atomic.Bool }

func (f *fakePresence) Check(ls []Lease) []bool {
	out := make([]bool, len(ls))
	for i := range out {
		out[i] = f.present.Load()
	}
	return out
}

// TestPresenceCheck: two failed checks in a row remove the entry; one does
// not.
func TestPresenceCheck(t *testing.T) {
	gw := gatewayTree(t)
	p := &fakePresence{}
	tab, err := NewTable(TableConfig{Store: gw, Root: "InternetGatewayDevice", Presence: p})
	require.NoError(t, err)
	require.NoError(t, tab.Bound(Lease{Key: "02:00:00:00:05:01", IP: "192.168.60.5", Identity: devIdentity}))
	tab.CheckPresence()
	p.present.Store(true)
	tab.CheckPresence()
	p.present.Store(false)
	tab.CheckPresence()
	assert.Equal(t, 1, tab.Len(), "one miss is not enough")
	tab.CheckPresence()
	assert.Equal(t, 0, tab.Len(), "two misses in a row remove the device")
}

func TestParseARP(t *testing.T) {
	arp := `IP address       HW type     Flags       HW address            Mask     Device
192.168.60.5     0x1         0x2         02:00:00:00:05:01     *        br-lan
192.168.60.6     0x1         0x0         00:00:00:00:00:00     *        br-lan
`
	n := &NeighbourPresence{ARPFile: writeTemp(t, arp), Poke: func(string) {}}
	got := n.Check([]Lease{{Key: "02:00:00:00:05:01", IP: "192.168.60.5"}, {Key: "02:00:00:00:05:02", IP: "192.168.60.6"},
		{Key: "02:00:00:00:05:03", IP: "192.168.60.7"}, {Key: "02:00:00:00:05:09", IP: "192.168.60.5"}})
	assert.Equal(t, []bool{true, false, false, false}, got, "complete with the lease's MAC; failed; absent; another host's MAC")
}

func writeTemp(t *testing.T, s string) string {
	t.Helper()
	p := t.TempDir() + "/arp"
	require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
	return p
}

// TestOfferWithoutAck: the OFFER's Gateway Identity is recorded (TR-111
// 1.2.2 names DHCPOFFER), but when no ACK follows there is no lease, and
// GatewayInfo is emptied again.
func TestOfferWithoutAck(t *testing.T) { synctest.Test(t, testOfferWithoutAck) }

func testOfferWithoutAck(t *testing.T) {
	gw, dev := gatewayTree(t), deviceTree(t)
	srv, _ := testServer(t, gw, time.Hour, "")
	tp := &memTransport{srv: srv, hw: net.HardwareAddr{2, 0, 0, 0, 6, 1}}
	tp.dropRequests.Store(true)
	var offered atomic.Bool
	dev.Watch(func(e datamodel.Event) {
		if e.Path == "Device.GatewayInfo.SerialNumber" && e.Value == gwIdentity.SerialNumber {
			offered.Store(true)
		}
	})
	c, _ := startClient(t, ClientConfig{Interface: "eth0", Identity: func() tr111.Identity { return devIdentity },
		Store: dev, Root: "Device", Transport: tp, Link: &fakeLink{}, Timeout: 50 * time.Millisecond})
	require.Eventually(t, offered.Load, 5*time.Second, 10*time.Millisecond, "the OFFER's identity is recorded")
	// The gateway vanishes after its offer: the REQUESTs go unanswered.
	tp.down.Store(true)
	require.Eventually(t, func() bool { return gatewayInfo(dev) == tr111.Identity{} }, 5*time.Second, 10*time.Millisecond,
		"no ACK, no association")
	assert.Equal(t, "init", c.State().State, "back to DISCOVER")
}
