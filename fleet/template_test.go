package fleet

import (
	"context"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/schemas"
)

// served lists the names a tree serves (GetParameterNames of the root).
func served(t *testing.T, tr *datamodel.Tree) map[string]bool {
	t.Helper()
	infos, err := tr.GetNames(tr.Schema().RootName()+".", false)
	require.NoError(t, err)
	out := map[string]bool{}
	for _, in := range infos {
		out[in.Name] = in.Writable
	}
	return out
}

func parseFile(t *testing.T, file, model string) (*Template, *datamodel.Schema, *datamodel.Tree) {
	t.Helper()
	fh, err := os.Open(file)
	require.NoError(t, err)
	defer fh.Close()
	base, err := schemas.Model(model)
	require.NoError(t, err)
	tp, err := ParseTemplate(fh, base)
	require.NoError(t, err)
	s, err := tp.Schema(model, nil)
	require.NoError(t, err)
	tr, err := datamodel.New(s, datamodel.Options{Factory: tp.Values})
	require.NoError(t, err)
	return tp, s, tr
}

// TestTemplateFormats: a genieacs-sim CSV, a SimulaTR69 CSV and a GenieACS
// device document each give a CPE that serves the device's tree: its
// objects and parameters (vendors' too, typed and writable as the
// template says), plus only what the agent needs; the model's rules win
// where both speak.
func TestTemplateFormats(t *testing.T) {
	t.Run("genieacs-sim", func(t *testing.T) {
		tp, s, tr := parseFile(t, "testdata/genieacs-sim.csv", schemas.IGD12)
		assert.Equal(t, "genieacs-sim", tp.Format)
		names := served(t, tr)
		root := "InternetGatewayDevice."
		assert.Equal(t, "Example Networks", tr.MustGet(root+"DeviceInfo.Manufacturer"))
		assert.Equal(t, "41", tr.MustGet(root+"DeviceInfo.X_EXAMPLE_Temperature"))
		assert.Equal(t, datamodel.Int, s.Param(root+"DeviceInfo.X_EXAMPLE_Temperature").Type.Kind)
		assert.False(t, names[root+"DeviceInfo.X_EXAMPLE_Temperature"], "read-only, as the template says")
		assert.True(t, names[root+"DeviceInfo.X_EXAMPLE_Telnet.Port"], "writable, as the template says")
		assert.False(t, names[root+"DeviceInfo.SoftwareVersion"], "the model's rule wins: SoftwareVersion is read-only")
		assert.Equal(t, "2", tr.MustGet(root+"LANDevice.1.Hosts.HostNumberOfEntries"), "counted from the instances")
		assert.Equal(t, "Phone", tr.MustGet(root+"LANDevice.1.Hosts.Host.1.X_EXAMPLE_DeviceType"))
		assert.Equal(t, "allow, all", tr.MustGet(root+"LANDevice.1.X_EXAMPLE_Rule.1.Name"))
		assert.True(t, s.Object(root+"LANDevice.{i}.X_EXAMPLE_Rule.{i}.").Writable, "a vendor's table the ACS may add to")
		assert.Equal(t, 1, tp.Skipped["outside InternetGatewayDevice"]/4, "DeviceID.* rows")
		// Exactly the device's tree: nothing of the model it does not have
		// beyond what the agent needs.
		assert.NotContains(t, names, root+"WANDevice.")
		assert.NotContains(t, names, root+"LANDevice.1.WLANConfiguration.")
		assert.Contains(t, names, root+"ManagementServer.ConnectionRequestURL")
		assert.Contains(t, names, root+"DeviceSummary", "forced Inform parameters stay")
		for n := range names {
			sp := datamodel.SchemaPath(n)
			if !tp.Names[sp] && !tp.Names[sp+"{i}."] && !strings.HasPrefix(n, root+"ManagementServer.") && !strings.HasPrefix(n, root+"DeviceInfo.") &&
				n != root+"DeviceSummary" && !strings.HasSuffix(n, "NumberOfEntries") {
				t.Errorf("serves %s, which the device does not have", n)
			}
		}
	})
	t.Run("simulatr69", func(t *testing.T) {
		tp, s, tr := parseFile(t, "testdata/simulatr69.csv", schemas.Device2)
		assert.Equal(t, "simulatr69", tp.Format)
		names := served(t, tr)
		assert.Equal(t, "198.51.100.20", tr.MustGet("Device.IP.Interface.1.IPv4Address.1.IPAddress"))
		assert.Equal(t, "+15550100", tr.MustGet("Device.X_EXAMPLE_Voice.Line.1.Number"))
		assert.True(t, s.Object("Device.X_EXAMPLE_Voice.Line.{i}.").Writable)
		assert.Equal(t, datamodel.Boolean, s.Param("Device.X_EXAMPLE_Voice.Line.{i}.Registered").Type.Kind)
		assert.Equal(t, "2.19", tr.MustGet("Device.RootDataModelVersion"), "forced: kept with the model's default")
		assert.NotContains(t, names, "Device.WiFi.")
		assert.NotContains(t, names, "Device.IP.Interface.1.Stats.", "the model's objects the device lacks are not served")
		assert.Equal(t, "wan0", tr.MustGet("Device.IP.Interface.1.Name"), "a value a real device computes, kept for a virtual one")
	})
	t.Run("genieacs", func(t *testing.T) {
		tp, s, tr := parseFile(t, "testdata/genieacs-device.json", schemas.Device2)
		assert.Equal(t, "genieacs", tp.Format)
		names := served(t, tr)
		assert.Equal(t, "camera", tr.MustGet("Device.NAT.PortMapping.1.Description"))
		assert.Equal(t, "8080", tr.MustGet("Device.NAT.PortMapping.1.ExternalPort"))
		assert.Equal(t, "0.75", tr.MustGet("Device.DeviceInfo.X_EXAMPLE_Ratio"))
		assert.Equal(t, datamodel.Decimal, s.Param("Device.DeviceInfo.X_EXAMPLE_Ratio").Type.Kind)
		assert.Equal(t, "2026-11-01T09:00:00.000Z", tr.MustGet("Device.DeviceInfo.FirstUseDate"))
		assert.Equal(t, "7", tr.MustGet("Device.X_EXAMPLE_Player.Volume"))
		assert.NotContains(t, names, "Device.X_EXAMPLE_Player.Channel", "GenieACS never read its value")
		assert.NotContains(t, names, "Device.VirtualParameters.")
		assert.Equal(t, "123456", tp.Values["Device.DeviceInfo.UpTime"], "kept; the agent computes it where it can")
	})
}

// TestTemplateFleet: a fleet cloned from a GenieACS device document
// bootstraps, and each CPE answers for its vendor parameters.
func TestTemplateFleet(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	tp, s, _ := parseFile(t, "testdata/genieacs-device.json", schemas.Device2)
	b := base(acs.URL)
	b.Root, b.Schema = "Device", s
	for k, v := range tp.Values {
		b.Factory[k] = v
	}
	f, err := New(Config{Count: 5, Base: b, CRListen: "127.0.0.1:0", Rate: 0})
	require.NoError(t, err)
	runFleet(t, f)
	require.Eventually(t, func() bool { return f.Up() == 5 }, 20*time.Second, 20*time.Millisecond)
	inf := acs.Device("00D09E-Sim-SIM000003").LastInform()
	require.NotNil(t, inf)
	var got []string
	for _, p := range inf.ParameterList {
		got = append(got, p.Name)
	}
	sort.Strings(got)
	assert.Contains(t, got, "Device.RootDataModelVersion")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = ctx
	assert.Equal(t, "7", f.Device("SIM000003").CPE.Tree.MustGet("Device.X_EXAMPLE_Player.Volume"))
}
