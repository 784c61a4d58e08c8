package assoc

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/tr111"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDeviceOptionForms(t *testing.T) {
	f := DeviceOptionForms(tr111.Identity{ManufacturerOUI: "00D09E", SerialNumber: "SN123", ProductClass: "IGD"})
	const h = "00000de9140106303044303945" + "0205534e313233" + "0303494744"
	assert.Equal(t, h, f.Hex)
	assert.Equal(t, "-x 0x7d:"+h+" -O 125", f.Udhcpc)
	assert.Contains(t, f.DHClient, "option tr111-vi code 125 = string;\n")
	assert.Contains(t, f.DHClient, "send tr111-vi 00:00:0d:e9:14:01:06:30:30:44:30:39:45:02:05:53:4e:31:32:33:03:03:49:47:44;\n")
	assert.Contains(t, f.DHClient, "also request tr111-vi;")
}

func TestDecodeHookOption(t *testing.T) {
	want := []byte{0, 0, 0x0d, 0xe9, 2, 4, 1, 2}
	for _, s := range []string{"00000de902040102", "0:0:d:e9:2:4:1:2", "00:00:0d:e9:02:04:01:02", " 00000de902040102\n"} {
		got, err := DecodeHookOption(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	for _, s := range []string{"", "0g", "1:2:", "123:4", "abc"} {
		_, err := DecodeHookOption(s)
		assert.Error(t, err, s)
	}
}

func TestClientHookEvent(t *testing.T) {
	gwHex := "00000de9" + "0e" + "0406303031313232" + "0504" + "47572d31"
	gw := &tr111.Identity{ManufacturerOUI: "001122", SerialNumber: "GW-1"}
	for name, tc := range map[string]struct {
		args   []string
		env    map[string]string
		action HookAction
		id     *tr111.Identity
	}{
		"udhcpc bound":          {[]string{"bound"}, map[string]string{"opt125": gwHex}, HookRecord, gw},
		"udhcpc renew no 125":   {[]string{"renew"}, nil, HookRecord, nil},
		"udhcpc deconfig":       {[]string{"deconfig"}, map[string]string{"opt125": gwHex}, HookClear, nil},
		"udhcpc nak":            {[]string{"nak"}, nil, HookClear, nil},
		"udhcpc leasefail":      {[]string{"leasefail"}, nil, HookClear, nil},
		"dhclient BOUND":        {nil, map[string]string{"reason": "BOUND", "new_tr111_vi": "0:0:d:e9:e:4:6:30:30:31:31:32:32:5:4:47:57:2d:31"}, HookRecord, gw},
		"dhclient REBOOT":       {nil, map[string]string{"reason": "REBOOT", "new_tr111_vi": gwHex}, HookRecord, gw},
		"dhclient EXPIRE":       {nil, map[string]string{"reason": "EXPIRE", "old_tr111_vi": gwHex}, HookClear, nil},
		"dhclient RELEASE":      {nil, map[string]string{"reason": "RELEASE"}, HookClear, nil},
		"dhclient PREINIT":      {nil, map[string]string{"reason": "PREINIT"}, HookIgnore, nil},
		"other enterprise only": {[]string{"bound"}, map[string]string{"opt125": "0000118b03010100"}, HookRecord, nil},
	} {
		a, id, err := ClientHookEvent(tc.args, env(tc.env))
		require.NoError(t, err, name)
		assert.Equal(t, tc.action, a, name)
		assert.Equal(t, tc.id, id, name)
	}
	_, _, err := ClientHookEvent([]string{"bound"}, env(map[string]string{"opt125": "00000de9ff"}))
	assert.Error(t, err, "a malformed option is an error")
	_, _, err = ClientHookEvent(nil, env(nil))
	assert.Error(t, err)
}

func TestParseDnsmasqScript(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	ev, ok, err := ParseDnsmasqScript([]string{"add", "02:00:00:00:00:0A", "192.168.88.120", "stb"}, env(map[string]string{
		"DNSMASQ_CPEWAN_OUI": "00D09E", "DNSMASQ_CPEWAN_SERIAL": "STB-42", "DNSMASQ_CPEWAN_CLASS": "SetTopBox",
		"DNSMASQ_LEASE_EXPIRES": "1800003600"}), now)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, DnsmasqEvent{Action: "add", MAC: "02:00:00:00:00:0a", IP: "192.168.88.120",
		Identity: &tr111.Identity{ManufacturerOUI: "00D09E", SerialNumber: "STB-42", ProductClass: "SetTopBox"},
		Expires:  time.Unix(1_800_003_600, 0)}, ev)

	ev, ok, err = ParseDnsmasqScript([]string{"old", "02:00:00:00:00:0b", "192.168.88.121"}, env(map[string]string{"DNSMASQ_LEASE_LENGTH": "120"}), now)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Nil(t, ev.Identity)
	assert.Equal(t, now.Add(2*time.Minute), ev.Expires)

	_, ok, err = ParseDnsmasqScript([]string{"init"}, env(nil), now)
	assert.NoError(t, err)
	assert.False(t, ok, "init, tftp and arp events are not leases")
	_, _, err = ParseDnsmasqScript([]string{"add", "02:00:00:00:00:0b"}, env(nil), now)
	assert.Error(t, err)
	_, _, err = ParseDnsmasqScript([]string{"del", "m", "1.2.3.4"}, env(map[string]string{"DNSMASQ_LEASE_EXPIRES": "soon"}), now)
	assert.Error(t, err)
}

func TestDnsmasqConfig(t *testing.T) {
	s := DnsmasqConfig(tr111.Identity{ManufacturerOUI: "001122", SerialNumber: `GW "1"`, ProductClass: "IGD"}, "/usr/lib/cwmp-agent/dnsmasq-script")
	assert.Contains(t, s, "dhcp-option=tag:cpewan-id,vi-encap:3561,4,\"001122\"\n")
	assert.Contains(t, s, "dhcp-option=tag:cpewan-id,vi-encap:3561,5,\"GW \\\"1\\\"\"\n")
	assert.Contains(t, s, "dhcp-option=tag:cpewan-id,vi-encap:3561,6,\"IGD\"\n")
	assert.Contains(t, s, "dhcp-script=/usr/lib/cwmp-agent/dnsmasq-script\n")
	assert.NotContains(t, DnsmasqConfig(tr111.Identity{ManufacturerOUI: "001122", SerialNumber: "x"}, ""), ",6,")
}
