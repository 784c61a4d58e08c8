package assoc

import (
	"net"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// BenchmarkGatewayExchange: one whole DHCP exchange at the gateway for a
// device with a Device Identity: DISCOVER and REQUEST decoded from the
// wire, OFFER and ACK built and encoded, the ManageableDevice table
// updated in the parameter tree; then the RELEASE, which removes the entry
// (so 10,000 distinct devices can cycle through a /16 pool). The target is
// 1,000 exchanges per second; exchanges/s is the figure.
func BenchmarkGatewayExchange(b *testing.B) {
	gw := gatewayTree(b)
	tab, err := NewTable(TableConfig{Store: gw, Root: "InternetGatewayDevice"})
	if err != nil {
		b.Fatal(err)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	srv, err := NewServer(ServerConfig{Interface: "lan0", ServerIP: net.IPv4(10, 1, 0, 1), Mask: net.CIDRMask(16, 32),
		PoolStart: net.IPv4(10, 1, 0, 10), PoolEnd: net.IPv4(10, 1, 255, 250), LeaseTime: time.Hour,
		Identity: func() tr111.Identity { return gwIdentity }, Table: tab, Conn: pc})
	if err != nil {
		b.Fatal(err)
	}
	const devices = 10000
	ids := make([]tr111.VIVendorOptions, devices)
	hws := make([]net.HardwareAddr, devices)
	for i := range ids {
		hws[i] = net.HardwareAddr{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}
		ids[i] = tr111.Identity{ManufacturerOUI: "00D09E", SerialNumber: "SN" + hws[i].String(), ProductClass: "STB"}.DeviceOption()
	}
	decode := func(m *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
		d, err := dhcpv4.FromBytes(m.ToBytes())
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		k := i % devices
		disc, _ := dhcpv4.NewDiscovery(hws[k], dhcpv4.WithOption(ids[k].Option()))
		offer, _ := srv.Handle(decode(disc))
		if offer == nil {
			b.Fatal("no offer")
		}
		req, _ := dhcpv4.NewRequestFromOffer(decode(offer), dhcpv4.WithOption(ids[k].Option()))
		ack, _ := srv.Handle(decode(req))
		if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
			b.Fatal("no ack")
		}
		ack = decode(ack)
		if tab.Len() != 1 {
			b.Fatalf("table has %d entries, want 1", tab.Len())
		}
		rel, _ := dhcpv4.NewReleaseFromACK(ack)
		srv.Handle(decode(rel))
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "exchanges/s")
	if n := gw.MustGet("InternetGatewayDevice.ManagementServer.ManageableDeviceNumberOfEntries"); n != "0" {
		b.Fatalf("ManageableDeviceNumberOfEntries = %s after every release", n)
	}
}
