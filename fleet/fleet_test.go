package fleet

import (
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cpe"
	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/schemas"
	"github.com/cwmp-agent/cwmp-agent/soap"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

func base(acsURL string) cpe.Config {
	return cpe.Config{Root: "Device", Factory: map[string]string{
		"Device.ManagementServer.URL":                    acsURL,
		"Device.DeviceInfo.ManufacturerOUI":              "00D09E",
		"Device.DeviceInfo.ProductClass":                 "Sim",
		"Device.ManagementServer.PeriodicInformEnable":   "true",
		"Device.ManagementServer.PeriodicInformInterval": "3600",
	}, Agent: cwmp.Config{RetryMinimumWait: time.Second, RetryIntervalMultiplier: 1500, ResponseTimeout: 10 * time.Second}}
}

func runFleet(t *testing.T, f *Fleet) context.CancelFunc {
	t.Helper()
	return testrun.Go(t, f.Run)
}

// TestFleet200: 200 CPEs complete BOOTSTRAP, one answers a
// GetParameterValues after an HTTP Connection Request through the shared
// listener, another a UDP Connection Request routed by `un`; then the ACS
// fails with 500 for a while and every CPE backs off, keeps its events and
// recovers, with no crash.
func TestFleet200(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	acs.Lean(true)
	f, err := New(Config{Count: 200, Base: base(acs.URL), CRListen: "127.0.0.1:0", UDPListen: "127.0.0.1:0", Rate: 400})
	require.NoError(t, err)
	runFleet(t, f)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, acs.WaitFor(ctx, func(a *cwmptest.ACS) bool {
		n := 0
		for _, d := range a.Devs() {
			if d.Sessions >= 1 {
				n++
			}
		}
		return n == 200
	}), "every CPE completes its first session")
	for _, d := range acs.Devices() {
		// The first Inform: a CPE whose random periodic phase falls in
		// these seconds has informed again since (200 CPEs, an hour's
		// interval: about one run in ten).
		infs := acs.Device(d).Informs
		require.NotEmpty(t, infs)
		inf := infs[0]
		codes := []string{}
		for _, e := range inf.Event {
			codes = append(codes, e.EventCode)
		}
		assert.Contains(t, codes, "0 BOOTSTRAP", d)
	}
	// The CPE hears the end of its session just after the ACS.
	require.Eventually(t, func() bool { return f.Up() == 200 }, 10*time.Second, 10*time.Millisecond)

	// An HTTP Connection Request to one chosen CPE, through the shared port.
	d := f.Device("SIM000042")
	require.NotNil(t, d)
	id := "00D09E-Sim-SIM000042"
	crURL := d.CPE.Tree.MustGet("Device.ManagementServer.ConnectionRequestURL")
	assert.True(t, strings.HasPrefix(crURL, "http://"+f.CRAddr().String()+"/"), crURL)
	call := acs.Enqueue(id, &soap.GetParameterValues{ParameterNames: []string{"Device.DeviceInfo.SerialNumber"}})
	status, err := cwmptest.ConnectionRequest(ctx, crURL, "SIM000042", "cr-SIM000042")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	resp, err := call.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, "SIM000042", resp.(*soap.GetParameterValuesResponse).ParameterList[0].Value)
	// Another CPE's credentials do not open this one.
	status, _ = cwmptest.ConnectionRequest(ctx, crURL, "SIM000043", "cr-SIM000043")
	assert.Equal(t, http.StatusUnauthorized, status)
	res, err := http.Get("http://" + f.CRAddr().String() + "/nope")
	require.NoError(t, err)
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusNotFound, res.StatusCode)

	// A UDP Connection Request routed by `un`.
	udp := f.UDPAddr().String()
	assert.Equal(t, udp, f.Device("SIM000007").CPE.Tree.MustGet("Device.ManagementServer.UDPConnectionRequestAddress"))
	msg := tr111.FormatUDPConnRequest(udp, uint64(time.Now().Unix()), "req-1", "SIM000007", "cn", "cr-SIM000007")
	sendUDP(t, udp, msg)
	_, err = acs.WaitEvent(ctx, "00D09E-Sim-SIM000007", "6 CONNECTION REQUEST")
	require.NoError(t, err, "the UDP Connection Request reached its CPE")
	sendUDP(t, udp, tr111.FormatUDPConnRequest(udp, uint64(time.Now().Unix())+1, "req-2", "SIM000008", "cn", "wrong"))
	require.Eventually(t, func() bool { return f.Stats.udpDropped.Load() >= 1 }, 5*time.Second, 10*time.Millisecond)

	// The ACS fails for a while: back-off, no crash, events kept.
	acs.FailInforms(1<<30, http.StatusInternalServerError)
	for _, s := range []string{"SIM000001", "SIM000002", "SIM000003"} {
		f.Device(s).CPE.Agent.Trigger(cwmp.EventPeriodic, "")
	}
	require.Eventually(t, func() bool { return f.Report(time.Now()).Errors >= 3 }, 20*time.Second, 20*time.Millisecond)
	assert.Less(t, f.Up(), 200)
	acs.FailInforms(0, 0)
	_, err = acs.WaitEvent(ctx, "00D09E-Sim-SIM000001", "2 PERIODIC")
	require.NoError(t, err, "the event was kept and delivered after the back-off")
	require.Eventually(t, func() bool { return f.Up() == 200 }, 30*time.Second, 50*time.Millisecond)
	r := f.Report(time.Now())
	assert.GreaterOrEqual(t, r.Sessions, uint64(203))
	assert.Equal(t, uint64(200), r.Events["0 BOOTSTRAP"])
	assert.Greater(t, r.LatencyMS["p99"], 0.0)
	assert.Greater(t, r.RSSPerCPE, uint64(0))
}

func TestTemplate(t *testing.T) {
	in := `# a dump of a set-top box
{"name":"Device.DeviceInfo.ModelName","type":"xsd:string","value":"STB-9000"}
{"name":"Device.DeviceInfo.UpTime","type":"xsd:unsignedInt","value":"12345"}
{"name":"Device.LAN.DHCPOptionNumberOfEntries","type":"xsd:unsignedInt","value":"2"}
Device.LAN.DHCPOption.2.Tag = 60
Device.LAN.DHCPOption.2.Value = dGVzdA==
Device.X_VENDOR_Thing = 1
Device.ManagementServer.PeriodicInformInterval = zero
Device.DeviceInfo.Description =
`
	tp, err := ParseTemplate(strings.NewReader(in), schemas.Device())
	require.NoError(t, err)
	assert.Equal(t, "dump", tp.Format)
	assert.Equal(t, map[string]string{"Device.DeviceInfo.ModelName": "STB-9000", "Device.LAN.DHCPOption.2.Tag": "60",
		"Device.LAN.DHCPOption.2.Value": "dGVzdA==", "Device.DeviceInfo.Description": "", "Device.X_VENDOR_Thing": "1",
		"Device.DeviceInfo.UpTime": "12345"}, tp.Values)
	assert.Equal(t, map[string]int{"derived (NumberOfEntries)": 1, "value refused by its type": 1}, tp.Skipped)
	assert.Equal(t, []string{"Device.X_VENDOR_Thing"}, tp.Own(), "a vendor's parameter is the device's own")

	for _, bad := range []string{"Device.DeviceInfo.ModelName", "{\"name\": 3}", "Device. = x"} {
		_, err := ParseTemplate(strings.NewReader(bad), schemas.Device())
		assert.ErrorContains(t, err, "template line 1", bad)
	}
}

// FuzzTemplate: any template file gives a template or an error naming a
// line; what parses builds a tree.
func FuzzTemplate(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzTemplate")
	f.Fuzz(func(t *testing.T, b []byte) {
		tp, err := ParseTemplate(strings.NewReader(string(b)), schemas.Device())
		if err != nil {
			if !strings.Contains(err.Error(), "template") {
				t.Fatalf("an error that names nothing: %v", err)
			}
			return
		}
		for k := range tp.Values {
			if !strings.HasPrefix(k, "Device.") {
				t.Fatalf("kept %q", k)
			}
		}
	})
}

func sendUDP(t *testing.T, addr string, msg []byte) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	require.NoError(t, err)
	defer c.Close()
	for i := 0; i < 3; i++ { // an ACS sends three copies
		_, err = c.Write(msg)
		require.NoError(t, err)
	}
}

// TestFleetPersistedRestart: with a state directory, a restarted fleet's
// CPEs send 1 BOOT, not 0 BOOTSTRAP, and keep their Connection Request
// paths.
func TestFleetPersistedRestart(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	dir := t.TempDir()
	cfg := Config{Count: 5, Base: base(acs.URL), StateDir: dir, CRListen: "127.0.0.1:0"}
	f, err := New(cfg)
	require.NoError(t, err)
	path := f.Device("SIM000003").CPE.ConnReq.Path
	stop := runFleet(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, acs.WaitSessions(ctx, "00D09E-Sim-SIM000003", 1))
	require.Eventually(t, func() bool { return f.Up() == 5 }, 10*time.Second, 10*time.Millisecond)
	stop()

	f2, err := New(cfg)
	require.NoError(t, err)
	assert.Equal(t, path, f2.Device("SIM000003").CPE.ConnReq.Path, "the Connection Request path is kept")
	runFleet(t, f2)
	inf, err := acs.WaitInform(ctx, "00D09E-Sim-SIM000003", 2)
	require.NoError(t, err)
	var codes []string
	for _, e := range inf.Event {
		codes = append(codes, e.EventCode)
	}
	assert.Contains(t, codes, "1 BOOT")
	assert.NotContains(t, codes, "0 BOOTSTRAP")
}

// sourceListener records the source address of every accepted connection.
type sourceListener struct {
	net.Listener
	mu   sync.Mutex
	seen map[string]int
}

func (l *sourceListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		l.mu.Lock()
		l.seen[host]++
		l.mu.Unlock()
	}
	return c, err
}

// TestFleetSourceAddresses: with SourceIPs each CPE's sessions come from
// its own address of the network.
func TestFleetSourceAddresses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	sl := &sourceListener{Listener: ln, seen: map[string]int{}}
	acs := cwmptest.Serve(sl)
	defer acs.Close()
	acs.Lean(true)
	_, network, _ := net.ParseCIDR("127.7.0.0/30") // two host addresses
	f, err := New(Config{Count: 4, Base: base(acs.URL), SourceIPs: network})
	require.NoError(t, err)
	runFleet(t, f)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, acs.WaitFor(ctx, func(a *cwmptest.ACS) bool { return len(a.Devs()) == 4 }))
	require.NoError(t, acs.WaitFor(ctx, func(a *cwmptest.ACS) bool {
		for _, d := range a.Devs() {
			if d.Sessions < 1 {
				return false
			}
		}
		return true
	}))
	sl.mu.Lock()
	defer sl.mu.Unlock()
	assert.Equal(t, map[string]int{"127.7.0.1": 2, "127.7.0.2": 2}, sl.seen,
		"CPE i uses the network's (i mod 2)+1th host address; never the network or broadcast address")
}

func TestNthAddr(t *testing.T) {
	_, n, _ := net.ParseCIDR("10.0.0.0/24")
	assert.Equal(t, "10.0.0.1", nthAddr(n, 0).String())
	assert.Equal(t, "10.0.0.254", nthAddr(n, 253).String())
	assert.Equal(t, "10.0.0.1", nthAddr(n, 254).String(), "wraps before the broadcast address")
	_, one, _ := net.ParseCIDR("10.0.0.9/32")
	assert.Equal(t, "10.0.0.9", nthAddr(one, 5).String())
	_, v6, _ := net.ParseCIDR("2001:db8::/64")
	assert.Nil(t, nthAddr(v6, 0))
}

// TestFleetHonoursRetryAfter: an ACS above its limit answers 503 with
// Retry-After (GenieACS: 60 s above 20 concurrent sessions). Each CPE
// turned away waits that long before trying again, and the report counts
// the answers and shows no early retry.
func TestFleetHonoursRetryAfter(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	acs.Lean(true)
	acs.BusyInforms(8, 3)
	f, err := New(Config{Count: 20, Base: base(acs.URL), CRListen: "127.0.0.1:0", Rate: 0})
	require.NoError(t, err)
	begin := time.Now()
	runFleet(t, f)
	require.Eventually(t, func() bool { return f.Up() == 20 }, 30*time.Second, 20*time.Millisecond)
	r := f.Report(time.Now())
	assert.Equal(t, uint64(8), r.ACSBusy.Answers)
	assert.Equal(t, uint64(3), r.ACSBusy.RetryAfterMaxSec)
	assert.Equal(t, uint64(0), r.ACSBusy.RetriedEarly)
	assert.Equal(t, map[string]uint64{"http 503": 8}, r.ErrorKinds)
	assert.GreaterOrEqual(t, time.Since(begin), 3*time.Second, "the CPEs turned away came back after Retry-After, not after the 1 s back-off")
}

// TestIdleCPEsHoldOneGoroutine: between sessions a virtual CPE holds one
// goroutine (its agent's, waiting for the next instant); its notify and
// diagnostics engines and its transfer runner hold none, and its sessions
// ran on workers shared by the fleet. Memory per CPE
// at 100,000 CPEs depends on it.
func TestIdleCPEsHoldOneGoroutine(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	acs.Lean(true)
	const n = 300
	before := runtime.NumGoroutine()
	// At this rate few sessions overlap: the session workers that linger
	// after them (cwmp's pool, shared by every CPE) stay few.
	f, err := New(Config{Count: n, Base: base(acs.URL), Rate: 300})
	require.NoError(t, err)
	runFleet(t, f)
	require.Eventually(t, func() bool { return f.Up() == n }, time.Minute, 20*time.Millisecond)
	// Sessions end, then their connections' goroutines go.
	require.Eventually(t, func() bool { return runtime.NumGoroutine()-before <= n+10 }, 10*time.Second, 50*time.Millisecond,
		"%d goroutines for %d idle CPEs and the session workers", runtime.NumGoroutine()-before, n)
	// A Connection Request still reaches an idle CPE, and it goes idle again.
	d := f.Devices()[7]
	d.CPE.Agent.ConnectionRequest()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, acs.WaitSessions(ctx, "00D09E-Sim-"+d.Serial, 2))
	require.Eventually(t, func() bool { return runtime.NumGoroutine()-before <= n+10 }, 10*time.Second, 50*time.Millisecond)
}
