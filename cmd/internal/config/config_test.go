package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/cli"
)

func loadYAML(t *testing.T, yaml string, args ...string) (*Agent, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	require.NoError(t, os.WriteFile(p, []byte(yaml), 0o600))
	cf := cli.NewCommon("cwmp-agent", "run", "", FlagKeys)
	require.NoError(t, cf.FS.Parse(append([]string{"--config", p}, args...)))
	return Load(Source{File: *cf.Config, Flags: cf.Set(FlagKeys)})
}

const goodYAML = `
acs:
  url: http://127.0.0.1:7547/acs
device:
  oui: 00D09E
  serial_number: SN1
state_dir: /tmp/x
parameters:
  Device.ManagementServer.PeriodicInformInterval: 120
  Device.DeviceInfo.ProvisioningCode: "ABCD.EFGH"
`

func TestConfigLoads(t *testing.T) {
	cfg, err := loadYAML(t, goodYAML, "--serial", "SN-FLAG")
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:7547/acs", cfg.ACS.URL)
	assert.Equal(t, "SN-FLAG", cfg.Device.SerialNumber, "flags win over the file")
	assert.Equal(t, "Device", cfg.RootName())
	assert.Equal(t, map[string]string{"Device.ManagementServer.PeriodicInformInterval": "120", "Device.DeviceInfo.ProvisioningCode": "ABCD.EFGH"}, cfg.Parameters,
		"parameter paths are not split on their dots")
	f := cfg.Factory()
	assert.Equal(t, "120", f["Device.ManagementServer.PeriodicInformInterval"], "parameters win over the mapped keys")
	assert.Equal(t, "SN-FLAG", f["Device.DeviceInfo.SerialNumber"])

	t.Setenv("CWMP_AGENT_ACS_URL", "https://acs.example:7548/")
	t.Setenv("CWMP_AGENT_DEVICE_PRODUCT_CLASS", "Box")
	cfg, err = loadYAML(t, goodYAML)
	require.NoError(t, err)
	assert.Equal(t, "https://acs.example:7548/", cfg.ACS.URL, "environment variables win over the file")
	assert.Equal(t, "Box", cfg.Device.ProductClass)
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, key string
	}{
		{"missing url", "device: {oui: 00D09E, serial_number: S}\n", "acs.url"},
		{"bad url", "acs: {url: ftp://x}\ndevice: {oui: 00D09E, serial_number: S}\n", "acs.url"},
		{"bad oui", "acs: {url: http://a/}\ndevice: {oui: 00d09e, serial_number: S}\n", "device.oui"},
		{"bad root", "acs: {url: http://a/}\ndevice: {root: Router, oui: 00D09E, serial_number: S}\n", "device.root"},
		{"no serial", "acs: {url: http://a/}\ndevice: {oui: 00D09E}\n", "device.serial_number"},
		{"unknown key", "acs: {url: http://a/, passwd: x}\ndevice: {oui: 00D09E, serial_number: S}\n", "acs.passwd"},
		{"bad interval", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\nperiodic_inform: {interval: 0}\n", "periodic_inform.interval"},
		{"bad boolean", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\nperiodic_inform: {enable: maybe}\n", "periodic_inform.enable"},
		{"bad duration", "acs: {url: http://a/, response_timeout: soon}\ndevice: {oui: 00D09E, serial_number: S}\n", "acs.response_timeout"},
		{"bad level", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\nlog: {level: loud}\n", "log.level"},
		{"unknown parameter", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\nparameters: {Device.Nope: 1}\n", "parameters.Device.Nope"},
		{"bad parameter value", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\nparameters: {Device.ManagementServer.STUNServerPort: 70000}\n", "parameters.Device.ManagementServer.STUNServerPort"},
		{"bad listen", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\nconnection_request: {listen: nowhere}\n", "connection_request.listen"},
		{"https cr url", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\nconnection_request: {url: https://x/}\n", "connection_request.url"},
		{"dhcp client on a gateway", "acs: {url: http://a/}\ndevice: {root: InternetGatewayDevice, oui: 00D09E, serial_number: S}\ndhcp: {client: {mode: lease, interface: eth0}}\n", "dhcp.client.mode"},
		{"dhcp client mode", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\ndhcp: {client: {mode: always, interface: eth0}}\n", "dhcp.client.mode"},
		{"dhcp client interface", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\ndhcp: {client: {mode: inform}}\n", "dhcp.client.interface"},
		{"dhcp server on a device", "acs: {url: http://a/}\ndevice: {oui: 00D09E, serial_number: S}\ndhcp: {server: {interface: br-lan, pool_start: 10.0.0.10, pool_end: 10.0.0.20}}\n", "dhcp.server.interface"},
		{"dhcp pool", "acs: {url: http://a/}\ndevice: {root: InternetGatewayDevice, oui: 00D09E, serial_number: S}\ndhcp: {server: {interface: br-lan, pool_start: 10.0.0.300, pool_end: 10.0.0.20}}\n", "dhcp.server.pool_start"},
		{"dhcp lease", "acs: {url: http://a/}\ndevice: {root: InternetGatewayDevice, oui: 00D09E, serial_number: S}\ndhcp: {server: {lease_time: 1s}}\n", "dhcp.server.lease_time"},
		{"dhcp dns", "acs: {url: http://a/}\ndevice: {root: InternetGatewayDevice, oui: 00D09E, serial_number: S}\ndhcp: {server: {dns: \"10.0.0.1,fe80::1\"}}\n", "dhcp.server.dns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadYAML(t, tc.yaml)
			require.Error(t, err)
			// "config: FILE:LINE: key: problem" (the line of the key, or of
			// its nearest parent in the file).
			assert.Regexp(t, `config: (\S+\.yaml:\d+: )?`+regexp.QuoteMeta(tc.key)+`:`, err.Error())
		})
	}
	_, err := Load(Source{File: "/nonexistent.yaml"})
	assert.ErrorContains(t, err, "/nonexistent.yaml")
}

// TestREADMEListsEveryKey keeps the README's configuration table true.
func TestREADMEListsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../../README.md")
	require.NoError(t, err)
	for _, k := range Keys() {
		assert.True(t, strings.Contains(string(b), "`"+k.Name+"`"), "README lacks the configuration key %s", k.Name)
	}
}

// A vendor's data-model files come as a YAML list, or as one
// comma-separated value from the environment or a flag; either way each
// file is read and its parameters served.
func TestDataModelFilesList(t *testing.T) {
	acme, err := filepath.Abs("../../../schemas/testdata/acme-device2.xml")
	require.NoError(t, err)
	y := strings.Replace(goodYAML, "  oui: 00D09E\n", "  oui: 00D09E\n  data_model: Device:2.19\n  data_model_files:\n    - "+acme+"\n", 1)
	y = strings.ReplaceAll(y, "Device.DeviceInfo.ProvisioningCode", "Device.DeviceInfo.ProductClass")
	cfg, err := loadYAML(t, y)
	require.NoError(t, err)
	assert.Equal(t, []string{acme}, cfg.Device.DataModelFiles)
	s, err := cfg.Schema()
	require.NoError(t, err)
	assert.NotNil(t, s.Param("Device.DeviceInfo.X_ACME_BootCount"), "the vendor file's parameter is in the schema")

	t.Setenv("CWMP_AGENT_DEVICE_DATA_MODEL_FILES", acme+", "+acme)
	cfg, err = loadYAML(t, y)
	require.NoError(t, err)
	assert.Equal(t, []string{acme, acme}, cfg.Device.DataModelFiles, "comma-separated from the environment")
	s, err = cfg.Schema()
	require.NoError(t, err, "a file named twice is read once")
	assert.NotNil(t, s.Param("Device.DeviceInfo.X_ACME_BootCount"))

	_, err = loadYAML(t, strings.Replace(y, "    - "+acme+"\n", "    - {a: b}\n", 1))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "device.data_model_files: must be a list of single values")
}
