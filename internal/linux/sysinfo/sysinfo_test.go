package sysinfo

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFakeRoot(t *testing.T) {
	h := Host{Root: "testdata/root"}
	up, err := h.Uptime()
	require.NoError(t, err)
	assert.Equal(t, uint64(12345), up)
	gw, err := h.DefaultGateway("eth0")
	require.NoError(t, err)
	assert.Equal(t, "192.168.2.1", gw.String())
	_, err = h.DefaultGateway("wlan0")
	assert.Error(t, err)
	dns, err := h.DNSServers()
	require.NoError(t, err)
	assert.Equal(t, []string{"192.0.2.53", "2001:db8::53"}, dns)
	n, err := h.Counter("eth0", "rx_bytes")
	require.NoError(t, err)
	assert.Equal(t, uint64(1000), n)
	_, err = h.Counter("../../etc", "passwd")
	assert.Error(t, err)
	assert.Equal(t, "3.1", h.OSRelease("VERSION_ID"))
	assert.Equal(t, "", h.OSRelease("NOPE"))
}

func TestLoopbackSource(t *testing.T) {
	ip, err := SourceIP("http://127.0.0.1:7547/acs")
	require.NoError(t, err)
	assert.True(t, ip.Equal(net.IPv4(127, 0, 0, 1)))
	ifc, err := InterfaceFor(ip)
	require.NoError(t, err)
	assert.NotEmpty(t, ifc.Name)
	_, err = SourceIP("not a url")
	assert.Error(t, err)
}

func TestNeighbours(t *testing.T) {
	ns, err := Host{Root: "testdata/root"}.Neighbours()
	require.NoError(t, err)
	assert.Equal(t, []Neighbour{
		{IP: "192.168.1.20", MAC: "02:00:00:aa:bb:01", Device: "br-lan"},
		{IP: "192.168.1.30", MAC: "02:00:00:aa:bb:02", Device: "wlan0", Wireless: true},
		{IP: "203.0.113.1", MAC: "02:00:00:ff:ff:01", Device: "eth0"},
	}, ns, "complete entries only")
}
