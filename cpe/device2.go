package cpe

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/linux/sysinfo"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// A real Device:2 (TR-181) CPE shows the interface that reaches the ACS as
// Device.IP.Interface.1 (with IPv4Address.1 and its IPv6 addresses) on top
// of Device.Ethernet.Interface.1; their status, addresses and counters are
// the system's, read when asked. Values the system does not have (the
// addressing type, link modes, bit rates) stay at their defaults.
const (
	ipIf    = "Device.IP.Interface.1."
	ethIf   = "Device.Ethernet.Interface.1."
	ipIfAny = "Device.IP.Interface.{i}."
	ethAny  = "Device.Ethernet.Interface.{i}."
)

// device2Factory are the instances a real Device:2 CPE has from the start.
func device2Factory() map[string]string {
	return map[string]string{
		ipIf + "Enable":                                 "true",
		ipIf + "IPv4Enable":                             "true",
		ipIf + "IPv6Enable":                             "true",
		ipIf + "LowerLayers":                            "Device.Ethernet.Interface.1",
		ipIf + "IPv4Address.1.Enable":                   "true",
		ethIf + "Enable":                                "true",
		ethIf + "Upstream":                              "true",
		"Device.DeviceInfo.VendorLogFile.1.Name":        "cwmp-agent log",
		"Device.DeviceInfo.VendorLogFile.1.MaximumSize": "32768",
		"Device.DeviceInfo.VendorLogFile.1.Persistent":  "false",
	}
}

// isDevice2 reports whether the model is TR-181 Device:2.
func (c *CPE) isDevice2() bool { return strings.HasPrefix(c.Tree.Schema().Model, "Device:2") }

// bindDevice2 binds the system's values to instance 1 of the interfaces.
func (c *CPE) bindDevice2(n *netInfo) {
	t := c.Tree
	// only makes a getter answer for the first instance of its table; the
	// ACS's own instances read as their defaults.
	only := func(prefix string, f func() string) datamodel.Getter {
		return func(path string) (string, error) {
			if !strings.HasPrefix(path, prefix) {
				p := t.Schema().Param(datamodel.SchemaPath(path))
				if p == nil {
					return "", nil
				}
				return p.Default, nil
			}
			return f(), nil
		}
	}
	status := func() string { return ifStatus(n.host, n.iface()) }
	for _, base := range []string{ipIfAny, ethAny} {
		prefix := ipIf
		if base == ethAny {
			prefix = ethIf
		}
		t.Bind(base+"Status", only(prefix, status))
		t.Bind(base+"Name", only(prefix, n.iface))
		for p, ctr := range map[string]string{"BytesSent": "tx_bytes", "BytesReceived": "rx_bytes", "PacketsSent": "tx_packets",
			"PacketsReceived": "rx_packets", "ErrorsSent": "tx_errors", "ErrorsReceived": "rx_errors",
			"DiscardPacketsSent": "tx_dropped", "DiscardPacketsReceived": "rx_dropped", "MulticastPacketsReceived": "multicast"} {
			ctr := ctr
			bits := 64
			if def := t.Schema().Param(base + "Stats." + p); def != nil && def.Type.Kind == datamodel.UnsignedInt {
				bits = 32
			}
			t.Bind(base+"Stats."+p, only(prefix, func() string { return n.counterBits(ctr, bits) }))
		}
	}
	t.Bind(ethAny+"MACAddress", only(ethIf, func() string { return n.get().mac }))
	v4 := ipIfAny + "IPv4Address.{i}."
	t.Bind(v4+"IPAddress", only(ipIf+"IPv4Address.1.", func() string { return n.get().ip }))
	t.Bind(v4+"SubnetMask", only(ipIf+"IPv4Address.1.", func() string { return n.get().mask }))
	t.Bind(v4+"Status", only(ipIf+"IPv4Address.1.", func() string {
		if n.get().ip != "" {
			return "Enabled"
		}
		return "Disabled"
	}))
}

// ifStatus maps the kernel's operstate to TR-181's interface Status.
func ifStatus(h sysinfo.Host, ifname string) string {
	switch h.OperState(ifname) {
	case "up":
		return "Up"
	case "down":
		return "Down"
	case "dormant":
		return "Dormant"
	case "notpresent":
		return "NotPresent"
	case "lowerlayerdown":
		return "LowerLayerDown"
	case "unknown":
		// Loopback and many virtual links say "unknown" while they carry
		// traffic; an interface that reaches the ACS is up.
		if ifname != "" {
			return "Up"
		}
	}
	return "Unknown"
}

// syncIPv6 keeps Device.IP.Interface.1.IPv6Address.{i}. equal to the
// interface's global and unique-local IPv6 addresses.
func (c *CPE) syncIPv6() {
	if c.net == nil || !c.isDevice2() {
		return
	}
	table := ipIf + "IPv6Address."
	want := map[string]bool{}
	for _, a := range sysinfo.IPv6Addresses(c.net.iface()) {
		want[a] = true
	}
	dev := datamodel.SetOptions{Origin: datamodel.OriginDevice}
	have := map[string]string{} // address -> instance path
	infos, err := c.Tree.GetNames(table, true)
	if err != nil {
		return
	}
	for _, in := range infos {
		addr, _ := c.Tree.Get(in.Name + "IPAddress")
		origin, _ := c.Tree.Get(in.Name + "Origin")
		if origin == "AutoConfigured" && !want[addr] {
			// Ours, and gone from the interface.
			c.Tree.DeleteObject(in.Name, dev)
			continue
		}
		have[addr] = in.Name
	}
	for a := range want {
		if _, ok := have[a]; ok {
			continue
		}
		// Origin AutoConfigured marks the entries the agent made; the
		// kernel does not say whether SLAAC, DHCPv6 or a person set it.
		if _, err := c.Tree.AddInstance(table, map[string]string{"Enable": "true", "Status": "Enabled",
			"IPAddressStatus": "Preferred", "IPAddress": a, "Origin": "AutoConfigured"}, dev); err != nil {
			c.cfg.Logger.Warn("IPv6 addresses", "err", err)
		}
	}
}

// syncDHCPv4Clients keeps Device.DHCPv4.Server.Pool.1.Client.{i}. equal
// to the built-in server's leases: the client's hardware address, and its
// address with the lease's end (TR-181's LeaseTimeRemaining is a dateTime).
func (c *CPE) syncDHCPv4Clients() {
	if c.DHCPServer == nil || !c.isDevice2() {
		return
	}
	pool := "Device.DHCPv4.Server.Pool.1."
	if _, err := c.Tree.Get(pool + "Enable"); err != nil {
		return
	}
	table := pool + "Client."
	dev := datamodel.SetOptions{Origin: datamodel.OriginDevice}
	type lease struct {
		ip  string
		end time.Time
	}
	want := map[string]lease{}
	for _, l := range c.DHCPServer.Leases() {
		want[strings.ToLower(l.Key)] = lease{ip: l.IP, end: l.Expires}
	}
	infos, err := c.Tree.GetNames(table, true)
	if err != nil {
		return
	}
	have := map[string]string{}
	for _, in := range infos {
		mac, _ := c.Tree.Get(in.Name + "Chaddr")
		if _, ok := want[strings.ToLower(mac)]; !ok {
			c.Tree.DeleteObject(in.Name, dev)
			continue
		}
		have[strings.ToLower(mac)] = in.Name
	}
	for mac, l := range want {
		end := datamodel.UnknownTime
		if !l.end.IsZero() {
			end = l.end.UTC().Format("2006-01-02T15:04:05Z")
		}
		path, ok := have[mac]
		if !ok {
			inst, err := c.Tree.AddInstance(table, map[string]string{"Chaddr": mac, "Active": "true"}, dev)
			if err != nil {
				c.cfg.Logger.Warn("DHCPv4 clients", "err", err)
				continue
			}
			path = table + strconv.FormatUint(uint64(inst), 10) + "."
		}
		addrs, _ := c.Tree.GetNames(path+"IPv4Address.", true)
		if len(addrs) == 0 {
			c.Tree.AddInstance(path+"IPv4Address.", map[string]string{"IPAddress": l.ip, "LeaseTimeRemaining": end}, dev)
			continue
		}
		a := addrs[0].Name
		var ch []datamodel.Change
		for k, v := range map[string]string{"IPAddress": l.ip, "LeaseTimeRemaining": end} {
			if cur, _ := c.Tree.Get(a + k); cur != v {
				ch = append(ch, datamodel.Change{Path: a + k, Value: v})
			}
		}
		if len(ch) > 0 {
			c.Tree.SetValues(ch, dev)
		}
	}
}

// dhcpv4PoolFactory describes the built-in server's pool as
// Device.DHCPv4.Server.Pool.1: what the configuration gave it.
func dhcpv4PoolFactory(d DHCPConfig) map[string]string {
	if d.ServerInterface == "" {
		return nil
	}
	p := "Device.DHCPv4.Server.Pool.1."
	f := map[string]string{p + "Enable": "true", "Device.DHCPv4.Server.Enable": "true"}
	if d.PoolStart != nil {
		f[p+"MinAddress"] = d.PoolStart.String()
	}
	if d.PoolEnd != nil {
		f[p+"MaxAddress"] = d.PoolEnd.String()
	}
	if d.LeaseTime > 0 {
		f[p+"LeaseTime"] = strconv.Itoa(int(d.LeaseTime / time.Second))
	}
	if d.Router != nil {
		f[p+"IPRouters"] = d.Router.String()
	}
	var dns []string
	for _, ip := range d.DNS {
		if ip.To4() != nil {
			dns = append(dns, ip.String())
		}
	}
	if len(dns) > 0 {
		f[p+"DNSServers"] = strings.Join(dns, ",")
	}
	return f
}

// iface is the name of the interface that reaches the ACS.
func (n *netInfo) iface() string {
	n.get()
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.name
}

// counterBits reads a counter, wrapped to the parameter's width.
func (n *netInfo) counterBits(name string, bits int) string {
	v, err := n.host.Counter(n.iface(), name)
	if err != nil {
		return "0"
	}
	if bits == 32 {
		v &= 0xFFFFFFFF
	}
	return strconv.FormatUint(v, 10)
}

// syncManageableHosts fills TR-181's ManageableDevice.{i}.Host: the
// Hosts.Host entries (by hardware address, from the leases behind the
// table) of each associated device.
func (c *CPE) syncManageableHosts() {
	if c.Table == nil || !c.isDevice2() || c.hosts == nil {
		return
	}
	macs := map[tr111.Identity][]string{}
	for _, l := range c.Table.Leases() {
		macs[l.Identity] = append(macs[l.Identity], strings.ToLower(l.Key))
	}
	table := "Device.ManagementServer.ManageableDevice."
	infos, err := c.Tree.GetNames(table, true)
	if err != nil {
		return
	}
	var ch []datamodel.Change
	for _, in := range infos {
		id := tr111.Identity{ManufacturerOUI: c.Tree.MustGet(in.Name + "ManufacturerOUI"),
			SerialNumber: c.Tree.MustGet(in.Name + "SerialNumber"), ProductClass: c.Tree.MustGet(in.Name + "ProductClass")}
		var refs []string
		for _, mac := range macs[id] {
			if inst, ok := c.hosts[mac]; ok {
				refs = append(refs, "Device.Hosts.Host."+strconv.FormatUint(uint64(inst), 10))
			}
		}
		sort.Strings(refs)
		v := strings.Join(refs, ",")
		if cur, err := c.Tree.Get(in.Name + "Host"); err == nil && cur != v {
			ch = append(ch, datamodel.Change{Path: in.Name + "Host", Value: v})
		}
	}
	if len(ch) > 0 {
		c.Tree.SetValues(ch, datamodel.SetOptions{Origin: datamodel.OriginDevice})
	}
}
