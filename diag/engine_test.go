package diag

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/clock"
	"github.com/cwmp-agent/cwmp-agent/schemas"
)

const ping2 = "Device.IP.Diagnostics.IPPing."

type rig struct {
	t        *testing.T
	clock    *clock.Fake
	tree     *datamodel.Tree
	eng      *Engine
	complete atomic.Int32
	cancel   context.CancelFunc
	done     chan struct{}
}

func newRig(t *testing.T, s *datamodel.Schema, dir string, p Prober) *rig {
	t.Helper()
	tree, err := datamodel.New(s, datamodel.Options{StateDir: dir})
	require.NoError(t, err)
	require.NoError(t, tree.Load())
	r := &rig{t: t, tree: tree, done: make(chan struct{}), clock: clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	r.eng, err = New(Config{Tree: tree, Prober: p, Complete: func() { r.complete.Add(1) }, Clock: r.clock})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { _ = r.eng.Run(ctx); close(r.done) }()
	t.Cleanup(r.stop)
	return r
}

func (r *rig) stop() {
	r.cancel()
	<-r.done
}

func (r *rig) acs(kv ...string) error {
	var ch []datamodel.Change
	for i := 0; i < len(kv); i += 2 {
		ch = append(ch, datamodel.Change{Path: kv[i], Value: kv[i+1]})
	}
	return r.tree.SetValues(ch, datamodel.SetOptions{Origin: datamodel.OriginACS})
}

// waitComplete waits for n completions, moving the engine's clock on (an
// event comes a second after the session that asked for the test).
func (r *rig) waitComplete(n int32) {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for r.complete.Load() < n && time.Now().Before(deadline) {
		r.clock.Advance(200 * time.Millisecond)
		time.Sleep(5 * time.Millisecond)
	}
	require.Equal(r.t, n, r.complete.Load(), "completions (clock %v, %d timers waiting)", r.clock.Now(), r.clock.Pending())
}

func (r *rig) waitState(path, want string) {
	r.t.Helper()
	require.Eventually(r.t, func() bool { return r.tree.MustGet(path) == want }, 10*time.Second, 5*time.Millisecond,
		"%s never became %s (is %s)", path, want, r.tree.MustGet(path))
}

// The life cycle of TR-106 DiagnosticsState on Device:2's IPPing: the test
// waits for the end of the session, fills the results, says Complete and
// asks for "8 DIAGNOSTICS COMPLETE" once.
func TestPingLifeCycle(t *testing.T) {
	r := newRig(t, schemas.Device219(), t.TempDir(), &Simulated{Latency: 30 * time.Millisecond, Jitter: time.Millisecond})
	require.NoError(t, r.acs(ping2+"Host", "192.0.2.7", ping2+"NumberOfRepetitions", "5", ping2+"DiagnosticsState", "Requested"))
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, "Requested", r.tree.MustGet(ping2+"DiagnosticsState"), "no test before the session ends")
	assert.Equal(t, int32(0), r.complete.Load())

	r.eng.SessionEnded()
	r.waitState(ping2+"DiagnosticsState", "Complete")
	assert.Equal(t, "5", r.tree.MustGet(ping2+"SuccessCount"))
	assert.Equal(t, "0", r.tree.MustGet(ping2+"FailureCount"))
	assert.Equal(t, "192.0.2.7", r.tree.MustGet(ping2+"IPAddressUsed"))
	assert.Contains(t, []string{"29", "30", "31"}, r.tree.MustGet(ping2+"AverageResponseTime"))
	time.Sleep(20 * time.Millisecond)
	assert.Equal(t, int32(0), r.complete.Load(), "the event waits a second after the session (GenieACS's lock)")
	r.waitComplete(1)

	// Modifying a test parameter afterwards sets the state back to None.
	require.NoError(t, r.acs(ping2+"Host", "192.0.2.8"))
	r.waitState(ping2+"DiagnosticsState", "None")
	assert.Equal(t, int32(1), r.complete.Load())

	// The ACS may write Requested (and Canceled) only.
	err := r.acs(ping2+"DiagnosticsState", "Complete")
	require.ErrorIs(t, err, datamodel.ErrInvalidValue)
}

// Canceled while running ends the test with None and no event; Requested
// while running restarts it with the new values (TR-106 DiagnosticsState).
func TestCancelAndRestart(t *testing.T) {
	r := newRig(t, schemas.Device219(), "", &Simulated{Latency: 200 * time.Millisecond, Wait: true})
	require.NoError(t, r.acs(ping2+"Host", "192.0.2.7", ping2+"NumberOfRepetitions", "10", ping2+"DiagnosticsState", "Requested"))
	r.eng.SessionEnded()
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, r.acs(ping2+"DiagnosticsState", "Canceled"))
	r.waitState(ping2+"DiagnosticsState", "None")
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, "None", r.tree.MustGet(ping2+"DiagnosticsState"), "a canceled test writes nothing")
	assert.Equal(t, int32(0), r.complete.Load(), "no 8 DIAGNOSTICS COMPLETE for a canceled test")

	require.NoError(t, r.acs(ping2+"NumberOfRepetitions", "2", ping2+"DiagnosticsState", "Requested"))
	r.eng.SessionEnded()
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, r.acs(ping2+"NumberOfRepetitions", "3", ping2+"DiagnosticsState", "Requested"))
	r.eng.SessionEnded()
	r.waitState(ping2+"DiagnosticsState", "Complete")
	assert.Equal(t, "3", r.tree.MustGet(ping2+"SuccessCount"), "the restarted test's values")
	r.waitComplete(1)
	time.Sleep(300 * time.Millisecond)
	r.clock.Advance(2 * time.Second)
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, int32(1), r.complete.Load(), "one completion for the restarted test")

	// A parameter changed while the test runs terminates it.
	require.NoError(t, r.acs(ping2+"NumberOfRepetitions", "10", ping2+"DiagnosticsState", "Requested"))
	r.eng.SessionEnded()
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, r.acs(ping2+"Timeout", "500"))
	r.waitState(ping2+"DiagnosticsState", "None")
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, int32(1), r.complete.Load())
}

// A test requested when the agent stopped runs at the next start.
func TestRequestedSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, schemas.Device219(), dir, &Simulated{})
	require.NoError(t, r.acs(ping2+"Host", "192.0.2.7", ping2+"DiagnosticsState", "Requested"))
	r.stop()
	r2 := newRig(t, schemas.Device219(), dir, &Simulated{})
	r2.waitState(ping2+"DiagnosticsState", "Complete")
	r2.waitComplete(1)
}

// A host that does not resolve ends in Error_CannotResolveHostName, with
// the event (the test finished, unsuccessfully).
func TestErrorState(t *testing.T) {
	r := newRig(t, schemas.Device219(), "", &Simulated{Unresolvable: "nowhere.invalid"})
	require.NoError(t, r.acs(ping2+"Host", "nowhere.invalid", ping2+"DiagnosticsState", "Requested"))
	r.eng.SessionEnded()
	r.waitState(ping2+"DiagnosticsState", "Error_CannotResolveHostName")
	r.waitComplete(1)
}

// TraceRoute on Device:1.1 (HopHost, NumberOfRouteHops) and Device:2
// (Host, RTTimes, RouteHopsNumberOfEntries): each run's hops are numbered
// from 1.
func TestTraceRouteTables(t *testing.T) {
	r := newRig(t, schemas.Device(), "", &Simulated{Hops: 3})
	tr1 := "Device.LAN.TraceRouteDiagnostics."
	for range 2 {
		require.NoError(t, r.acs(tr1+"Host", "192.0.2.9", tr1+"DiagnosticsState", "Requested"))
		r.eng.SessionEnded()
		r.waitState(tr1+"DiagnosticsState", "Complete")
		assert.Equal(t, "4", r.tree.MustGet(tr1+"NumberOfRouteHops"))
		assert.Equal(t, "192.0.2.9", r.tree.MustGet(tr1+"RouteHops.4.HopHost"))
		require.NoError(t, r.acs(tr1+"Host", "192.0.2.9")) // back to None
	}

	r2 := newRig(t, schemas.Device219(), "", &Simulated{Hops: 2})
	tr2 := "Device.IP.Diagnostics.TraceRoute."
	require.NoError(t, r2.acs(tr2+"Host", "192.0.2.9", tr2+"NumberOfTries", "2", tr2+"DiagnosticsState", "Requested"))
	r2.eng.SessionEnded()
	r2.waitState(tr2+"DiagnosticsState", "Complete")
	assert.Equal(t, "3", r2.tree.MustGet(tr2+"RouteHopsNumberOfEntries"))
	assert.Equal(t, "10.0.1.1", r2.tree.MustGet(tr2+"RouteHops.1.Host"))
	assert.Len(t, strings.Split(r2.tree.MustGet(tr2+"RouteHops.3.RTTimes"), ","), 2)
	assert.NotEqual(t, "0", r2.tree.MustGet(tr2+"ResponseTime"))
}

// Every diagnostic of Device:2.19 that the engine runs completes with the
// simulated prober, and the others refuse Requested.
func TestEveryDiagnosticCompletes(t *testing.T) {
	r := newRig(t, schemas.Device219(), "", &Simulated{})
	ip := "Device.IP.Diagnostics."
	cases := [][]string{
		{ip + "TraceRoute.", "Host", "192.0.2.1"},
		{ip + "DownloadDiagnostics.", "DownloadURL", "http://192.0.2.1/f", "TimeBasedTestMeasurementInterval", "1", "TimeBasedTestDuration", "3"},
		{ip + "UploadDiagnostics.", "UploadURL", "http://192.0.2.1/u", "EnablePerConnectionResults", "true", "NumberOfConnections", "2"},
		{ip + "UDPEchoDiagnostics.", "Host", "192.0.2.1", "EnableIndividualPacketResults", "true"},
		{ip + "ServerSelectionDiagnostics.", "HostList", "192.0.2.1,192.0.2.2"},
		{"Device.DNS.Diagnostics.NSLookupDiagnostics.", "HostName", "example.net", "NumberOfRepetitions", "2"},
	}
	for _, c := range cases {
		kv := []string{}
		for i := 1; i < len(c); i += 2 {
			kv = append(kv, c[0]+c[i], c[i+1])
		}
		kv = append(kv, c[0]+"DiagnosticsState", "Requested")
		require.NoError(t, r.acs(kv...), c[0])
	}
	r.eng.SessionEnded()
	for _, c := range cases {
		r.waitState(c[0]+"DiagnosticsState", "Complete")
	}
	r.waitComplete(int32(len(cases)))
	assert.Equal(t, "3", r.tree.MustGet(ip+"DownloadDiagnostics.IncrementalResultNumberOfEntries"))
	assert.Equal(t, "2", r.tree.MustGet(ip+"UploadDiagnostics.PerConnectionResultNumberOfEntries"))
	assert.Equal(t, "3", r.tree.MustGet(ip+"UDPEchoDiagnostics.IndividualPacketResultNumberOfEntries"))
	assert.Contains(t, []string{"192.0.2.1", "192.0.2.2"}, r.tree.MustGet(ip+"ServerSelectionDiagnostics.FastestHost"))
	assert.Equal(t, "2", r.tree.MustGet("Device.DNS.Diagnostics.NSLookupDiagnostics.SuccessCount"))
	assert.Equal(t, "Success", r.tree.MustGet("Device.DNS.Diagnostics.NSLookupDiagnostics.Result.1.Status"))

	err := r.acs("Device.DSL.Diagnostics.ADSLLineTest.DiagnosticsState", "Requested")
	require.ErrorIs(t, err, datamodel.ErrInvalidValue, "a diagnostic the agent does not run says so at once")
}

// The UDP echo server of UDPEchoConfig answers the Echo Plus client,
// filling in its fields, and counts what it saw.
func TestUDPEchoServerAndClient(t *testing.T) {
	tree, err := datamodel.New(schemas.Device219(), datamodel.Options{})
	require.NoError(t, err)
	eng, err := New(Config{Tree: tree, Prober: &Real{}, EchoServer: true})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = eng.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()
	ec := "Device.IP.Diagnostics.UDPEchoConfig."
	port := freeUDPPort(t)
	require.NoError(t, tree.SetValues([]datamodel.Change{{Path: ec + "UDPPort", Value: port}, {Path: ec + "EchoPlusEnabled", Value: "true"},
		{Path: ec + "Enable", Value: "true"}}, datamodel.SetOptions{Origin: datamodel.OriginACS}))
	require.Eventually(t, func() bool { return eng.EchoAddr() != nil }, 5*time.Second, 5*time.Millisecond)

	p := &Real{}
	res, err := p.UDPEcho(context.Background(), EchoRequest{Target: Target{Host: "127.0.0.1"}, Port: atoi(port, 0), Count: 4,
		Timeout: time.Second, Size: 100, Interval: 10 * time.Millisecond, Individual: true, MaxResults: 10})
	require.NoError(t, err)
	assert.Equal(t, 4, res.Success)
	require.Len(t, res.Packets, 4)
	for i, pk := range res.Packets {
		assert.Equal(t, uint32(i+1), pk.RespSN, "the server numbers its responses")
		assert.GreaterOrEqual(t, pk.RespReplyTime, pk.RespRecvTimestamp)
	}
	assert.Equal(t, "4", tree.MustGet(ec+"PacketsReceived"))
	assert.Equal(t, "400", tree.MustGet(ec+"BytesResponded"))
	assert.NotEqual(t, "0001-01-01T00:00:00Z", tree.MustGet(ec+"TimeFirstPacketReceived"))

	// Only SourceIPAddress's packets are answered.
	require.NoError(t, tree.SetValues([]datamodel.Change{{Path: ec + "SourceIPAddress", Value: "192.0.2.1"}}, datamodel.SetOptions{Origin: datamodel.OriginACS}))
	time.Sleep(50 * time.Millisecond)
	res, err = p.UDPEcho(context.Background(), EchoRequest{Target: Target{Host: "127.0.0.1"}, Port: atoi(port, 0), Count: 2,
		Timeout: 100 * time.Millisecond, Size: 20})
	require.NoError(t, err)
	assert.Equal(t, 0, res.Success)
	assert.Equal(t, 2, res.Failure)
}

func freeUDPPort(t *testing.T) string {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer c.Close()
	return strings.TrimPrefix(c.LocalAddr().String(), "127.0.0.1:")
}
