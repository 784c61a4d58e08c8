package cpe

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
)

// hostsTable is the LAN hosts table of the model served ("" for none).
func (c *CPE) hostsTable() string {
	switch {
	case c.Tree.Schema().Object("InternetGatewayDevice.LANDevice.{i}.Hosts.Host.{i}.") != nil:
		return "InternetGatewayDevice.LANDevice.1.Hosts.Host."
	case c.Tree.Schema().Object("Device.Hosts.Host.{i}.") != nil:
		return "Device.Hosts.Host."
	}
	return ""
}

// hostsInterval is how often the LAN hosts are read again.
const hostsInterval = 30 * time.Second

// runHosts keeps the gateway's Hosts table equal to the kernel's neighbour
// table on the LAN side: every resolved neighbour that is not on the
// interface reaching the ACS.
func (c *CPE) runHosts(ctx context.Context) error {
	for {
		c.SyncHosts()
		c.syncIPv6()
		c.syncDHCPv4Clients()
		c.syncManageableHosts()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(hostsInterval):
		}
	}
}

// SyncHosts reads the neighbour table once and updates
// InternetGatewayDevice.LANDevice.1.Hosts.Host.{i}. Only what the gateway
// knows is written: the address and hardware address, the interface type
// (802.11 for a wireless interface), the address source (DHCP with the
// lease's remaining time when one of its leases gave it, AutoIP for
// 169.254/16, Static otherwise); HostName stays empty, the gateway does
// not know it.
func (c *CPE) SyncHosts() {
	hostsTable := c.hostsTable()
	if hostsTable == "" {
		return
	}
	device2 := c.isDevice2()
	ns, err := c.cfg.Host.Neighbours()
	if err != nil {
		return
	}
	wan := ""
	if c.net != nil {
		c.net.get()
		c.net.mu.Lock()
		wan = c.net.name
		c.net.mu.Unlock()
	}
	leases := map[string]time.Time{} // MAC -> lease end
	if c.DHCPServer != nil {
		for _, l := range c.DHCPServer.Leases() {
			leases[strings.ToLower(l.Key)] = l.Expires
		}
	}
	if c.Table != nil {
		for _, l := range c.Table.Leases() {
			if _, ok := leases[l.Key]; !ok && !l.Expires.IsZero() {
				leases[strings.ToLower(l.Key)] = l.Expires
			}
		}
	}
	if c.hosts == nil {
		c.hosts = map[string]uint32{}
	}
	dev := datamodel.SetOptions{Origin: datamodel.OriginDevice}
	seen := map[string]bool{}
	for _, n := range ns {
		if n.Device == wan || n.Device == "lo" {
			continue
		}
		seen[n.MAC] = true
		var vals map[string]string
		if device2 {
			// TR-181: PhysAddress; InterfaceType names Wi-Fi so.
			vals = map[string]string{"IPAddress": n.IP, "PhysAddress": n.MAC, "Active": "true", "InterfaceType": "Ethernet"}
			if n.Wireless {
				vals["InterfaceType"] = "Wi-Fi"
			}
		} else {
			vals = map[string]string{"IPAddress": n.IP, "MACAddress": n.MAC, "Active": "true", "InterfaceType": "Ethernet",
				"AddressSource": "Static", "LeaseTimeRemaining": "0"}
			if n.Wireless {
				vals["InterfaceType"] = "802.11"
			}
			if end, ok := leases[n.MAC]; ok {
				vals["AddressSource"] = "DHCP"
				vals["LeaseTimeRemaining"] = strconv.Itoa(max(0, int(time.Until(end).Seconds())))
			} else if ip := net.ParseIP(n.IP); ip != nil && ip.IsLinkLocalUnicast() {
				vals["AddressSource"] = "AutoIP"
			}
		}
		inst, ok := c.hosts[n.MAC]
		if ok {
			// A factory reset empties the table behind our back.
			if _, err := c.Tree.Get(hostsTable + strconv.FormatUint(uint64(inst), 10) + ".Active"); err != nil {
				delete(c.hosts, n.MAC)
				ok = false
			}
		}
		if !ok {
			in, err := c.Tree.AddInstance(hostsTable, vals, dev)
			if err != nil {
				c.cfg.Logger.Warn("Hosts table", "err", err)
				continue
			}
			c.hosts[n.MAC] = in
			continue
		}
		base := hostsTable + strconv.FormatUint(uint64(inst), 10) + "."
		var ch []datamodel.Change
		for k, v := range vals {
			if cur, _ := c.Tree.Get(base + k); cur != v {
				ch = append(ch, datamodel.Change{Path: base + k, Value: v})
			}
		}
		if len(ch) > 0 {
			c.Tree.SetValues(ch, dev)
		}
	}
	for mac, inst := range c.hosts {
		if !seen[mac] {
			c.Tree.DeleteObject(hostsTable+strconv.FormatUint(uint64(inst), 10)+".", dev)
			delete(c.hosts, mac)
		}
	}
}
