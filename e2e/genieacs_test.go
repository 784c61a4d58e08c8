package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cpe/control"
	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/genieacs"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/netlab"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testbin"
	"github.com/cwmp-agent/cwmp-agent/schemas"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

func freeTCP(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// eventually polls cond every 100 ms for up to d.
func eventually(t *testing.T, d time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, d, 100*time.Millisecond, append([]any{msg}, args...)...)
}

// rootCase is one data model the agent serves, as the lifecycle drives it.
type rootCase struct {
	model               string
	root, class, serial string
	table               string // a table the ACS may add to and delete from
	spv                 string // a writable parameter no provision touches
	limit               string // a TR-111 NotificationLimit of ManagementServer
}

// TestGenieACSLifecycle drives each root the agent serves through what an
// operator does with GenieACS, with GenieACS's own first-run presets and
// provisions installed: bootstrap, a full refresh, parameter tasks,
// objects, a Connection Request, a firmware download from genieacs-fs,
// reboot and factory reset. Each step is checked at both ends.
func TestGenieACSLifecycle(t *testing.T) {
	acs := genieacs.Start(t, genieacs.Options{})
	require.NoError(t, acs.InstallDefaults())
	for _, rc := range []rootCase{
		{"Device:1.1", "Device", "Box", "GA-DEV-1", "Device.LAN.DHCPOption.", "Device.DeviceInfo.ProvisioningCode", "UDPConnectionRequestAddressNotificationLimit"},
		{"InternetGatewayDevice:1.2", "InternetGatewayDevice", "HomeGW", "GA-IGD-1", "InternetGatewayDevice.Layer3Forwarding.Forwarding.", "InternetGatewayDevice.DeviceInfo.ProvisioningCode", "UDPConnectionRequestAddressNotificationLimit"},
		{"Device:2.19", "Device", "TR181GW", "GA-TR181-1", "Device.NAT.PortMapping.", "Device.DeviceInfo.ProvisioningCode", "ManageableDeviceNotificationLimit"},
	} {
		t.Run(rc.model, func(t *testing.T) { lifecycle(t, acs, rc) })
	}
}

func lifecycle(t *testing.T, acs *genieacs.Lab, rc rootCase) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "firmware-applied")
	hook := filepath.Join(dir, "firmware-hook")
	require.NoError(t, os.WriteFile(hook, []byte("#!/bin/sh\necho \"$1 $2\" > "+marker+"\n"), 0o755))
	cfg := fmt.Sprintf(`acs: {url: "%s"}
device: {data_model: "%s", oui: 00D09E, product_class: %s, serial_number: %s, software_version: "1.0"}
state_dir: {dir}/state
connection_request: {listen: "127.0.0.1:%d"}
udp_connection_request: {listen: "127.0.0.1:0"}
control: {socket: {dir}/agent.sock}
hooks: {firmware: %s}
log: {level: debug}
`, acs.CWMP, rc.model, rc.class, rc.serial, freeTCP(t), hook)
	agent := netlab.StartAgent(t, "", dir, cfg)
	id := genieacs.DeviceID("00D09E", rc.class, rc.serial)
	debug := acs.LogFile("debug.yaml")
	ms := rc.root + ".ManagementServer."

	// 1. BOOTSTRAP accepted, listed under its ID, the provisions ran.
	var doc map[string]any
	eventually(t, 30*time.Second, func() bool {
		doc, _ = acs.Device(id)
		v, _ := genieacs.Value(doc, ms+"PeriodicInformInterval")
		return v == "300" // the inform provision's value
	}, "the device is listed and the inform provision ran")
	assert.Equal(t, id, doc["_id"])
	require.NotEmpty(t, informs(t, debug, id))
	assert.True(t, hasEvent(informs(t, debug, id)[0], "0 BOOTSTRAP"))
	assert.Equal(t, "300", agent.Get(ms+"PeriodicInformInterval"), "the provision's write reached the agent")
	assert.Equal(t, id, agent.Get(ms+"ConnectionRequestUsername"), "GenieACS's inform provision names the device")
	noFaults(t, acs, id)

	// 2. A refresh of the whole root: GenieACS holds exactly the agent's tree.
	code, _, err := acs.Task(id, map[string]any{"name": "refreshObject", "objectName": rc.root}, true, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, "the refresh is done")
	doc, err = acs.Device(id)
	require.NoError(t, err)
	sameTree(t, agent, doc, rc.model)
	noFaults(t, acs, id)

	// 3. setParameterValues and getParameterValues, kept across a restart.
	code, _, err = acs.Task(id, map[string]any{"name": "setParameterValues", "parameterValues": []any{
		[]any{rc.spv, "GA-PC-7", "xsd:string"},
		[]any{ms + rc.limit, 42, "xsd:unsignedInt"},
	}}, true, 15*time.Second)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "GA-PC-7", agent.Get(rc.spv))
	assert.Equal(t, "42", agent.Get(ms+rc.limit))
	agent = agent.Restart()
	assert.Equal(t, "GA-PC-7", agent.Get(rc.spv), "persisted across a restart")
	code, _, err = acs.Task(id, map[string]any{"name": "getParameterValues", "parameterNames": []string{rc.spv,
		ms + rc.limit}}, true, 15*time.Second)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	doc, _ = acs.Device(id)
	v, _ := genieacs.Value(doc, rc.spv)
	assert.Equal(t, "GA-PC-7", v)
	v, _ = genieacs.Value(doc, ms+rc.limit)
	assert.Equal(t, "42", v)
	noFaults(t, acs, id)

	// 4. addObject and deleteObject.
	before := instances(t, agent, rc.table)
	code, _, err = acs.Task(id, map[string]any{"name": "addObject", "objectName": strings.TrimSuffix(rc.table, ".")}, true, 15*time.Second)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	after := instances(t, agent, rc.table)
	require.Len(t, after, len(before)+1)
	added := after[len(after)-1]
	doc, _ = acs.Device(id)
	_, ok := genieacs.Param(doc, added)
	assert.True(t, ok, "GenieACS knows the new instance %s", added)
	code, _, err = acs.Task(id, map[string]any{"name": "deleteObject", "objectName": strings.TrimSuffix(added, ".")}, true, 15*time.Second)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, before, instances(t, agent, rc.table))
	doc, _ = acs.Device(id)
	_, ok = genieacs.Param(doc, added)
	assert.False(t, ok, "GenieACS dropped %s", added)
	noFaults(t, acs, id)

	// 5. A task with a Connection Request (Digest) is done within 5 s.
	start := time.Now()
	code, _, err = acs.Task(id, map[string]any{"name": "getParameterValues", "parameterNames": []string{rc.root + ".DeviceInfo.UpTime"}}, true, 5*time.Second)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code, "done within the task's 5 s")
	assert.Less(t, time.Since(start), 5*time.Second)

	// 6. A firmware download from genieacs-fs, applied through the hook.
	image := []byte(strings.Repeat("firmware-image-", 4000))
	require.NoError(t, acs.PutFile("fw-"+rc.serial+".bin", "1 Firmware Upgrade Image", "00D09E", rc.class, "2.0", image))
	code, _, err = acs.Task(id, map[string]any{"name": "download", "file": "fw-" + rc.serial + ".bin"}, true, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	var download *soap.Download
	var complete *soap.TransferComplete
	eventually(t, 60*time.Second, func() bool {
		for _, w := range received(t, debug, id) {
			if tc, ok := w.Msg.(*soap.TransferComplete); ok {
				complete = tc
			}
		}
		return complete != nil
	}, "a TransferComplete reaches GenieACS")
	for _, w := range sent(t, debug, id) {
		if d, ok := w.(*soap.Download); ok {
			download = d
		}
	}
	require.NotNil(t, download, "GenieACS sent the Download")
	assert.Equal(t, 0, complete.FaultStruct.FaultCode)
	assert.Equal(t, download.CommandKey, complete.CommandKey, "the TransferComplete of the task's Download")
	applied, err := os.ReadFile(marker)
	require.NoError(t, err, "the firmware hook ran")
	assert.Contains(t, string(applied), " "+download.CommandKey, "the hook got the CommandKey")
	file := strings.Fields(string(applied))[0]
	got, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, image, got, "the image as genieacs-fs served it")
	eventually(t, 30*time.Second, func() bool {
		doc, _ = acs.Device(id)
		_, ok := genieacs.Param(doc, "Downloads.1.LastDownload")
		return ok
	}, "GenieACS recorded the download")
	noFaults(t, acs, id)
	t.Log("upload: GenieACS 1.2's NBI has no upload task; the agent's Upload is covered against the test ACS")

	// 7. Reboot: M Reboot and 1 BOOT. Factory reset: 0 BOOTSTRAP with a
	// valid ConnectionRequestURL, and no spurious 2 PERIODIC.
	seen := len(informs(t, debug, id))
	code, _, err = acs.Task(id, map[string]any{"name": "reboot"}, true, 15*time.Second)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	// GenieACS answers "CPE already in session" (400) to a session that
	// starts within about 100 ms of the previous one's end, as the 1 BOOT
	// session after a virtual reboot does: the agent then retries with
	// its back-off, so the wait allows for one retry.
	eventually(t, 60*time.Second, func() bool {
		for _, inf := range informs(t, debug, id)[seen:] {
			if hasEvent(inf, "M Reboot") && hasEvent(inf, "1 BOOT") {
				return true
			}
		}
		return false
	}, "M Reboot and 1 BOOT reach GenieACS")
	up, _ := strconv.Atoi(agent.Get(rc.root + ".DeviceInfo.UpTime"))
	assert.Less(t, up, 60, "the uptime counts from the reboot")

	seen = len(informs(t, debug, id))
	code, _, err = acs.Task(id, map[string]any{"name": "factoryReset"}, true, 15*time.Second)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	var boot *soap.Inform
	eventually(t, 60*time.Second, func() bool {
		for _, inf := range informs(t, debug, id)[seen:] {
			if hasEvent(inf, "0 BOOTSTRAP") {
				boot = inf
				return true
			}
		}
		return false
	}, "0 BOOTSTRAP after the factory reset")
	crURL := ""
	for _, p := range boot.ParameterList {
		if p.Name == ms+"ConnectionRequestURL" {
			crURL = p.Value
		}
	}
	assert.True(t, strings.HasPrefix(crURL, "http://127.0.0.1:"), "a valid ConnectionRequestURL in the BOOTSTRAP: %q", crURL)
	assert.Equal(t, "", agent.Get(rc.spv), "factory values are back")
	time.Sleep(2 * time.Second)
	// GenieACS's inform provision gives each device its own
	// PeriodicInformTime, so a periodic Inform may fall inside this test:
	// every 2 PERIODIC must be on that schedule (TR-069 3.2.1), none a
	// spurious one right after the reboot or reset.
	phase, _ := soap.ParseTime(agent.Get(ms + "PeriodicInformTime"))
	interval, _ := strconv.Atoi(agent.Get(ms + "PeriodicInformInterval"))
	for _, inf := range informs(t, debug, id) {
		// A retry (RetryCount > 0) carries the 2 PERIODIC of the attempt
		// GenieACS turned away ("CPE already in session", 400): that
		// attempt, on schedule, is in the log too. The retry comes after
		// the back-off, or sooner with a Connection Request's event.
		if !hasEvent(inf, "2 PERIODIC") || inf.RetryCount > 0 {
			continue
		}
		onSchedule := false
		if !phase.IsZero() && interval > 0 {
			off := inf.CurrentTime.Sub(phase) % (time.Duration(interval) * time.Second)
			if off < 0 {
				off += time.Duration(interval) * time.Second
			}
			onSchedule = off < 5*time.Second || off > time.Duration(interval)*time.Second-5*time.Second
		}
		assert.True(t, onSchedule, "a 2 PERIODIC off the schedule (PeriodicInformTime %v, interval %d): %v at %v",
			phase, interval, eventCodes(inf), inf.CurrentTime)
	}
	// GenieACS reaches it at the announced URL again.
	code, _, err = acs.Task(id, map[string]any{"name": "getParameterValues", "parameterNames": []string{ms + "ConnectionRequestURL"}}, true, 15*time.Second)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code, "a Connection Request after the factory reset works")
	noFaults(t, acs, id)
}

// sent decodes what GenieACS answered the device (its RPCs).
func sent(t *testing.T, debugFile, device string) []soap.Message {
	t.Helper()
	var out []soap.Message
	for _, w := range outgoing(t, debugFile, device) {
		out = append(out, w)
	}
	return out
}

func noFaults(t *testing.T, acs *genieacs.Lab, id string) {
	t.Helper()
	fs, err := acs.Faults(id)
	require.NoError(t, err)
	assert.Empty(t, fs, "GenieACS holds no fault for %s", id)
}

// instances lists the instance paths of a table, from the agent.
func instances(t *testing.T, a *netlab.Agent, table string) []string {
	t.Helper()
	r, err := a.Do(control.Request{Op: "names", Path: table, NextLevel: true})
	require.NoError(t, err)
	var out []string
	for _, n := range r.Names {
		out = append(out, n.Name)
	}
	return out
}

// sameTree compares GenieACS's copy of the root with the agent's: the same
// objects and parameters, the same writability and types, the same
// values, but for what cannot be the same: computed values (uptime,
// counters, the clock, the log) change between the two reads, hidden ones
// (passwords) read back empty from the CPE while GenieACS keeps what it
// wrote, and dateTimes GenieACS writes with milliseconds.
func sameTree(t *testing.T, a *netlab.Agent, doc map[string]any, model string) {
	t.Helper()
	schema, err := schemas.Model(model)
	require.NoError(t, err)
	root := schema.RootName()
	names, err := a.Do(control.Request{Op: "names", Path: root + "."})
	require.NoError(t, err)
	values, err := a.Do(control.Request{Op: "dump", Path: root + "."})
	require.NoError(t, err)
	agentNames := map[string]bool{root + ".": false}
	for _, n := range names.Names {
		agentNames[n.Name] = n.Writable
	}
	agentValues := map[string]control.Value{}
	for _, v := range values.Values {
		agentValues[v.Name] = v
	}
	genie := map[string]genieacs.Node{}
	for _, n := range genieacs.Flatten(doc, root) {
		genie[n.Path] = n
	}
	for name, writable := range agentNames {
		g, ok := genie[name]
		if !assert.True(t, ok, "GenieACS lacks %s", name) {
			continue
		}
		if name != root+"." {
			assert.Equal(t, writable, g.Writable, "writability of %s", name)
		}
		v, isParam := agentValues[name]
		if !isParam {
			assert.True(t, g.Object, "%s is an object", name)
			continue
		}
		assert.Equal(t, v.Type, g.Type, "type of %s", name)
		def := schema.Param(datamodel.SchemaPath(name))
		switch {
		case def != nil && def.Computed:
		case def != nil && def.Hidden:
			assert.Equal(t, "", v.Value, "%s reads back empty", name)
		case v.Type == "xsd:dateTime":
			at, _ := soap.ParseTime(v.Value)
			gt, _ := soap.ParseTime(g.Value)
			assert.True(t, at.Equal(gt), "%s: agent %s, GenieACS %s", name, v.Value, g.Value)
		default:
			assert.Equal(t, v.Value, g.Value, "value of %s", name)
		}
	}
	for name := range genie {
		_, ok := agentNames[name]
		assert.True(t, ok, "GenieACS has %s, which the agent does not", name)
	}
}
