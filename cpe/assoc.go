package cpe

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/cwmp-agent/cwmp-agent/tr111"
	"github.com/cwmp-agent/cwmp-agent/tr111/assoc"
)

// identity reads the device's own identity from DeviceInfo: the Device
// Identity of a device, the Gateway Identity of a gateway (TR-111 1.2.5,
// Table 1).
func (c *CPE) identity() tr111.Identity {
	di := c.cfg.Root + ".DeviceInfo."
	return tr111.Identity{ManufacturerOUI: c.Tree.MustGet(di + "ManufacturerOUI"),
		SerialNumber: c.Tree.MustGet(di + "SerialNumber"), ProductClass: c.Tree.MustGet(di + "ProductClass")}
}

// buildAssociation assembles TR-111 Part 1 for the model in use: the
// gateway side where the model has the ManageableDevice table
// (InternetGatewayDevice, Device:2), the device side where it has
// GatewayInfo (Device:1.1, Device:2). A Device:2 CPE can be both.
func (c *CPE) buildAssociation() error {
	d := c.cfg.DHCP
	log := c.cfg.Logger
	s := c.Tree.Schema()
	gateway := s.Object(c.cfg.Root+".ManagementServer.ManageableDevice.{i}.") != nil
	device := s.Object(c.cfg.Root+".GatewayInfo.") != nil
	if d.ClientMode != "" && !device {
		return fmt.Errorf("dhcp client: %s has no GatewayInfo", s.Model)
	}
	if d.ServerInterface != "" && !gateway {
		return fmt.Errorf("dhcp server: %s has no ManageableDevice table", s.Model)
	}
	if gateway {
		tc := assoc.TableConfig{Store: c.Tree, Root: c.cfg.Root, StateDir: c.cfg.StateDir, Logger: log}
		if d.PresenceInterval > 0 {
			tc.Presence, tc.PresenceInterval = &assoc.NeighbourPresence{}, d.PresenceInterval
		}
		t, err := assoc.NewTable(tc)
		if err != nil {
			return err
		}
		if err := t.Load(); err != nil {
			return err
		}
		c.Table = t
		if d.ServerInterface != "" {
			s, err := assoc.NewServer(assoc.ServerConfig{Interface: d.ServerInterface, PoolStart: d.PoolStart, PoolEnd: d.PoolEnd,
				LeaseTime: d.LeaseTime, Router: d.Router, DNS: d.DNS, Identity: c.identity, Table: t, StateDir: c.cfg.StateDir, Logger: log})
			if err != nil {
				return err
			}
			c.DHCPServer = s
		}
	}
	if device && d.ClientMode != "" {
		cl, err := assoc.NewClient(assoc.ClientConfig{Interface: d.ClientInterface, Inform: d.ClientMode == "inform",
			Identity: c.identity, Store: c.Tree, Root: c.cfg.Root, InformServer: d.InformServer, InformInterval: d.InformInterval,
			ReleaseOnExit: d.ReleaseOnExit, ResolvConf: d.ResolvConf, StateDir: c.cfg.StateDir,
			Transport: d.ClientTransport, Link: d.ClientLink, Logger: log})
		if err != nil {
			return err
		}
		cl.Restore()
		c.DHCPClient = cl
	}
	return nil
}

// registerAssociation adds the control actions of TR-111 Part 1.
func (c *CPE) registerAssociation() {
	if c.Table != nil {
		// "dhcp.lease": dnsmasq's dhcp-script (cwmp-agent dnsmasq-script)
		// reports a lease; args action (add, old, del), mac, ip, oui,
		// serial, class, expires (Unix seconds, 0 or empty: none).
		c.Control.Register("dhcp.lease", c.leaseEvent)
		// "dhcp.leases": the leases behind the ManageableDevice table, one
		// result per hardware address.
		c.Control.Register("dhcp.leases", func(map[string]string) (map[string]string, error) {
			out := map[string]string{"entries": strconv.Itoa(c.Table.Len())}
			ls := c.Table.Leases()
			sort.Slice(ls, func(i, j int) bool { return ls[i].Key < ls[j].Key })
			for _, l := range ls {
				exp := "none"
				if !l.Expires.IsZero() {
					exp = l.Expires.UTC().Format(time.RFC3339)
				}
				out[l.Key] = fmt.Sprintf("ip=%s oui=%s serial=%s class=%s expires=%s source=%s", l.IP, l.Identity.ManufacturerOUI,
					l.Identity.SerialNumber, l.Identity.ProductClass, exp, l.Source)
			}
			if c.DHCPServer != nil {
				st := &c.DHCPServer.Stats
				out["server.offers"] = strconv.FormatInt(st.Offers.Load(), 10)
				out["server.acks"] = strconv.FormatInt(st.Acks.Load(), 10)
				out["server.naks"] = strconv.FormatInt(st.Naks.Load(), 10)
				out["server.informs"] = strconv.FormatInt(st.Informs.Load(), 10)
				out["server.releases"] = strconv.FormatInt(st.Releases.Load(), 10)
				out["server.bad_option125"] = strconv.FormatInt(st.BadOption125.Load(), 10)
				out["server.leases"] = strconv.Itoa(len(c.DHCPServer.Leases()))
			}
			return out, nil
		})
	}
	if c.DHCPClient != nil {
		// "dhcp.state": the built-in client's state.
		c.Control.Register("dhcp.state", func(map[string]string) (map[string]string, error) {
			st := c.DHCPClient.State()
			out := map[string]string{"state": st.State, "ip": st.IP, "server": st.Server,
				"gateway_identity": strconv.FormatBool(st.HasGW)}
			if !st.Expires.IsZero() {
				out["expires"] = st.Expires.UTC().Format(time.RFC3339)
			}
			return out, nil
		})
	}
}

// leaseEvent applies a lease event of dnsmasq's dhcp-script (the control
// action "dhcp.lease").
func (c *CPE) leaseEvent(a map[string]string) (map[string]string, error) {
	switch a["action"] {
	case "del":
		c.Table.Released(a["mac"])
		return map[string]string{"entries": strconv.Itoa(c.Table.Len())}, nil
	case "add", "old":
	default:
		return nil, fmt.Errorf("dhcp.lease: action %q: want add, old or del", a["action"])
	}
	if a["oui"] == "" && a["serial"] == "" {
		// No Device Identity: not a manageable device (TR-111 1.2.1).
		return map[string]string{"entries": strconv.Itoa(c.Table.Len())}, nil
	}
	l := assoc.Lease{Key: a["mac"], IP: a["ip"], Source: "dnsmasq",
		Identity: tr111.Identity{ManufacturerOUI: a["oui"], SerialNumber: a["serial"], ProductClass: a["class"]}}
	if e := a["expires"]; e != "" && e != "0" {
		v, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("dhcp.lease: expires %q: %w", e, err)
		}
		l.Expires = time.Unix(v, 0)
	}
	if err := c.Table.Bound(l); err != nil {
		return nil, err
	}
	return map[string]string{"entries": strconv.Itoa(c.Table.Len())}, nil
}
