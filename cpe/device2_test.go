package cpe

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/linux/sysinfo"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/tr111"
	"github.com/cwmp-agent/cwmp-agent/tr111/assoc"
)

// TestDevice2RealValues: a real Device:2 CPE (a Host) shows the interface
// that reaches the ACS (here lo, for an ACS on loopback) as
// IP.Interface.1 and Ethernet.Interface.1 with the system's values, and
// informs with the forced parameters TR-181 names.
func TestDevice2RealValues(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	c, err := Build(Config{DataModel: "Device:2.19", StateDir: t.TempDir(), ConnReqListen: "127.0.0.1:0", Host: &sysinfo.Host{},
		Factory: map[string]string{ms + "URL": acs.URL, "Device.DeviceInfo.ManufacturerOUI": "00D09E",
			"Device.DeviceInfo.SerialNumber": "TR181", ms + "PeriodicInformEnable": "false"},
		Agent: cwmp.Config{RetryMinimumWait: 50 * time.Millisecond}})
	require.NoError(t, err)
	testrun.Go(t, c.Run)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	inf, err := acs.WaitInform(ctx, "00D09E-TR181", 1)
	require.NoError(t, err)
	got := map[string]string{}
	for _, p := range inf.ParameterList {
		got[p.Name] = p.Value
	}
	for _, name := range []string{"Device.RootDataModelVersion", "Device.DeviceInfo.HardwareVersion", "Device.DeviceInfo.SoftwareVersion",
		"Device.DeviceInfo.ProvisioningCode", ms + "ParameterKey", ms + "ConnectionRequestURL", ms + "AliasBasedAddressing"} {
		assert.Contains(t, got, name, "TR-181's forced Inform parameters")
	}
	assert.Equal(t, "2.19", got["Device.RootDataModelVersion"])

	ifc, err := sysinfo.InterfaceFor(net.ParseIP("127.0.0.1"))
	require.NoError(t, err)
	get := c.Tree.MustGet
	assert.Equal(t, ifc.Name, get("Device.IP.Interface.1.Name"))
	assert.Equal(t, "Up", get("Device.IP.Interface.1.Status"))
	assert.Equal(t, "127.0.0.1", get("Device.IP.Interface.1.IPv4Address.1.IPAddress"))
	assert.Equal(t, "255.0.0.0", get("Device.IP.Interface.1.IPv4Address.1.SubnetMask"))
	assert.Equal(t, "Enabled", get("Device.IP.Interface.1.IPv4Address.1.Status"))
	assert.Equal(t, ifc.Name, get("Device.Ethernet.Interface.1.Name"))
	assert.Equal(t, "Device.Ethernet.Interface.1", get("Device.IP.Interface.1.LowerLayers"))
	want, err := (sysinfo.Host{}).Counter(ifc.Name, "rx_packets")
	require.NoError(t, err)
	rx, err := strconv.ParseUint(get("Device.IP.Interface.1.Stats.PacketsReceived"), 10, 64)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, rx, want, "the system's counter, read when asked")
	up, err := strconv.Atoi(get("Device.DeviceInfo.UpTime"))
	require.NoError(t, err)
	assert.Greater(t, up, 0)
	assert.Equal(t, "1", get("Device.DeviceInfo.SupportedDataModelNumberOfEntries"))
	assert.Equal(t, "urn:broadband-forum-org:tr-181-2-19-1-cwmp", get("Device.DeviceInfo.SupportedDataModel.1.URN"))

	// An instance the ACS adds reads its defaults, not the system's.
	n, err := c.Tree.AddInstance("Device.IP.Interface.", nil, datamodelACS())
	require.NoError(t, err)
	assert.Equal(t, "Down", get("Device.IP.Interface."+strconv.Itoa(int(n))+".Status"))
	assert.Equal(t, "0", get("Device.IP.Interface."+strconv.Itoa(int(n))+".Stats.BytesSent"))
}

func datamodelACS() datamodel.SetOptions { return datamodel.SetOptions{Origin: datamodel.OriginACS} }

// TestDevice2GatewayHosts: a Device:2 gateway keeps Device.Hosts.Host from
// the neighbour table (a fake /proc), and each ManageableDevice entry's
// Host names the Hosts.Host entries of the device's leases.
func TestDevice2GatewayHosts(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	c, err := Build(Config{DataModel: "Device:2.19", Factory: map[string]string{ms + "URL": acs.URL,
		"Device.DeviceInfo.ManufacturerOUI": "00D09E", "Device.DeviceInfo.SerialNumber": "GW2"},
		Host: &sysinfo.Host{Root: "../internal/linux/sysinfo/testdata/root"}})
	require.NoError(t, err)
	require.NotNil(t, c.Table, "Device:2 has the gateway side")
	c.SyncHosts()
	h := "Device.Hosts.Host."
	assert.Equal(t, "02:00:00:aa:bb:01", c.Tree.MustGet(h+"1.PhysAddress"))
	assert.Equal(t, "192.168.1.20", c.Tree.MustGet(h+"1.IPAddress"))
	assert.Equal(t, "Ethernet", c.Tree.MustGet(h+"1.InterfaceType"))
	assert.Equal(t, "Wi-Fi", c.Tree.MustGet(h+"2.InterfaceType"))
	assert.Equal(t, "", c.Tree.MustGet(h+"1.HostName"), "nothing made up")

	require.NoError(t, c.Table.Bound(assoc.Lease{Key: "02:00:00:aa:bb:02", IP: "192.168.1.30", Source: "dnsmasq",
		Identity: tr111.Identity{ManufacturerOUI: "00D09E", SerialNumber: "STB7", ProductClass: "STB"}}))
	c.syncManageableHosts()
	assert.Equal(t, "STB7", c.Tree.MustGet(ms+"ManageableDevice.1.SerialNumber"))
	assert.Equal(t, "Device.Hosts.Host.2", c.Tree.MustGet(ms+"ManageableDevice.1.Host"))
}
