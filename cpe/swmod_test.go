package cpe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/soap"
	"github.com/cwmp-agent/cwmp-agent/swmod"
)

const du = "Device.SoftwareModules.DeploymentUnit."

func swCPE(t *testing.T, acs *cwmptest.ACS, dir string, backend swmod.Backend) *CPE {
	t.Helper()
	return device2(t, acs.URL, "SW1", nil, func(c *Config) { c.StateDir, c.SoftwareModules = dir, backend })
}

// device2 builds a Device:2.19 CPE of the ACS at acsURL (OUI 00D09E, no
// periodic Informs, a quick retry); factory adds values, set adjusts the
// rest.
func device2(t *testing.T, acsURL, serial string, factory map[string]string, set func(*Config)) *CPE {
	t.Helper()
	cfg := Config{DataModel: "Device:2.19", StateDir: t.TempDir(), ConnReqListen: "127.0.0.1:0",
		Factory: map[string]string{ms + "URL": acsURL, "Device.DeviceInfo.ManufacturerOUI": "00D09E",
			"Device.DeviceInfo.SerialNumber": serial, ms + "PeriodicInformEnable": "false"},
		Agent: cwmp.Config{RetryMinimumWait: 50 * time.Millisecond}}
	for k, v := range factory {
		cfg.Factory[k] = v
	}
	if set != nil {
		set(&cfg)
	}
	c, err := Build(cfg)
	require.NoError(t, err)
	return c
}

// The ACS installs, updates and uninstalls a deployment unit with
// ChangeDUState: the packages come from its file server, the operations
// run after the session, and DUStateChangeComplete comes back in a
// session of its own with 11 DU STATE CHANGE COMPLETE and M ChangeDUState;
// the tables follow each step.
func TestChangeDUStateLifecycle(t *testing.T) {
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "missing") {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("package " + r.URL.Path))
	}))
	defer files.Close()
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	c := swCPE(t, acs, t.TempDir(), nil)
	testrun.Go(t, c.Run)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := "00D09E-SW1"
	_, err = acs.WaitInform(ctx, id, 1)
	require.NoError(t, err)

	resp, err := call(ctx, t, acs, c, id, &soap.GetRPCMethods{})
	require.NoError(t, err)
	assert.Contains(t, resp.(*soap.GetRPCMethodsResponse).MethodList, "ChangeDUState", "a Device:2 root has SoftwareModules")

	const uuid = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	change := func(key string, ops ...soap.DUOperation) *soap.DUStateChangeComplete {
		t.Helper()
		before := len(acs.Device(id).DUChanges)
		_, err := call(ctx, t, acs, c, id, &soap.ChangeDUState{CommandKey: key, Operations: ops})
		require.NoError(t, err)
		require.NoError(t, acs.WaitFor(ctx, func(a *cwmptest.ACS) bool { return len(a.Devs()[id].DUChanges) > before }))
		d := acs.Device(id)
		inf := d.LastInform()
		codes := []string{}
		for _, e := range inf.Event {
			codes = append(codes, e.EventCode+"/"+e.CommandKey)
		}
		assert.Contains(t, codes, "11 DU STATE CHANGE COMPLETE/")
		assert.Contains(t, codes, "M ChangeDUState/"+key)
		return d.DUChanges[len(d.DUChanges)-1].(*soap.DUStateChangeComplete)
	}

	got := change("inst-1", soap.DUOperation{Op: "Install", URL: files.URL + "/pkg/webapp_1.0.2_arm.ipk", UUID: uuid},
		soap.DUOperation{Op: "Install", URL: files.URL + "/pkg/missing_1.0.ipk"},
		soap.DUOperation{Op: "Install", URL: files.URL + "/pkg/x_1.0.ipk", UUID: "not-a-uuid"})
	assert.Equal(t, "inst-1", got.CommandKey)
	require.Len(t, got.Results, 3, "one result per operation, in order")
	r := got.Results[0]
	assert.Equal(t, 0, r.Fault.FaultCode)
	assert.Equal(t, "Installed", r.CurrentState)
	assert.Equal(t, uuid, r.UUID)
	assert.Equal(t, "1.0.2", r.Version)
	assert.Equal(t, "Device.SoftwareModules.DeploymentUnit.1", r.DeploymentUnitRef)
	assert.Equal(t, "Device.SoftwareModules.ExecutionUnit.1", r.ExecutionUnitRefList)
	assert.Equal(t, 9016, got.Results[1].Fault.FaultCode, "the file server's 404")
	assert.Equal(t, "Failed", got.Results[1].CurrentState)
	assert.Equal(t, 9022, got.Results[2].Fault.FaultCode, "a malformed UUID")
	get := c.Tree.MustGet
	assert.Equal(t, "webapp", get(du+"1.Name"))
	assert.Equal(t, "Installed", get(du+"1.Status"))
	assert.Equal(t, "Device.SoftwareModules.ExecEnv.1", get(du+"1.ExecutionEnvRef"))
	assert.Equal(t, "1", get("Device.SoftwareModules.DeploymentUnitNumberOfEntries"))
	assert.Equal(t, "webapp", get("Device.SoftwareModules.ExecutionUnit.1.Name"))
	assert.Equal(t, "Up", get("Device.SoftwareModules.ExecEnv.1.Status"))

	got = change("dup", soap.DUOperation{Op: "Install", URL: files.URL + "/pkg/webapp_1.0.2.ipk", UUID: uuid})
	assert.Equal(t, 9026, got.Results[0].Fault.FaultCode, "the UUID is installed already")

	got = change("upd", soap.DUOperation{Op: "Update", UUID: uuid, URL: files.URL + "/pkg/webapp_1.1.0.ipk"})
	require.Equal(t, 0, got.Results[0].Fault.FaultCode, "%+v", got.Results[0])
	assert.Equal(t, "1.1.0", got.Results[0].Version)
	assert.Equal(t, "1.1.0", get(strings.TrimPrefix(got.Results[0].DeploymentUnitRef, "")+".Version"))
	assert.Equal(t, "1", get("Device.SoftwareModules.DeploymentUnitNumberOfEntries"))

	got = change("rm", soap.DUOperation{Op: "Uninstall", UUID: uuid}, soap.DUOperation{Op: "Uninstall", UUID: uuid})
	assert.Equal(t, "Uninstalled", got.Results[0].CurrentState)
	assert.Equal(t, 0, got.Results[0].Fault.FaultCode)
	assert.Equal(t, 9028, got.Results[1].Fault.FaultCode, "gone after the first")
	assert.Equal(t, "0", get("Device.SoftwareModules.DeploymentUnitNumberOfEntries"))
	assert.Equal(t, "0", get("Device.SoftwareModules.ExecutionUnitNumberOfEntries"))

	// Delivered: no event is left for a later session.
	for range 2 {
		_, err = call(ctx, t, acs, c, id, &soap.GetParameterValues{ParameterNames: []string{"Device.DeviceInfo.UpTime"}})
		require.NoError(t, err)
	}
	assert.False(t, hasEventCode(acs.Device(id).LastInform(), "11 DU STATE CHANGE COMPLETE"))
	assert.Len(t, acs.Device(id).DUChanges, 4, "each DUStateChangeComplete sent once")
}

// call sends one request through a Connection Request and waits for its
// answer.
func call(ctx context.Context, t *testing.T, acs *cwmptest.ACS, c *CPE, id string, m soap.Message) (soap.Message, error) {
	t.Helper()
	cl := acs.Enqueue(id, m)
	for {
		status, err := cwmptest.ConnectionRequest(ctx, c.Tree.MustGet(ms+"ConnectionRequestURL"), c.Tree.MustGet(ms+"ConnectionRequestUsername"),
			c.Tree.MustGet(ms+"ConnectionRequestPassword"))
		if err != nil {
			return nil, err
		}
		if status == http.StatusOK {
			break
		}
		// 503: the Connection Request rate limit (10, then one every 3 s).
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return cl.Wait(ctx)
}

// A virtual failure and an autonomous change the device reports itself,
// through the policy of ManagementServer.DUStateChangeComplPolicy.
func TestChangeDUStateFailureAndAutonomous(t *testing.T) {
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x")) }))
	defer files.Close()
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	c := swCPE(t, acs, t.TempDir(), &swmod.Virtual{Fail: map[string]int{"install": 9027}})
	testrun.Go(t, c.Run)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id := "00D09E-SW1"
	_, err = acs.WaitInform(ctx, id, 1)
	require.NoError(t, err)
	_, err = call(ctx, t, acs, c, id, &soap.ChangeDUState{CommandKey: "k", Operations: []soap.DUOperation{{Op: "Install", URL: files.URL + "/a_1.0.ipk"}}})
	require.NoError(t, err)
	require.NoError(t, acs.WaitFor(ctx, func(a *cwmptest.ACS) bool { return len(a.Devs()[id].DUChanges) == 1 }))
	r := acs.Device(id).DUChanges[0].(*soap.DUStateChangeComplete).Results[0]
	assert.Equal(t, 9027, r.Fault.FaultCode)
	assert.Equal(t, "System Resources Exceeded", r.Fault.FaultString)

	// The policy is off by default: nothing is sent.
	require.NoError(t, c.SWMod.Changed("Install", swmod.Unit{Name: "local", Version: "2"}, ""))
	assert.Equal(t, "1", c.Tree.MustGet("Device.SoftwareModules.DeploymentUnitNumberOfEntries"))
	require.NoError(t, c.Tree.Set("Device.ManagementServer.DUStateChangeComplPolicy.Enable", "true"))
	require.NoError(t, c.SWMod.Changed("Uninstall", swmod.Unit{Name: "local"}, ""))
	require.NoError(t, acs.WaitFor(ctx, func(a *cwmptest.ACS) bool { return len(a.Devs()[id].DUChanges) == 2 }))
	auto := acs.Device(id).DUChanges[1].(*soap.AutonomousDUStateChangeComplete)
	assert.Equal(t, "Uninstall", auto.Results[0].OperationPerformed)
	assert.Equal(t, "Uninstalled", auto.Results[0].CurrentState)
	assert.True(t, hasEventCode(acs.Device(id).LastInform(), "12 AUTONOMOUS DU STATE CHANGE COMPLETE"))
}

func hasEventCode(inf *soap.Inform, code string) bool {
	for _, e := range inf.Event {
		if e.EventCode == code {
			return true
		}
	}
	return false
}

// A root without SoftwareModules does not offer ChangeDUState.
func TestNoChangeDUStateOnDevice11(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	c, err := Build(Config{DataModel: "Device:1.1", StateDir: t.TempDir(), ConnReqListen: "127.0.0.1:0",
		Factory: map[string]string{ms + "URL": acs.URL, "Device.DeviceInfo.ManufacturerOUI": "00D09E",
			"Device.DeviceInfo.SerialNumber": "SW0", ms + "PeriodicInformEnable": "false"}})
	require.NoError(t, err)
	testrun.Go(t, c.Run)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = acs.WaitInform(ctx, "00D09E-SW0", 1)
	require.NoError(t, err)
	resp, err := call(ctx, t, acs, c, "00D09E-SW0", &soap.GetRPCMethods{})
	require.NoError(t, err)
	assert.NotContains(t, resp.(*soap.GetRPCMethodsResponse).MethodList, "ChangeDUState")
	_, err = call(ctx, t, acs, c, "00D09E-SW0", &soap.ChangeDUState{Operations: []soap.DUOperation{{Op: "Uninstall", UUID: "6ba7b810-9dad-11d1-80b4-00c04fd430c8"}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "9000", "Method not supported")
}
