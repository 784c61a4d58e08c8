package tr111_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cpe/control"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/netlab"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testbin"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/schemas"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// agentBinary builds cwmp-agent once for the lab tests.
func agentBinary(t *testing.T) string {
	bin, err := testbin.Build("cwmp-agent")
	require.NoError(t, err)
	return bin
}

// TestLabStund: the CPE client behind a real NAT against the Debian stund:
// binding discovery, NATDetected, UDPConnectionRequestAddress and
// binding-timeout discovery through RESPONSE-ADDRESS probes.
func TestLabStund(t *testing.T) {
	t.Parallel()
	netlab.Require(t)
	stund, err := exec.LookPath("stund")
	if err != nil {
		t.Skip("stund not installed (apt-get install stun-server)")
	}
	const timeout = 10
	lab := netlab.New(t, netlab.Options{UDPTimeout: timeout, UDPStreamTimeout: timeout})
	srv := lab.Command(lab.WAN, stund, "-h", netlab.WANAddr, "-a", netlab.WANAddr2)
	require.NoError(t, srv.Start())
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })

	tree, err := datamodel.New(schemas.Device(), datamodel.Options{Factory: map[string]string{
		"Device.ManagementServer.URL":                        "http://" + netlab.WANAddr + ":7547/",
		"Device.ManagementServer.STUNEnable":                 "true",
		"Device.ManagementServer.STUNServerAddress":          netlab.WANAddr,
		"Device.ManagementServer.STUNUsername":               "cpe-stund", // stund drops unpadded USERNAMEs
		"Device.ManagementServer.STUNMinimumKeepAlivePeriod": "7",
		"Device.ManagementServer.STUNMaximumKeepAlivePeriod": "13",
	}})
	require.NoError(t, err)
	c, err := tr111.NewClient(tr111.ClientConfig{Store: tree, Root: "Device", ListenAddr: ":7547",
		ListenPacket: lab.ListenPacket(lab.LAN), Dial: lab.Dial(lab.LAN)})
	require.NoError(t, err)
	testrun.Go(t, c.Run)

	var st tr111.State
	require.Eventually(t, func() bool { st = c.State(); return st.Phase == "monitoring" }, 4*time.Minute, 100*time.Millisecond,
		"discovery did not finish: %+v", c.State())
	assert.True(t, st.NAT)
	assert.Equal(t, "true", tree.MustGet("Device.ManagementServer.NATDetected"))
	addr := tree.MustGet("Device.ManagementServer.UDPConnectionRequestAddress")
	assert.True(t, strings.HasPrefix(addr, netlab.GWWAN+":"), "the public address of the binding: %s", addr)
	assertPeriod(t, st.Period, timeout*time.Second, st.Probes, 7, 13)
}

// assertPeriod checks the discovered keep-alive period against the real
// timeout and the probe count against the binary search bound.
func assertPeriod(t *testing.T, period, real time.Duration, probes, min, max int) {
	t.Helper()
	assert.LessOrEqual(t, period, real, "never above the real timeout")
	assert.GreaterOrEqual(t, period, real*85/100, "within the last 15%% below the real timeout: %v", period)
	bound := int(math.Log2(float64(max-min)/1)) + 2
	assert.LessOrEqual(t, probes, bound, "at most log2((max-min)/resolution)+2 probes")
}

// TestLabOwnServer runs the agent binary behind the NAT against the
// project's STUN server and the test ACS: the authenticated BINDING-CHANGE,
// the public binding recorded, the keep-alive period discovered for a 10 s
// and a 14 s conntrack timeout, a UDP Connection Request through the API
// that starts a session, and a new binding after the NAT forgets.
//
// The timeouts are real kernel ones, so the lab takes real time, about
// (log2 of the search range + 1) times the timeout: 10 s is the shortest
// that the 1 s resolution can find within 15 % of (0.95*(T-1) >= 0.85*T),
// and the search ranges are kept a few seconds around the timeouts.
func TestLabOwnServer(t *testing.T) {
	// One case per data model: the TR-111 Part 2 parameters are the same
	// on Device:1.1 and Device:2.19 (TR-181 kept them).
	for _, tc := range []struct {
		timeout, min, max int
		model             string
	}{{10, 7, 13, "Device:1.1"}, {14, 10, 18, "Device:2.19"}} {
		t.Run(fmt.Sprintf("timeout-%ds-%s", tc.timeout, tc.model), func(t *testing.T) {
			t.Parallel()
			netlab.Require(t)
			runLab(t, tc.timeout, tc.min, tc.max, tc.model)
		})
	}
}

func runLab(t *testing.T, timeout, min, max int, model string) {
	bin := agentBinary(t)
	lab := netlab.New(t, netlab.Options{UDPTimeout: timeout, UDPStreamTimeout: timeout, RandomPorts: true})

	// The ACS side, in the WAN namespace: the test ACS and our STUN server.
	ln, err := lab.Listen(lab.WAN, "tcp", netlab.WANAddr+":0")
	require.NoError(t, err)
	acs := cwmptest.Serve(ln)
	t.Cleanup(func() { acs.Close() })
	srv, err := tr111.NewServer(tr111.ServerConfig{Listen: netlab.WANAddr + ":3478", ListenPacket: lab.ListenPacket(lab.WAN)})
	require.NoError(t, err)
	srv.SetCredentials(map[string]tr111.Credential{"cpe-lab": {STUNUsername: "cpe-lab", STUNPassword: "lab-pw", CRUsername: "cr", CRPassword: "cr-pw"}})
	sctx, scancel := context.WithCancel(context.Background())
	sdone := make(chan struct{})
	go func() { srv.Run(sctx); close(sdone) }()
	t.Cleanup(func() { scancel(); <-sdone })
	api := httptest.NewServer(srv.Handler(tr111.APIConfig{Token: "lab-token"}))
	t.Cleanup(api.Close)

	// The CPE, in the LAN namespace.
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	cfg := fmt.Sprintf(`acs: {url: "%s"}
device: {data_model: "%s", oui: 00D09E, product_class: Lab, serial_number: LAB1}
state_dir: %s/state
connection_request: {listen: ":7547", username: cr, password: cr-pw}
udp_connection_request: {listen: ":7547"}
control: {socket: %s}
periodic_inform: {enable: false}
log: {level: debug}
parameters:
  Device.ManagementServer.STUNEnable: true
  Device.ManagementServer.STUNServerAddress: %s
  Device.ManagementServer.STUNServerPort: 3478
  Device.ManagementServer.STUNUsername: cpe-lab
  Device.ManagementServer.STUNPassword: lab-pw
  Device.ManagementServer.STUNMinimumKeepAlivePeriod: %d
  Device.ManagementServer.STUNMaximumKeepAlivePeriod: %d
`, acs.URL, model, dir, sock, netlab.WANAddr, min, max)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "c.yaml"), []byte(cfg), 0o600))
	agent := lab.Command(lab.LAN, bin, "run", "--config", filepath.Join(dir, "c.yaml"))
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	require.NoError(t, err)
	agent.Stderr = logf
	require.NoError(t, agent.Start())
	t.Cleanup(func() {
		agent.Process.Kill()
		agent.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			t.Logf("agent log:\n%s", tail(string(b), 4000))
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	id := "00D09E-Lab-LAB1"
	require.NoError(t, acs.WaitSessions(ctx, id, 1), "the agent reaches the ACS through the NAT")

	state := func() map[string]string {
		r, err := control.Do(sock, control.Request{Op: "call", Name: "stun.state"})
		if err != nil {
			return nil
		}
		return r.Result
	}
	var st map[string]string
	require.Eventually(t, func() bool { st = state(); return st != nil && st["phase"] == "monitoring" }, 5*time.Minute, 200*time.Millisecond,
		"discovery did not finish: %v", state())
	period, _ := strconv.Atoi(st["period_ms"])
	probes, _ := strconv.Atoi(st["probes"])
	assertPeriod(t, time.Duration(period)*time.Millisecond, time.Duration(timeout)*time.Second, probes, min, max)
	assert.Equal(t, "true", st["nat"])

	get := func(p string) string {
		r, err := control.Do(sock, control.Request{Op: "get", Path: p})
		if err != nil || len(r.Values) != 1 {
			return ""
		}
		return r.Values[0].Value
	}
	addr := get("Device.ManagementServer.UDPConnectionRequestAddress")
	assert.True(t, strings.HasPrefix(addr, netlab.GWWAN+":"), addr)
	assert.Equal(t, "true", get("Device.ManagementServer.NATDetected"))

	// The server authenticated the BINDING-CHANGE and recorded the public binding.
	bs := srv.Bindings()
	require.Len(t, bs, 1)
	assert.True(t, bs[0].Authenticated)
	assert.Equal(t, addr, bs[0].Address)

	// A UDP Connection Request through the API reaches the agent and starts a session.
	areq, _ := http.NewRequest(http.MethodPost, api.URL+"/connection-request", strings.NewReader(`{"username":"cpe-lab"}`))
	areq.Header.Set("Authorization", "Bearer lab-token")
	resp, err := http.DefaultClient.Do(areq)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = acs.WaitEvent(ctx, id, "6 CONNECTION REQUEST")
	require.NoError(t, err, "the UDP Connection Request started a session")

	// The NAT forgets the binding: a new one, announced with BINDING-CHANGE.
	require.NoError(t, lab.FlushConntrack())
	require.Eventually(t, func() bool {
		a := get("Device.ManagementServer.UDPConnectionRequestAddress")
		b := srv.Bindings()
		return a != "" && a != addr && len(b) == 1 && b[0].Address == a
	}, 3*time.Minute, 200*time.Millisecond, "a changed binding gives a new UDPConnectionRequestAddress and a BINDING-CHANGE")
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// TestStunClientInterop: the Debian stun client (a plain RFC 3489 client)
// gets correct answers from our server.
func TestStunClientInterop(t *testing.T) {
	client, err := exec.LookPath("stun")
	if err != nil {
		t.Skip("the stun client is not installed (apt-get install stun-client)")
	}
	srv, err := tr111.NewServer(tr111.ServerConfig{Listen: "127.0.0.1:0"})
	require.NoError(t, err)
	defer testrun.Go(t, srv.Run)()
	cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ccancel()
	out, _ := exec.CommandContext(cctx, client, srv.Addr().String(), "-v").CombinedOutput()
	s := string(out)
	assert.Contains(t, s, "MappedAddress = 127.0.0.1:", s)
	assert.Contains(t, s, fmt.Sprintf("SourceAddress = 127.0.0.1:%d", srv.Addr().Port))
	assert.Contains(t, s, fmt.Sprintf("ChangedAddress = 127.0.0.1:%d", srv.Addr().Port), "no secondary: CHANGED-ADDRESS is the primary")
	assert.Contains(t, s, "Primary: Open", "no NAT on loopback")
}
