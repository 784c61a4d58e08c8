package cwmp

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// TestNothingPromisedThatIsNotSaved: with the state directory unwritable
// (full, or gone), an RPC whose effect must outlive a power loss answers
// fault 9002 instead of success. A Reboot was acknowledged without its
// M Reboot on disk, so the Inform after a power loss had 1 BOOT alone.
func TestNothingPromisedThatIsNotSaved(t *testing.T) {
	h := newHarness(t)
	_, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	fs := newFileServer(t)
	n, err := h.call(&soap.AddObject{ObjectName: "Device.LAN.DHCPOption."})
	require.NoError(t, err)
	inst := n.(*soap.AddObjectResponse).InstanceNumber

	// Writes into the state directory now fail, as on a full disk.
	require.Eventually(t, func() bool {
		// The agent's writers create the directory again when it is
		// missing; a file in its place fails them all.
		os.RemoveAll(h.dir)
		return os.WriteFile(h.dir, []byte("not a directory"), 0o600) == nil
	}, 5*time.Second, time.Millisecond)
	defer func() { os.Remove(h.dir); os.MkdirAll(h.dir, 0o700) }()

	for _, m := range []soap.Message{
		&soap.Reboot{CommandKey: "rb"},
		&soap.FactoryReset{},
		&soap.ScheduleInform{DelaySeconds: 30, CommandKey: "si"},
		&soap.Download{CommandKey: "dl", FileType: "1 Firmware Upgrade Image", URL: fs.URL + "/fw.bin"},
		&soap.Upload{CommandKey: "ul", FileType: "2 Vendor Log File", URL: fs.URL + "/upload"},
		&soap.ScheduleDownload{CommandKey: "sd", FileType: "1 Firmware Upgrade Image", URL: fs.URL + "/fw.bin",
			TimeWindowList: []soap.TimeWindow{{WindowStart: 1, WindowEnd: 60, WindowMode: "1 At Any Time"}}},
		&soap.AddObject{ObjectName: "Device.LAN.DHCPOption."},
		&soap.DeleteObject{ObjectName: "Device.LAN.DHCPOption." + itoa(inst) + "."},
		&soap.SetParameterValues{ParameterList: []soap.ParameterValue{{Name: "Device.ManagementServer.PeriodicInformInterval", Value: "77"}}},
	} {
		_, err := h.call(m)
		var f *soap.Fault
		if assert.ErrorAs(t, err, &f, m.Method()) {
			assert.Equal(t, 9002, f.Code, m.Method())
		}
	}
	// Nothing of it took effect: no reboot, no reset, nothing queued.
	time.Sleep(200 * time.Millisecond)
	for _, e := range h.agent.Pending() {
		assert.NotEqual(t, EventMReboot, e.Code)
	}
	resp, err := h.call(&soap.GetAllQueuedTransfers{})
	require.NoError(t, err)
	assert.Empty(t, resp.(*soap.GetAllQueuedTransfersResponse).TransferList)
	assert.NotEqual(t, "77", h.tree.MustGet("Device.ManagementServer.PeriodicInformInterval"))
	boot := h.agent.BootTime()

	// Room again: the same RPCs work.
	require.NoError(t, os.Remove(h.dir))
	require.NoError(t, os.MkdirAll(h.dir, 0o700))
	_, err = h.call(&soap.Reboot{CommandKey: "rb2"})
	require.NoError(t, err)
	inf, err := h.acs.WaitEvent(h.ctx(), testID, "M Reboot")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"1 BOOT", "M Reboot(rb2)"}, events(inf))
	assert.True(t, h.agent.BootTime().After(boot))
}

// TestFactoryResetSurvivesARestart: a FactoryReset answered and then cut
// short by a restart (a power loss) is done at the next start.
func TestFactoryResetSurvivesARestart(t *testing.T) {
	h := newHarness(t)
	_, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	_, err = h.call(&soap.SetParameterValues{ParameterList: []soap.ParameterValue{{Name: "Device.ManagementServer.Username", Value: "changed"}}})
	require.NoError(t, err)
	var serr error
	require.NoError(t, h.agent.tasks.do(h.ctx(), func() {
		h.agent.st.FactoryReset = true // as the handler leaves it on disk
		serr = h.agent.save()
	}))
	require.NoError(t, serr)
	seen := len(h.acs.Device(testID).Informs)
	h.restart()
	inf, err := h.acs.WaitEventAfter(h.ctx(), testID, "0 BOOTSTRAP", seen)
	require.NoError(t, err)
	assert.Contains(t, events(inf), "1 BOOT")
	assert.Equal(t, "", h.tree.MustGet("Device.ManagementServer.Username"))
}

// TestTransferStateHasOneOwner runs a download while other goroutines
// make the agent save its state and read it. The transfer runner once
// wrote the Transfer's File without the agent's lock while another
// goroutine encoded it (go test -race reported it); now the agent's
// goroutine alone touches it.
func TestTransferStateHasOneOwner(t *testing.T) {
	h := newHarness(t)
	_, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	fs := newFileServer(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				h.agent.RequestRPCMethods()
				h.agent.Trigger(EventValueChange, "") // saves agent.json
				h.agent.Pending()
				time.Sleep(time.Millisecond)
			}
		}
	}()
	_, err = h.call(&soap.Download{CommandKey: "cfg", FileType: "3 Vendor Configuration File", URL: fs.URL + "/config.xml"})
	require.NoError(t, err)
	tc := transferFor(t, h, "cfg")
	close(stop)
	wg.Wait()
	assert.Zero(t, tc.FaultStruct.FaultCode)
	got, err := os.ReadFile(filepath.Join(h.dir, "downloads", "transfer-1"))
	require.NoError(t, err)
	assert.Equal(t, "<config/>", string(got))
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

// TestDiagnosticsCompleteSurvivesARestart: 8 DIAGNOSTICS COMPLETE and a
// DUStateChangeComplete the ACS has not taken (its sessions fail) are
// still delivered after a restart, as the results they announce are kept.
func TestDiagnosticsCompleteSurvivesARestart(t *testing.T) {
	h := newHarness(t)
	_, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	h.acs.FailInforms(1<<30, 500)
	h.agent.Trigger(EventDiagnosticsComplete, "")
	h.agent.DUStateChangeComplete([]soap.OpResult{{UUID: "6ba7b810-9dad-11d1-80b4-00c04fd430c8", CurrentState: "Installed"}}, "du-k")
	require.Eventually(t, func() bool {
		n := 0
		for _, e := range h.agent.Pending() {
			if e.Code == EventDiagnosticsComplete || e.Code == EventMChangeDUState {
				n++
			}
		}
		return n == 2
	}, 5*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // a failed session or two
	seen := len(h.acs.Device(testID).Informs)
	h.acs.FailInforms(0, 0)
	h.restart()
	inf, err := h.acs.WaitEventAfter(h.ctx(), testID, "8 DIAGNOSTICS COMPLETE", seen)
	require.NoError(t, err)
	assert.Contains(t, events(inf), "M ChangeDUState(du-k)")
	assert.Contains(t, events(inf), "11 DU STATE CHANGE COMPLETE")
	require.NoError(t, h.acs.WaitFor(h.ctx(), func(a *cwmptest.ACS) bool { return len(a.Devs()[testID].DUChanges) == 1 }))
}
