package netconf

import (
	"net"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/netlab"
)

// TestAddressAndRoute configures an address and a default route on a veth
// inside a namespace the test creates, and reads them back with ip(8).
func TestAddressAndRoute(t *testing.T) {
	p := netlab.NewPair(t, netlab.PairOptions{GWAddr: "192.168.91.1/24"})
	ip, mask := net.ParseIP("192.168.91.50"), net.CIDRMask(24, 32)
	gw := net.ParseIP("192.168.91.1")
	require.NoError(t, netlab.In(p.Dev, func() error { return AddAddress(p.DevIf, ip, mask) }))
	require.NoError(t, netlab.In(p.Dev, func() error { return ReplaceDefaultRoute(p.DevIf, gw) }))
	// Again: replacing is not an error.
	require.NoError(t, netlab.In(p.Dev, func() error { return AddAddress(p.DevIf, ip, mask) }))

	out, err := netlab.Command(p.Dev, "ip", "-4", "addr", "show", "dev", p.DevIf).CombinedOutput()
	require.NoError(t, err)
	assert.Contains(t, string(out), "inet 192.168.91.50/24 brd 192.168.91.255")
	out, err = netlab.Command(p.Dev, "ip", "-4", "route", "show", "default").CombinedOutput()
	require.NoError(t, err)
	assert.Contains(t, string(out), "default via 192.168.91.1 dev "+p.DevIf+" proto dhcp")
	// The gateway answers a ping over the configured address.
	if _, err := exec.LookPath("busybox"); err == nil {
		out, err = netlab.Command(p.Dev, "busybox", "ping", "-c", "1", "-W", "2", "192.168.91.1").CombinedOutput()
		assert.NoError(t, err, "ping through the configured address: %s", out)
	}

	require.NoError(t, netlab.In(p.Dev, func() error { return DelDefaultRoute(p.DevIf, gw) }))
	require.NoError(t, netlab.In(p.Dev, func() error { return DelAddress(p.DevIf, ip, mask) }))
	require.NoError(t, netlab.In(p.Dev, func() error { return DelAddress(p.DevIf, ip, mask) }), "removing twice is not an error")
	out, _ = netlab.Command(p.Dev, "ip", "-4", "addr", "show", "dev", p.DevIf).CombinedOutput()
	assert.NotContains(t, string(out), "192.168.91.50")
	assert.Error(t, AddAddress("no-such-if0", ip, mask))
}
