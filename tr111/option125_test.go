package tr111

import (
	"encoding/hex"
	"net"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
)

// The Device Identity of TR-111 1.2.5 for OUI 00D09E, serial SN123 and
// product class IGD, byte by byte: enterprise 3561 (0x00000DE9), block
// length 20, then code/length/data for sub-options 1, 2 and 3.
const deviceVector = "00000de9" + "14" + "0106303044303945" + "0205534e313233" + "0303494744"

func TestOption125DeviceIdentityVector(t *testing.T) {
	id := Identity{ManufacturerOUI: "00D09E", SerialNumber: "SN123", ProductClass: "IGD"}
	assert.Equal(t, deviceVector, hex.EncodeToString(id.DeviceOption().ToBytes()))

	raw, _ := hex.DecodeString(deviceVector)
	o, err := ParseOption125(raw)
	require.NoError(t, err)
	got, err := o.DeviceIdentity()
	require.NoError(t, err)
	assert.Equal(t, id, got)
	_, ok, err := o.GatewayIdentity()
	require.NoError(t, err)
	assert.False(t, ok, "sub-options 1-3 are not a Gateway Identity")
}

func TestOption125GatewayIdentity(t *testing.T) {
	id := Identity{ManufacturerOUI: "001122", SerialNumber: "GW-1"}
	b := id.GatewayOption().ToBytes()
	// No product class: sub-option 6 is left out (TR-111 1.2.5).
	assert.Equal(t, "00000de9"+"0e"+"0406303031313232"+"0504"+hex.EncodeToString([]byte("GW-1")), hex.EncodeToString(b))
	o, err := ParseOption125(b)
	require.NoError(t, err)
	got, ok, err := o.GatewayIdentity()
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, id, got, "a missing sub-option reads as an empty string")
	_, err = o.DeviceIdentity()
	assert.ErrorIs(t, err, ErrNoIdentity)
}

func TestOption125OtherEnterprisesKept(t *testing.T) {
	// A block of enterprise 4491 (CableLabs) before ours, and a trailing
	// NUL on our serial number, which some devices send.
	other := "0000118b" + "03" + "010100"
	ours := "00000de9" + "12" + "0106303044303945" + "0206534e31323300" + "0300"
	raw, _ := hex.DecodeString(other + ours)
	o, err := ParseOption125(raw)
	require.NoError(t, err)
	require.Len(t, o, 2)
	assert.Equal(t, uint32(4491), o[0].Enterprise)
	assert.Equal(t, raw, o.ToBytes(), "encoding gives back what was parsed")
	id, err := o.DeviceIdentity()
	require.NoError(t, err)
	assert.Equal(t, Identity{ManufacturerOUI: "00D09E", SerialNumber: "SN123"}, id)
	assert.Contains(t, o.String(), "enterprise 4491: 3 bytes")
}

func TestOption125Errors(t *testing.T) {
	for name, h := range map[string]string{
		"short header":         "00000d",
		"block past the end":   "00000de9" + "10" + "0106303044303945",
		"sub-option past end":  "00000de9" + "04" + "01063030",
		"sub-option no length": "00000de9" + "01" + "01",
	} {
		raw, _ := hex.DecodeString(h)
		o, err := ParseOption125(raw)
		if err == nil {
			_, err = o.DeviceIdentity()
		}
		assert.Error(t, err, name)
	}
	for name, id := range map[string]Identity{
		"lower-case OUI": {ManufacturerOUI: "00d09e", SerialNumber: "x"},
		"short OUI":      {ManufacturerOUI: "00D09", SerialNumber: "x"},
		"empty serial":   {ManufacturerOUI: "00D09E"},
		"long serial":    {ManufacturerOUI: "00D09E", SerialNumber: strings.Repeat("s", 65)},
		"control chars":  {ManufacturerOUI: "00D09E", SerialNumber: "a\x01b"},
		"invalid UTF-8":  {ManufacturerOUI: "00D09E", SerialNumber: "a\xffb"},
		"long class":     {ManufacturerOUI: "00D09E", SerialNumber: "x", ProductClass: strings.Repeat("c", 70)},
	} {
		o, err := ParseOption125(id.DeviceOption().ToBytes())
		require.NoError(t, err, name)
		_, err = o.DeviceIdentity()
		assert.Error(t, err, name)
	}
	// Only sub-option 1: not a Device Identity.
	raw, _ := hex.DecodeString("00000de9" + "08" + "0106303044303945")
	o, err := ParseOption125(raw)
	require.NoError(t, err)
	_, err = o.DeviceIdentity()
	assert.ErrorIs(t, err, ErrNoIdentity)
}

func TestOption125InDHCPMessage(t *testing.T) {
	id := Identity{ManufacturerOUI: "00D09E", SerialNumber: "SN123", ProductClass: "IGD"}
	m, err := dhcpv4.NewDiscovery(net.HardwareAddr{2, 0, 0, 0, 0, 1}, dhcpv4.WithOption(id.DeviceOption().Option()))
	require.NoError(t, err)
	back, err := dhcpv4.FromBytes(m.ToBytes())
	require.NoError(t, err)
	o, ok, err := FromMessage(back)
	require.NoError(t, err)
	require.True(t, ok)
	got, err := o.DeviceIdentity()
	require.NoError(t, err)
	assert.Equal(t, id, got)
	_, ok, _ = FromMessage(&dhcpv4.DHCPv4{Options: dhcpv4.Options{}})
	assert.False(t, ok)
}

// FuzzOption125: the decoder and both identity readers never panic; what
// parses re-encodes to the same bytes; a Device Identity that comes out is
// always fit for the ManageableDevice table.
func FuzzOption125(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzOption125")
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := ParseOption125(b)
		if err != nil {
			return
		}
		if got := o.ToBytes(); string(got) != string(b) {
			t.Fatalf("re-encoding changed the option: %x -> %x", b, got)
		}
		_ = o.String()
		if id, err := o.DeviceIdentity(); err == nil {
			if verr := id.Validate(); verr != nil {
				t.Fatalf("DeviceIdentity returned an invalid identity: %v", verr)
			}
		}
		if id, ok, err := o.GatewayIdentity(); err == nil && ok {
			if len(id.ManufacturerOUI) > 6 || !printable(id.SerialNumber) {
				t.Fatalf("GatewayIdentity returned %+v", id)
			}
		}
	})
}
