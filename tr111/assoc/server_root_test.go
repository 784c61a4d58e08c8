package assoc

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/netlab"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// TestSecondServerRefused: a second DHCP server on one interface is
// refused, whether it is ours in the same process or another program's
// socket on port 67 (server4's own socket would have shared the port).
func TestSecondServerRefused(t *testing.T) {
	p := netlab.NewPair(t, netlab.PairOptions{GWAddr: "192.168.92.1/24"})
	cfg := ServerConfig{Interface: p.GWIf, PoolStart: net.IPv4(192, 168, 92, 100), PoolEnd: net.IPv4(192, 168, 92, 110),
		Identity: func() tr111.Identity { return gwIdentity }}
	var first *Server
	require.NoError(t, netlab.In(p.GW, func() (err error) { first, err = NewServer(cfg); return err }))
	err := netlab.In(p.GW, func() error { _, err := NewServer(cfg); return err })
	assert.ErrorContains(t, err, "already serves")
	first.Close()

	// Another program holds port 67 of the namespace (as dnsmasq would).
	var other net.PacketConn
	require.NoError(t, netlab.In(p.GW, func() (err error) { other, err = net.ListenPacket("udp4", ":67"); return err }))
	defer other.Close()
	err = netlab.In(p.GW, func() error { _, err := NewServer(cfg); return err })
	assert.ErrorContains(t, err, "another DHCP server already listens on port 67")
}
