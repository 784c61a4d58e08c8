package cpe

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/linux/sysinfo"
)

// bind gives computed parameters their getters: uptime and log from the
// agent itself, the current time, and, with a Host, the values of the
// interface this host uses to reach the ACS.
func (c *CPE) bind() {
	t, root := c.Tree, c.cfg.Root
	uptime := func(string) (string, error) {
		if c.Agent == nil { // read while the CPE is being built
			return "0", nil
		}
		return strconv.FormatInt(int64(time.Since(c.Agent.BootTime())/time.Second), 10), nil
	}
	// A real device reports the system's uptime (/proc/uptime); a virtual
	// one, or a real one that has rebooted virtually (no reboot hook), the
	// time since its own boot: the ACS saw a 1 BOOT and an uptime that
	// did not restart would read as a reboot that never happened.
	devUptime := uptime
	if c.cfg.Host != nil {
		h := *c.cfg.Host
		devUptime = func(p string) (string, error) {
			if c.Agent != nil && c.Agent.VirtuallyRebooted() {
				return uptime(p)
			}
			if up, err := h.Uptime(); err == nil {
				return strconv.FormatUint(up, 10), nil
			}
			return uptime(p)
		}
	}
	t.Bind(root+".DeviceInfo.UpTime", devUptime)
	t.Bind(root+".DeviceInfo.DeviceLog", func(string) (string, error) { // Device:1 and IGD only
		if c.cfg.Log == nil {
			return "", nil
		}
		s := c.cfg.Log.String()
		if len(s) > 32768 {
			s = s[len(s)-32768:]
		}
		return strings.ToValidUTF8(s, ""), nil
	})
	t.Bind(root+".Time.CurrentLocalTime", func(string) (string, error) {
		return time.Now().UTC().Format("2006-01-02T15:04:05Z"), nil
	})
	if c.cfg.Host == nil {
		return
	}
	// The ACS URL, kept beside the tree: getters run under the tree's
	// read lock, and one that read the tree again would wait behind any
	// writer queued meanwhile, which waits for it (sync.RWMutex: no
	// recursive read locking).
	urlPath := root + ".ManagementServer.URL"
	var acsURL atomic.Pointer[string]
	loadURL := func() { u := t.MustGet(urlPath); acsURL.Store(&u) }
	loadURL()
	t.OnCommit(func(evs []datamodel.Event) {
		for _, e := range evs {
			if e.Path == urlPath || e.Kind == datamodel.Reset {
				loadURL()
				return
			}
		}
	})
	n := &netInfo{host: *c.cfg.Host, url: func() string { return *acsURL.Load() }}
	c.net = n
	counter := func(name string) func(string) (string, error) {
		return func(string) (string, error) { return n.counter(name), nil }
	}
	switch {
	case c.isDevice2():
		c.bindDevice2(n)
	case root == "Device":
		lan := "Device.LAN."
		t.Bind(lan+"IPAddress", func(string) (string, error) { return n.get().ip, nil })
		t.Bind(lan+"SubnetMask", func(string) (string, error) { return n.get().mask, nil })
		t.Bind(lan+"MACAddress", func(string) (string, error) { return n.get().mac, nil })
		t.Bind(lan+"DefaultGateway", func(string) (string, error) { return n.get().gw, nil })
		t.Bind(lan+"DNSServers", func(string) (string, error) { return n.get().dns, nil })
		t.Bind(lan+"Stats.ConnectionUpTime", uptime)
		t.Bind(lan+"Stats.TotalBytesSent", counter("tx_bytes"))
		t.Bind(lan+"Stats.TotalBytesReceived", counter("rx_bytes"))
		t.Bind(lan+"Stats.TotalPacketsSent", counter("tx_packets"))
		t.Bind(lan+"Stats.TotalPacketsReceived", counter("rx_packets"))
	case root == "InternetGatewayDevice":
		// The WAN side of a virtual gateway is the interface that reaches
		// the ACS; only the first connection is bound to it.
		first := func(f func() string) func(string) (string, error) {
			return func(path string) (string, error) {
				if !strings.Contains(path, "WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.") {
					return "", nil
				}
				return f(), nil
			}
		}
		wan := "InternetGatewayDevice.WANDevice.{i}.WANConnectionDevice.{i}.WANIPConnection.{i}."
		t.Bind(wan+"ExternalIPAddress", first(func() string { return n.get().ip }))
		t.Bind(wan+"SubnetMask", first(func() string { return n.get().mask }))
		t.Bind(wan+"DefaultGateway", first(func() string { return n.get().gw }))
		t.Bind(wan+"DNSServers", first(func() string { return n.get().dns }))
		t.Bind(wan+"MACAddress", first(func() string { return n.get().mac }))
		t.Bind(wan+"Uptime", first(func() string { s, _ := uptime(""); return s }))
		for p, c := range map[string]string{"Stats.EthernetBytesSent": "tx_bytes", "Stats.EthernetBytesReceived": "rx_bytes",
			"Stats.EthernetPacketsSent": "tx_packets", "Stats.EthernetPacketsReceived": "rx_packets"} {
			c := c
			t.Bind(wan+p, first(func() string { return n.counter(c) }))
		}
		common := "InternetGatewayDevice.WANDevice.{i}.WANCommonInterfaceConfig."
		for p, c := range map[string]string{"TotalBytesSent": "tx_bytes", "TotalBytesReceived": "rx_bytes",
			"TotalPacketsSent": "tx_packets", "TotalPacketsReceived": "rx_packets"} {
			t.Bind(common+p, counter(c))
		}
	}
}

// netInfo caches the ACS-facing interface for a few seconds.
type netInfo struct {
	host sysinfo.Host
	url  func() string

	mu   sync.Mutex
	at   time.Time
	cur  netValues
	name string
}

type netValues struct{ ip, mask, mac, gw, dns string }

func (n *netInfo) get() netValues {
	n.mu.Lock()
	defer n.mu.Unlock()
	if time.Since(n.at) < 5*time.Second {
		return n.cur
	}
	n.at = time.Now()
	var v netValues
	if ip, err := sysinfo.SourceIP(n.url()); err == nil {
		v.ip = ip.String()
		if ifc, err := sysinfo.InterfaceFor(ip); err == nil {
			n.name = ifc.Name
			if len(ifc.Mask) == net.IPv4len || ip.To4() != nil && len(ifc.Mask) == net.IPv6len {
				v.mask = net.IP(ifc.Mask[len(ifc.Mask)-4:]).String()
			}
			v.mac = ifc.MAC
			if gw, err := n.host.DefaultGateway(ifc.Name); err == nil {
				v.gw = gw.String()
			}
		}
	}
	if dns, err := n.host.DNSServers(); err == nil {
		var v4 []string
		for _, d := range dns {
			if net.ParseIP(d).To4() != nil {
				v4 = append(v4, d)
			}
		}
		v.dns = strings.Join(v4, ",")
	}
	n.cur = v
	return v
}

func (n *netInfo) counter(name string) string {
	n.get()
	n.mu.Lock()
	ifname := n.name
	n.mu.Unlock()
	v, err := n.host.Counter(ifname, name)
	if err != nil {
		return "0"
	}
	// The data model's counters are 32-bit and wrap.
	return strconv.FormatUint(v&0xFFFFFFFF, 10)
}

// configDump is the "1 Vendor Configuration File" an Upload sends: every
// parameter value as JSON lines (the format of cwmp-agent dump), passwords
// excluded as they read back empty.
func (c *CPE) configDump() ([]byte, error) {
	vs, err := c.Tree.GetValues([]string{""})
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	for _, v := range vs {
		enc.Encode(map[string]string{"name": v.Name, "type": v.Type.XSD(), "value": v.Value})
	}
	return []byte(b.String()), nil
}
