package cpe

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cpe/control"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
)

// TestSpooledLeaseEventsAppliedAtStart: events dnsmasq reported while the
// agent was down are applied when it starts (the latest per device), and
// the spool is emptied, bad files included.
func TestSpooledLeaseEventsAppliedAtStart(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "agent.sock")
	spool := DnsmasqSpool(socket)
	dev := func(action, mac, serial string) map[string]string {
		return map[string]string{"action": action, "mac": mac, "ip": "192.168.1.50", "oui": "00D09E", "serial": serial, "class": "STB"}
	}
	require.NoError(t, SpoolLeaseEvent(spool, dev("add", "02:00:00:00:00:01", "GONE")))
	require.NoError(t, SpoolLeaseEvent(spool, dev("del", "02:00:00:00:00:01", "GONE")), "a later event of the same device supersedes")
	require.NoError(t, SpoolLeaseEvent(spool, dev("old", "02:00:00:00:00:02", "STB-7")))
	require.NoError(t, SpoolLeaseEvent(spool, map[string]string{"action": "bogus", "mac": "02:00:00:00:00:03"}))
	require.NoError(t, os.WriteFile(filepath.Join(spool, "02-00-00-00-00-04.json"), []byte("{not json"), 0o600))
	assert.Error(t, SpoolLeaseEvent(spool, map[string]string{"action": "add", "mac": "../x"}), "a name that is not a hardware address")

	c, err := Build(Config{Root: "InternetGatewayDevice", StateDir: t.TempDir(), ControlSocket: socket, Factory: map[string]string{
		"InternetGatewayDevice.ManagementServer.URL": "http://127.0.0.1:9/", "InternetGatewayDevice.DeviceInfo.ManufacturerOUI": "001122",
		"InternetGatewayDevice.DeviceInfo.SerialNumber": "GW1"}})
	require.NoError(t, err)
	testrun.Go(t, c.Control.Serve)

	assert.Equal(t, "1", c.Tree.MustGet("InternetGatewayDevice.ManagementServer.ManageableDeviceNumberOfEntries"))
	assert.Equal(t, "STB-7", c.Tree.MustGet("InternetGatewayDevice.ManagementServer.ManageableDevice.1.SerialNumber"))
	left, err := filepath.Glob(filepath.Join(spool, "*.json"))
	require.NoError(t, err)
	assert.Empty(t, left, "the spool is emptied")

	// While the agent runs, the script's events go straight in.
	_, err = control.Do(socket, control.Request{Op: "call", Name: "dhcp.lease", Args: dev("del", "02:00:00:00:00:02", "STB-7")})
	require.NoError(t, err)
	assert.Equal(t, "0", c.Tree.MustGet("InternetGatewayDevice.ManagementServer.ManageableDeviceNumberOfEntries"))
}
