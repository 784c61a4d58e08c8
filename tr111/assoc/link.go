package assoc

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"

	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
	"github.com/cwmp-agent/cwmp-agent/internal/linux/netconf"
	"github.com/cwmp-agent/cwmp-agent/internal/linux/sysinfo"
)

// linkTransport sends DHCP messages on a real interface: from a raw socket
// (nclient4's; it needs CAP_NET_RAW) while the interface has no address,
// and from a UDP socket bound to the leased address and to the interface
// once it has one (renewal, rebinding, release, inform).
type linkTransport struct {
	ifname string
	hw     net.HardwareAddr
}

func newLinkTransport(ifname string) (*linkTransport, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("assoc: interface %q: %w", ifname, err)
	}
	if len(ifc.HardwareAddr) == 0 {
		return nil, fmt.Errorf("assoc: interface %s has no hardware address", ifname)
	}
	return &linkTransport{ifname: ifname, hw: ifc.HardwareAddr}, nil
}

func (t *linkTransport) HardwareAddr() net.HardwareAddr { return t.hw }

func (t *linkTransport) conn(from net.IP) (net.PacketConn, error) {
	if from == nil {
		c, err := nclient4.NewRawUDPConn(t.ifname, dhcpv4.ClientPort)
		if err != nil {
			return nil, fmt.Errorf("assoc: raw socket on %s (needs CAP_NET_RAW): %w", t.ifname, err)
		}
		return c, nil
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.BindToDevice(int(fd), t.ifname) })
		if err != nil {
			return err
		}
		return serr
	}}
	return lc.ListenPacket(context.Background(), "udp4", net.JoinHostPort(from.String(), "68"))
}

func (t *linkTransport) Exchange(ctx context.Context, m *dhcpv4.DHCPv4, from net.IP, to *net.UDPAddr, match func(*dhcpv4.DHCPv4) bool, timeout time.Duration) (*dhcpv4.DHCPv4, error) {
	conn, err := t.conn(from)
	if err != nil {
		return nil, err
	}
	cl, err := nclient4.NewWithConn(conn, t.hw, nclient4.WithTimeout(timeout), nclient4.WithRetry(1))
	if err != nil {
		conn.Close()
		return nil, err
	}
	defer cl.Close()
	return cl.SendAndRead(ctx, to, m, match)
}

func (t *linkTransport) Send(m *dhcpv4.DHCPv4, from net.IP, to *net.UDPAddr) error {
	conn, err := t.conn(from)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.WriteTo(m.ToBytes(), to)
	return err
}

// netLink configures the interface over rtnetlink.
type netLink struct {
	ifname     string
	resolvConf string
}

func (n *netLink) Apply(l *ClientLease) error {
	if err := netconf.AddAddress(n.ifname, l.IP(), l.Mask()); err != nil {
		return err
	}
	if r := l.Router(); r != nil {
		if err := netconf.ReplaceDefaultRoute(n.ifname, r); err != nil {
			return fmt.Errorf("default route via %v: %w", r, err)
		}
	}
	if n.resolvConf != "" && len(l.DNS()) > 0 {
		var b strings.Builder
		b.WriteString("# written by cwmp-agent from its DHCP lease\n")
		for _, d := range l.DNS() {
			fmt.Fprintf(&b, "nameserver %s\n", d)
		}
		if err := atomicfile.Write(n.resolvConf, []byte(b.String()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (n *netLink) Remove(l *ClientLease) error {
	if r := l.Router(); r != nil {
		netconf.DelDefaultRoute(n.ifname, r)
	}
	return netconf.DelAddress(n.ifname, l.IP(), l.Mask())
}

func (n *netLink) Address() net.IP {
	ip, _, err := interfaceIPv4(n.ifname)
	if err != nil {
		return nil
	}
	return ip
}

// Gateway is the interface's default gateway (/proc/net/route).
func (n *netLink) Gateway() net.IP {
	gw, err := (sysinfo.Host{}).DefaultGateway(n.ifname)
	if err != nil {
		return nil
	}
	return gw
}
