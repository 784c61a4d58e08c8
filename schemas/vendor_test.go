package schemas

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
)

// TestVendorFile: a vendor's data-model XML adds its parameters to
// standard objects and its own objects and tables, typed as the file says,
// TR-106's named types included, without the BBF files.
func TestVendorFile(t *testing.T) {
	s, err := Extend(Device2, []string{"testdata/acme-device2.xml"})
	require.NoError(t, err)
	assert.Equal(t, Device2, s.Model)
	assert.Len(t, s.Params(), len(Device219().Params())+7)

	boot := s.Param("Device.DeviceInfo.X_ACME_BootCount")
	require.NotNil(t, boot)
	assert.Equal(t, datamodel.UnsignedInt, boot.Type.Kind)
	assert.False(t, boot.Writable)
	fan := s.Param("Device.DeviceInfo.X_ACME_FanSpeed")
	require.NotNil(t, fan)
	assert.Equal(t, "50", fan.Default)
	_, err = fan.Type.Canonical("101")
	assert.Error(t, err, "X_ACME_Percent is 0..100")
	assert.True(t, s.Param("Device.X_ACME_Diagnostics.Token").Hidden)
	probe := s.Object("Device.X_ACME_Diagnostics.Probe.{i}.")
	require.NotNil(t, probe)
	assert.True(t, probe.Writable)
	assert.Equal(t, 16, probe.MaxEntries)
	assert.Equal(t, probe, s.Param("Device.X_ACME_Diagnostics.ProbeNumberOfEntries").CountOf)
	target := s.Param("Device.X_ACME_Diagnostics.Probe.{i}.Target")
	_, err = target.Type.Canonical("10.0.0.1")
	assert.NoError(t, err)
	_, err = target.Type.Canonical("fe80::1")
	assert.Error(t, err, "TR-106's IPv4Address, known without tr-106-types.xml")
	ports := s.Param("Device.X_ACME_Diagnostics.Probe.{i}.Ports")
	assert.Equal(t, datamodel.String, ports.Type.Wire())
	_, err = ports.Type.Canonical("80,443")
	assert.NoError(t, err)
	_, err = ports.Type.Canonical("80,0")
	assert.Error(t, err)

	// The tree serves it.
	tr, err := datamodel.New(s, datamodel.Options{})
	require.NoError(t, err)
	assert.Equal(t, "Off", tr.MustGet("Device.X_ACME_Diagnostics.Mode"))
	_, err = tr.AddInstance("Device.X_ACME_Diagnostics.Probe.", map[string]string{"Target": "192.0.2.1"}, datamodel.SetOptions{Origin: datamodel.OriginACS})
	require.NoError(t, err)
	assert.Equal(t, "1", tr.MustGet("Device.X_ACME_Diagnostics.ProbeNumberOfEntries"))
}

// TestVendorFileErrors: a bad vendor file is an error naming the file,
// the line and the element.
func TestVendorFileErrors(t *testing.T) {
	for file, want := range map[string]string{
		"acme-bad-base.xml":     "acme-bad-base.xml:4: <object>: base object Device.NoSuchObject. is not defined",
		"acme-bad-type.xml":     "acme-bad-type.xml:6: <dataType>:",
		"acme-bad-redefine.xml": "acme-bad-redefine.xml:5: parameter Device.DeviceInfo.UpTime is defined by the model already",
		"no-such-file.xml":      "no-such-file.xml",
	} {
		_, err := Extend(Device2, []string{filepath.Join("testdata", file)})
		if assert.Error(t, err, file) {
			assert.Contains(t, err.Error(), want, file)
		}
	}
	_, err := Extend("Device:9", nil)
	assert.ErrorContains(t, err, "unknown data model")
}

// FuzzDataModelXML: whatever a vendor's file holds, reading it gives a
// model or an error; it never panics nor runs away. It extends Device:1.1,
// whose small schema keeps each run short (the code is the same).
func FuzzDataModelXML(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzDataModelXML")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "vendor.xml")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Extend(Device11, []string{p})
		if err != nil {
			if !strings.Contains(err.Error(), "vendor.xml") && !strings.Contains(err.Error(), "schemas:") {
				t.Fatalf("an error that names nothing: %v", err)
			}
			return
		}
		if s.Model != Device11 || len(s.Params()) < len(Device().Params()) {
			t.Fatalf("the model lost parameters: %s %d", s.Model, len(s.Params()))
		}
	})
}
