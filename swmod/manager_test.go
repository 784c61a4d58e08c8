package swmod

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/schemas"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

type rig struct {
	tree *datamodel.Tree
	m    *Manager
	mu   sync.Mutex
	got  [][]soap.OpResult
	stop context.CancelFunc
	done chan struct{}
}

func newRig(t *testing.T, dir string, b Backend) *rig {
	t.Helper()
	tree, err := datamodel.New(schemas.Device219(), datamodel.Options{StateDir: dir})
	require.NoError(t, err)
	require.NoError(t, tree.Load())
	r := &rig{tree: tree, done: make(chan struct{})}
	fetch := func(_ context.Context, url, _, _ string) (string, error) {
		if filepath.Base(url) == "gone.ipk" {
			return "", cwmp.Fault(9016, "404")
		}
		p := filepath.Join(t.TempDir(), filepath.Base(url))
		return p, os.WriteFile(p, []byte("pkg"), 0o600)
	}
	r.m, err = New(Config{Tree: tree, Backend: b, Fetch: fetch, StateDir: dir,
		Complete: func(res []soap.OpResult, _ string) { r.mu.Lock(); r.got = append(r.got, res); r.mu.Unlock() }})
	require.NoError(t, err)
	return r
}

func (r *rig) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() { _ = r.m.Run(ctx); close(r.done) }()
	t.Cleanup(func() { cancel(); <-r.done })
}

func (r *rig) results(t *testing.T, n int) [][]soap.OpResult {
	t.Helper()
	require.Eventually(t, func() bool { r.mu.Lock(); defer r.mu.Unlock(); return len(r.got) >= n }, 10*time.Second, 5*time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]soap.OpResult(nil), r.got...)
}

const uuid = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"

// Operations queued in a session wait for its end, and those a restart
// interrupted run at the next start.
func TestQueueWaitsForSessionAndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, dir, &Virtual{})
	r.run(t)
	require.NoError(t, r.m.ChangeDUState([]soap.DUOperation{{Op: "Install", URL: "http://f/app_2.0.ipk", UUID: uuid}}, "k1"))
	time.Sleep(50 * time.Millisecond)
	assert.Empty(t, r.got, "nothing runs before the session ends")
	r.stop()
	<-r.done

	r2 := newRig(t, dir, &Virtual{})
	r2.run(t)
	res := r2.results(t, 1)
	assert.Equal(t, "Installed", res[0][0].CurrentState)
	assert.Equal(t, "2.0", res[0][0].Version)
	assert.Equal(t, "app", r2.tree.MustGet(duTable+"1.Name"))
	_, err := os.Stat(filepath.Join(dir, "swmod.json"))
	require.NoError(t, err)
}

// The faults of TR-069's table for each kind of mistake.
func TestOperationFaults(t *testing.T) {
	r := newRig(t, "", &Virtual{})
	r.run(t)
	ops := []soap.DUOperation{
		{Op: "Install", URL: "http://f/app_1.0.ipk", UUID: uuid},
		{Op: "Install", URL: "http://f/app_1.0.ipk", UUID: uuid},                                        // 9026
		{Op: "Install", URL: "http://f/b_1.0.ipk", ExecutionEnvRef: "Device.SoftwareModules.ExecEnv.9"}, // 9023
		{Op: "Install", URL: "http://f/gone.ipk"},                                                       // 9016
		{Op: "Update", UUID: uuid, URL: "http://f/app_1.0.ipk"},                                         // 9032
		{Op: "Update", UUID: "6ba7b810-9dad-11d1-80b4-00c04fd43000", URL: "http://f/app_1.1.ipk"},       // 9028
		{Op: "Uninstall", UUID: uuid, Version: "9.9"},                                                   // 9028
		{Op: "Uninstall", UUID: "xyz"},                                                                  // 9022
		{Op: "Uninstall", UUID: uuid, ExecutionEnvRef: "Device.SoftwareModules.ExecEnv.1"},              // ok
	}
	require.NoError(t, r.m.ChangeDUState(ops, "k"))
	r.m.SessionEnded()
	res := r.results(t, 1)[0]
	require.Len(t, res, len(ops))
	want := []int{0, 9026, 9023, 9016, 9032, 9028, 9028, 9022, 0}
	for i, w := range want {
		assert.Equal(t, w, res[i].Fault.FaultCode, "operation %d: %+v", i, res[i])
		if w != 0 {
			assert.Equal(t, cwmp.FaultText(w), res[i].Fault.FaultString)
		}
	}
	assert.Equal(t, "Uninstalled", res[8].CurrentState)

	// A disabled execution environment refuses installs (9024).
	require.NoError(t, r.tree.Set(eeTable+"1.Enable", "false"))
	require.NoError(t, r.m.ChangeDUState([]soap.DUOperation{{Op: "Install", URL: "http://f/c_1.0.ipk"}}, ""))
	r.m.SessionEnded()
	assert.Equal(t, 9024, r.results(t, 2)[1][0].Fault.FaultCode)

	for range MaxJobs {
		_ = r.m.ChangeDUState([]soap.DUOperation{{Op: "Uninstall", UUID: uuid}}, "")
	}
	code, _ := cwmp.FaultOf(r.m.ChangeDUState([]soap.DUOperation{{Op: "Uninstall", UUID: uuid}}, ""))
	assert.Equal(t, 9004, code, "the queue is bounded")
}

// The hook is run with the operation, the file and the unit's names, and
// its JSON answer describes the unit; a failing hook names its fault.
func TestHookBackend(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	hook := filepath.Join(dir, "hook")
	script := `#!/bin/sh
echo "$1 $2 uuid=$CWMP_DU_UUID name=$CWMP_DU_NAME version=$CWMP_DU_VERSION" >> ` + log + `
case "$1" in
install) echo '{"name":"tv","version":"3.1","vendor":"Acme","execution_units":[{"name":"tvd","active":true},{"name":"tv-ui"}]}' ;;
update) echo '{"fault":9027,"message":"no room"}'; exit 1 ;;
uninstall) exit 0 ;;
esac
`
	require.NoError(t, os.WriteFile(hook, []byte(script), 0o755))
	r := newRig(t, "", &Hook{Command: hook})
	r.run(t)
	require.NoError(t, r.m.ChangeDUState([]soap.DUOperation{{Op: "Install", URL: "http://f/tv.pkg", UUID: uuid},
		{Op: "Update", UUID: uuid}, {Op: "Uninstall", UUID: uuid}}, ""))
	r.m.SessionEnded()
	res := r.results(t, 1)[0]
	assert.Equal(t, 0, res[0].Fault.FaultCode)
	assert.Equal(t, "3.1", res[0].Version)
	assert.Equal(t, "Device.SoftwareModules.ExecutionUnit.1,Device.SoftwareModules.ExecutionUnit.2", res[0].ExecutionUnitRefList)
	assert.Equal(t, 9027, res[1].Fault.FaultCode)
	assert.Equal(t, "Installed", res[1].CurrentState, "a failed update leaves the unit installed")
	assert.Equal(t, 0, res[2].Fault.FaultCode)
	calls, err := os.ReadFile(log)
	require.NoError(t, err)
	assert.Contains(t, string(calls), "install ")
	assert.Contains(t, string(calls), "uuid="+uuid)
	assert.Contains(t, string(calls), "uninstall tv uuid="+uuid+" name=tv version=3.1")
	assert.Equal(t, "0", r.tree.MustGet("Device.SoftwareModules.ExecutionUnitNumberOfEntries"))
}
