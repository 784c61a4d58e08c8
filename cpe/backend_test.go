package cpe

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/datamodel/backend"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/schemas"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755))
	return p
}

// TestRealDeviceBackendsAndHooks: a CPE whose Time subtree is served by a
// command (as a mapping file says) and whose Reboot runs a hook. The ACS's
// SetParameterValues of three values, the third refused by the device, is
// answered with 9002 and the first two are rolled back; a GetParameterValues
// reads the device; a Reboot runs the hook with its CommandKey, and the
// next session carries M Reboot and 1 BOOT.
func TestRealDeviceBackendsAndHooks(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "ntp")
	require.NoError(t, os.WriteFile(state, nil, 0o644))
	get := script(t, dir, "ntp-get", fmt.Sprintf(`for i in 1 2 3; do
v=$(grep "^Device.Time.NTPServer$i=" %[1]s | tail -1 | cut -d= -f2-)
echo "{\"name\":\"Device.Time.NTPServer$i\",\"value\":\"${v:-pool$i.example}\"}"
done
`, state))
	set := script(t, dir, "ntp-set", fmt.Sprintf(`[ "$1" = Device.Time.NTPServer3 ] && { echo "server 3 is fixed by the operator" >&2; exit 1; }
echo "$1=$2" >> %s
`, state))
	rebooted := filepath.Join(dir, "rebooted")
	hook := script(t, dir, "reboot", fmt.Sprintf("echo \"$1\" > %s\n", rebooted))
	mapping := fmt.Sprintf("mounts:\n  - path: Device.Time.\n    command:\n      get: [%s]\n      set: [%s]\n      cache: 0s\n", get, set)
	entries, err := backend.Load(strings.NewReader(mapping), schemas.Device())
	require.NoError(t, err)

	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	c, err := Build(Config{Root: "Device", StateDir: filepath.Join(dir, "state"), Mapping: entries, Factory: map[string]string{
		"Device.ManagementServer.URL": acs.URL, "Device.DeviceInfo.ManufacturerOUI": "00D09E", "Device.DeviceInfo.SerialNumber": "REAL1",
		"Device.ManagementServer.PeriodicInformEnable": "false"},
		Agent: cwmp.Config{RetryMinimumWait: 50 * time.Millisecond, Hooks: cwmp.Hooks{Reboot: hook}}})
	require.NoError(t, err)
	defer testrun.Go(t, c.Run)()
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	const id = "00D09E-REAL1"
	require.NoError(t, acs.WaitSessions(wctx, id, 1))

	spv := acs.Enqueue(id, &soap.SetParameterValues{ParameterKey: "k1", ParameterList: []soap.ParameterValue{
		{Name: "Device.Time.NTPServer1", Value: "ntp-a", Type: "xsd:string"},
		{Name: "Device.Time.NTPServer2", Value: "ntp-b", Type: "xsd:string"},
		{Name: "Device.Time.NTPServer3", Value: "ntp-c", Type: "xsd:string"}}})
	gpv := acs.Enqueue(id, &soap.GetParameterValues{ParameterNames: []string{"Device.Time."}})
	c.Agent.ConnectionRequest()
	resp, err := spv.Wait(wctx)
	require.Error(t, err, "the SetParameterValues is answered with a fault")
	var f *soap.Fault
	require.ErrorAs(t, err, &f)
	_ = resp
	assert.Equal(t, 9002, f.Code)
	require.Len(t, f.SetParameterValuesFault, 1)
	assert.Equal(t, "Device.Time.NTPServer3", f.SetParameterValuesFault[0].ParameterName)
	assert.Equal(t, 9002, f.SetParameterValuesFault[0].FaultCode)
	b, _ := os.ReadFile(state)
	assert.Equal(t, "Device.Time.NTPServer1=ntp-a\nDevice.Time.NTPServer2=ntp-b\nDevice.Time.NTPServer2=pool2.example\nDevice.Time.NTPServer1=pool1.example\n",
		string(b), "applied in order, rolled back in reverse")
	assert.NotEqual(t, "k1", c.Tree.MustGet("Device.ManagementServer.ParameterKey"), "a failed transaction does not change ParameterKey")
	g, err := gpv.Wait(wctx)
	require.NoError(t, err)
	vals := map[string]string{}
	for _, pv := range g.(*soap.GetParameterValuesResponse).ParameterList {
		vals[pv.Name] = pv.Value
	}
	assert.Equal(t, "pool1.example", vals["Device.Time.NTPServer1"], "values read from the device")

	// Reboot: the hook gets the CommandKey; M Reboot and 1 BOOT follow.
	acs.Enqueue(id, &soap.Reboot{CommandKey: "ck-42"})
	c.Agent.ConnectionRequest()
	inf, err := acs.WaitEvent(wctx, id, "M Reboot")
	require.NoError(t, err)
	codes := map[string]string{}
	for _, e := range inf.Event {
		codes[e.EventCode] = e.CommandKey
	}
	assert.Equal(t, "ck-42", codes["M Reboot"])
	assert.Contains(t, codes, "1 BOOT")
	hb, _ := os.ReadFile(rebooted)
	assert.Equal(t, "ck-42\n", string(hb), "the hook ran with the CommandKey")
}
