package cpe

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cpe/control"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// The device's own requests through the control socket: RequestDownload
// with its arguments and AutonomousTransferComplete, each in a session with
// its event; an ACS that faults RequestDownload with 8000 (GenieACS) is
// not asked again.
func TestOwnRequests(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	c := device2(t, acs.URL, "OWN", nil, func(c *Config) { c.ControlSocket = sock })
	testrun.Go(t, c.Run)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := "00D09E-OWN"
	_, err = acs.WaitInform(ctx, id, 1)
	require.NoError(t, err)
	do := func(name string, args map[string]string) {
		t.Helper()
		_, err := control.Do(sock, control.Request{Op: "call", Name: name, Args: args})
		require.NoError(t, err)
	}

	do("request-download", map[string]string{"file_type": "1 Firmware Upgrade Image", "Version": "2.0", "Channel": "beta"})
	inf, err := acs.WaitEvent(ctx, id, "9 REQUEST DOWNLOAD")
	require.NoError(t, err)
	assert.Len(t, inf.Event, 1)
	require.NoError(t, acs.WaitFor(ctx, func(a *cwmptest.ACS) bool { return len(a.Devs()[id].Requests) == 1 }))
	rd := acs.Device(id).Requests[0].(*soap.RequestDownload)
	assert.Equal(t, "1 Firmware Upgrade Image", rd.FileType)
	assert.Equal(t, []soap.Arg{{Name: "Channel", Value: "beta"}, {Name: "Version", Value: "2.0"}}, rd.FileTypeArg)

	do("transfer.autonomous", map[string]string{"file_type": "1 Firmware Upgrade Image", "transfer_url": "http://updates.example/fw.bin", "file_size": "1234"})
	_, err = acs.WaitEvent(ctx, id, "10 AUTONOMOUS TRANSFER COMPLETE")
	require.NoError(t, err)
	require.NoError(t, acs.WaitFor(ctx, func(a *cwmptest.ACS) bool { return len(a.Devs()[id].Requests) == 2 }))
	at := acs.Device(id).Requests[1].(*soap.AutonomousTransferComplete)
	assert.True(t, at.IsDownload)
	assert.Equal(t, uint32(1234), at.FileSize)

	// GenieACS's answer to RequestDownload: fault 8000. The request is
	// dropped, not repeated every session.
	acs.FaultRequests("RequestDownload", 8000)
	do("request-download", map[string]string{"file_type": "3 Vendor Configuration File"})
	require.NoError(t, acs.WaitFor(ctx, func(a *cwmptest.ACS) bool { return len(a.Devs()[id].Requests) == 3 }))
	for range 2 {
		_, err = call(ctx, t, acs, c, id, &soap.GetParameterValues{ParameterNames: []string{"Device.DeviceInfo.UpTime"}})
		require.NoError(t, err)
	}
	assert.Len(t, acs.Device(id).Requests, 3, "not asked again after the 8000 fault")
	for _, e := range acs.Device(id).LastInform().Event {
		assert.NotEqual(t, "9 REQUEST DOWNLOAD", e.EventCode)
	}
}

// An ACS whose GetRPCMethods does not list RequestDownload (GenieACS
// 1.2, whose session breaks on one) is not sent it.
func TestOwnRequestsOnlyWhatTheACSTakes(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	acs.Methods([]string{"Inform", "GetRPCMethods", "TransferComplete"})
	sock := filepath.Join(t.TempDir(), "agent.sock")
	c := device2(t, acs.URL, "OWN2", nil, func(c *Config) { c.ControlSocket = sock })
	testrun.Go(t, c.Run)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := "00D09E-OWN2"
	_, err = acs.WaitInform(ctx, id, 1)
	require.NoError(t, err)
	_, err = control.Do(sock, control.Request{Op: "call", Name: "request-download", Args: map[string]string{"file_type": "1 Firmware Upgrade Image"}})
	require.NoError(t, err)
	_, err = acs.WaitEvent(ctx, id, "9 REQUEST DOWNLOAD")
	require.NoError(t, err)
	require.NoError(t, acs.WaitFor(ctx, func(a *cwmptest.ACS) bool { return a.Devs()[id].Sessions >= 2 }))
	_, err = call(ctx, t, acs, c, id, &soap.GetParameterValues{ParameterNames: []string{"Device.DeviceInfo.UpTime"}})
	require.NoError(t, err)
	assert.Empty(t, acs.Device(id).Requests, "asked GetRPCMethods first, then left it out")
	assert.False(t, hasEventCode(acs.Device(id).LastInform(), "9 REQUEST DOWNLOAD"))
}
