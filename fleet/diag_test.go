package fleet

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// A fleet's CPEs run the diagnostics life cycle with simulated results:
// nothing is sent from the fleet's host (192.0.2.1 is a documentation
// address no probe could reach), yet the ACS gets its 8 DIAGNOSTICS
// COMPLETE and believable figures.
func TestFleetSimulatedDiagnostics(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	b := base(acs.URL)
	b.Root, b.DataModel = "", "Device:2.19"
	f, err := New(Config{Count: 5, Base: b, CRListen: "127.0.0.1:0", Rate: 100})
	require.NoError(t, err)
	runFleet(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.Eventually(t, func() bool { return f.Up() == 5 }, 20*time.Second, 10*time.Millisecond)

	ping := "Device.IP.Diagnostics.IPPing."
	for _, s := range []string{"SIM000002", "SIM000004"} {
		id := "00D09E-Sim-" + s
		call := acs.Enqueue(id, &soap.SetParameterValues{ParameterList: []soap.ParameterValue{
			{Name: ping + "Host", Value: "192.0.2.1", Type: "xsd:string"},
			{Name: ping + "NumberOfRepetitions", Value: "6", Type: "xsd:unsignedInt"},
			{Name: ping + "DiagnosticsState", Value: "Requested", Type: "xsd:string"}}})
		status, err := cwmptest.ConnectionRequest(ctx, f.Device(s).CPE.Tree.MustGet("Device.ManagementServer.ConnectionRequestURL"), s, "cr-"+s)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		_, err = call.Wait(ctx)
		require.NoError(t, err)
	}
	for _, s := range []string{"SIM000002", "SIM000004"} {
		_, err := acs.WaitEvent(ctx, "00D09E-Sim-"+s, "8 DIAGNOSTICS COMPLETE")
		require.NoError(t, err)
		tree := f.Device(s).CPE.Tree
		assert.Equal(t, "Complete", tree.MustGet(ping+"DiagnosticsState"))
		assert.Equal(t, "6", tree.MustGet(ping+"SuccessCount"))
		assert.NotEqual(t, "0", tree.MustGet(ping+"AverageResponseTime"))
	}
	assert.Equal(t, "None", f.Device("SIM000001").CPE.Tree.MustGet(ping+"DiagnosticsState"))
}
