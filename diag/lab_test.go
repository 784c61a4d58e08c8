package diag_test

import (
	"fmt"
	"io"
	"net/http"
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
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/netlab"
)

// The proofs of the real probes: the agent binary in a namespace at one
// end of a chain of routers (network namespaces), with delays (tc netem,
// or a delay line in user space where the kernel has no netem), an
// nftables rule that drops every fourth answer, tbf rate limits, and real
// peers (an HTTP server, a UDP echo socket, another agent's echo server,
// dnsmasq) at the other end. The tests drive the agent through its control
// socket, as a local user would.

func TestMain(m *testing.M) {
	code := m.Run()
	netlab.RemoveAgentBinary()
	os.Exit(code)
}

func agentConfig(acsHost, extra string) string {
	return fmt.Sprintf(`acs: {url: "http://%s:9/acs", retry_minimum_wait: 30s}
device: {data_model: "Device:2.19", oui: "00D09E", serial_number: DIAG-LAB, product_class: Lab}
state_dir: "{dir}/state"
control: {socket: "{dir}/agent.sock"}
connection_request: {listen: ":7547"}
udp_connection_request: {listen: ""}
periodic_inform: {enable: false}
log: {level: debug}
%s
`, acsHost, extra)
}

// runTest sets the test's parameters and DiagnosticsState Requested in
// one transaction (as a local user; the test starts at once) and waits for
// the state it ends in.
func runTest(t *testing.T, a *netlab.Agent, obj string, params map[string]string, within time.Duration) string {
	t.Helper()
	vals := map[string]string{obj + "DiagnosticsState": "Requested"}
	for k, v := range params {
		vals[obj+k] = v
	}
	_, err := a.Do(control.Request{Op: "set", Values: vals})
	require.NoError(t, err)
	var st string
	require.Eventually(t, func() bool {
		st = a.Get(obj + "DiagnosticsState")
		return st != "Requested" && st != ""
	}, within, 50*time.Millisecond, "%s never ended", obj)
	return st
}

func num(t *testing.T, a *netlab.Agent, path string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(a.Get(path), 64)
	require.NoError(t, err, path)
	return f
}

func within10(t *testing.T, got, want float64, what string) {
	t.Helper()
	t.Logf("%s: %.0f (want %.0f)", what, got, want)
	assert.InDelta(t, want, got, want/10, "%s: %v, want %v within 10%%", what, got, want)
}

// IPPing, TraceRoute and ServerSelection across two routers: 100 ms of
// netem delay beyond the first router, every fourth Echo Reply from the
// server dropped by the first router.
func TestLabPingTraceRouteServerSelection(t *testing.T) {
	c := netlab.NewChain(t, 2)
	c.Delay(1, 100*time.Millisecond) // what the first router forwards toward the server
	a := netlab.StartAgent(t, c.CPE, t.TempDir(), agentConfig(c.ServerAddr(), ""))
	ip := "Device.IP.Diagnostics."

	st := runTest(t, a, ip+"TraceRoute.", map[string]string{"Host": c.ServerAddr(), "NumberOfTries": "2", "Timeout": "1000", "MaxHopCount": "8"}, 30*time.Second)
	require.Equal(t, "Complete", st)
	require.Equal(t, "3", a.Get(ip+"TraceRoute.RouteHopsNumberOfEntries"), "two routers and the server")
	for i, want := range []string{c.HopAddr(1), c.HopAddr(2), c.ServerAddr()} {
		assert.Equal(t, want, a.Get(fmt.Sprintf("%sTraceRoute.RouteHops.%d.Host", ip, i+1)), "hop %d", i+1)
	}
	first, err := strconv.ParseFloat(strings.Split(a.Get(ip+"TraceRoute.RouteHops.1.RTTimes"), ",")[0], 64)
	require.NoError(t, err)
	assert.Less(t, first, 15.0, "the first router is before the delay")
	// TraceRoute reports the last hop's time of two tries: the delay, and
	// whatever scheduling adds on a loaded machine (IPPing's average below
	// is the figure held to 10%).
	rt := num(t, a, ip+"TraceRoute.ResponseTime")
	assert.GreaterOrEqual(t, rt, 100.0)
	assert.Less(t, rt, 150.0)

	c.Nft(c.Routers[0], `table ip lab {
	chain lossy { type filter hook forward priority 0; icmp type echo-reply numgen inc mod 4 == 3 drop; }
}`)
	st = runTest(t, a, ip+"IPPing.", map[string]string{"Host": c.ServerAddr(), "NumberOfRepetitions": "12", "Timeout": "500", "DataBlockSize": "100"}, 30*time.Second)
	require.Equal(t, "Complete", st)
	assert.Equal(t, "9", a.Get(ip+"IPPing.SuccessCount"))
	assert.Equal(t, "3", a.Get(ip+"IPPing.FailureCount"), "every fourth reply dropped")
	assert.Equal(t, c.ServerAddr(), a.Get(ip+"IPPing.IPAddressUsed"))
	within10(t, num(t, a, ip+"IPPing.AverageResponseTime"), 100, "AverageResponseTime (ms)")
	within10(t, num(t, a, ip+"IPPing.AverageResponseTimeDetailed"), 100000, "AverageResponseTimeDetailed (µs)")
	assert.GreaterOrEqual(t, num(t, a, ip+"IPPing.MinimumResponseTime"), 90.0)

	st = runTest(t, a, ip+"ServerSelectionDiagnostics.", map[string]string{"HostList": c.ServerAddr() + "," + c.HopAddr(1) + ",10.77.9.9",
		"Protocol": "ICMP", "NumberOfRepetitions": "2", "Timeout": "300"}, 30*time.Second)
	require.Equal(t, "Complete", st)
	assert.Equal(t, c.HopAddr(1), a.Get(ip+"ServerSelectionDiagnostics.FastestHost"), "the first router answers before the delay")
	assert.Less(t, num(t, a, ip+"ServerSelectionDiagnostics.AverageResponseTime"), 15000.0)

	st = runTest(t, a, ip+"IPPing.", map[string]string{"Host": "no-such-host.invalid"}, 30*time.Second)
	assert.Equal(t, "Error_CannotResolveHostName", st)
}

func serveHTTP(t *testing.T, ns string, addr string) {
	t.Helper()
	ln, err := netlab.Listen(ns, "tcp", addr)
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			_, _ = io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
			return
		}
		n, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/bytes/"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		buf := make([]byte, 64<<10)
		for n > 0 {
			k := min(n, len(buf))
			if _, err := w.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
}

func throughput(t *testing.T, a *netlab.Agent, obj, bytesParam string) float64 {
	t.Helper()
	bom, err := time.Parse(time.RFC3339Nano, a.Get(obj+"BOMTime"))
	require.NoError(t, err)
	eom, err := time.Parse(time.RFC3339Nano, a.Get(obj+"EOMTime"))
	require.NoError(t, err)
	require.True(t, eom.After(bom))
	return num(t, a, obj+bytesParam) * 8 / eom.Sub(bom).Seconds()
}

// DownloadDiagnostics and UploadDiagnostics against an HTTP server beyond a
// router, each direction limited by tbf to 20 Mbit/s.
func TestLabDownloadUpload(t *testing.T) {
	c := netlab.NewChain(t, 1)
	const rate = 20e6
	c.Qdisc(1, false, "tbf rate 20mbit burst 64kb latency 400ms") // server -> router
	c.Qdisc(0, true, "tbf rate 20mbit burst 64kb latency 400ms")  // CPE -> router
	serveHTTP(t, c.Server, c.ServerAddr()+":8080")
	a := netlab.StartAgent(t, c.CPE, t.TempDir(), agentConfig(c.ServerAddr(), ""))
	ip := "Device.IP.Diagnostics."

	dl := ip + "DownloadDiagnostics."
	st := runTest(t, a, dl, map[string]string{"DownloadURL": fmt.Sprintf("http://%s:8080/bytes/5000000", c.ServerAddr()),
		"Interface": "Device.IP.Interface.1", "EnablePerConnectionResults": "true"}, 60*time.Second)
	require.Equal(t, "Complete", st)
	test := num(t, a, dl+"TestBytesReceived")
	assert.Greater(t, test, 5000000.0, "the body and the HTTP headers")
	assert.GreaterOrEqual(t, num(t, a, dl+"TotalBytesReceived"), test, "IP-layer bytes on the interface include the TCP stream")
	within10(t, throughput(t, a, dl, "TestBytesReceived"), rate, "download throughput (bit/s)")
	assert.Equal(t, "1", a.Get(dl+"PerConnectionResultNumberOfEntries"))
	assert.Equal(t, c.ServerAddr(), a.Get(dl+"IPAddressUsed"))
	for _, p := range []string{"TCPOpenRequestTime", "TCPOpenResponseTime", "ROMTime", "BOMTime", "EOMTime"} {
		assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`, a.Get(dl+p), "%s to the microsecond", p)
	}

	ul := ip + "UploadDiagnostics."
	st = runTest(t, a, ul, map[string]string{"UploadURL": fmt.Sprintf("http://%s:8080/upload", c.ServerAddr()),
		"TestFileLength": "5000000"}, 60*time.Second)
	require.Equal(t, "Complete", st)
	assert.Greater(t, num(t, a, ul+"TestBytesSent"), 5000000.0)
	within10(t, throughput(t, a, ul, "TestBytesSent"), rate, "upload throughput (bit/s)")
	assert.Equal(t, "0", a.Get(ul+"TotalBytesSent"), "no Interface: cannot be determined, 0")

	st = runTest(t, a, dl, map[string]string{"DownloadURL": fmt.Sprintf("http://%s:8081/none", c.ServerAddr()), "Interface": ""}, 30*time.Second)
	assert.Equal(t, "Error_InitConnectionFailed", st, "nothing listens there")
}

// UDPEchoDiagnostics against a plain echo socket and against another
// agent's UDPEchoConfig server with Echo Plus.
func TestLabUDPEcho(t *testing.T) {
	c := netlab.NewChain(t, 1)
	c.Delay(1, 100*time.Millisecond)
	pc, err := netlab.ListenPacket(c.Server)("udp", c.ServerAddr()+":7007")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, peer, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], peer)
		}
	}()
	a := netlab.StartAgent(t, c.CPE, t.TempDir(), agentConfig(c.ServerAddr(), ""))
	echo := "Device.IP.Diagnostics.UDPEchoDiagnostics."
	st := runTest(t, a, echo, map[string]string{"Host": c.ServerAddr(), "Port": "7007", "NumberOfRepetitions": "5",
		"InterTransmissionTime": "20", "Timeout": "500", "DataBlockSize": "64", "EnableIndividualPacketResults": "true"}, 30*time.Second)
	require.Equal(t, "Complete", st)
	assert.Equal(t, "5", a.Get(echo+"SuccessCount"))
	within10(t, num(t, a, echo+"AverageResponseTime"), 100000, "UDP echo response time (µs)")
	assert.Equal(t, "5", a.Get(echo+"IndividualPacketResultNumberOfEntries"))
	assert.Equal(t, "0", a.Get(echo+"IndividualPacketResult.1.TestRespSN"), "a plain echo fills in nothing")

	// Another agent, in the server's namespace, runs UDPEchoConfig's server.
	srv := netlab.StartAgent(t, c.Server, t.TempDir(), agentConfig(c.CPEAddr(), ""))
	ec := "Device.IP.Diagnostics.UDPEchoConfig."
	_, err = srv.Do(control.Request{Op: "set", Values: map[string]string{ec + "UDPPort": "7008", ec + "EchoPlusEnabled": "true",
		ec + "SourceIPAddress": c.CPEAddr(), ec + "Enable": "true"}})
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	st = runTest(t, a, echo, map[string]string{"Port": "7008"}, 30*time.Second)
	require.Equal(t, "Complete", st)
	assert.Equal(t, "5", a.Get(echo+"SuccessCount"))
	for i := 1; i <= 5; i++ {
		assert.Equal(t, strconv.Itoa(i), a.Get(fmt.Sprintf("%sIndividualPacketResult.%d.TestRespSN", echo, i)), "Echo Plus numbers its responses")
	}
	assert.Equal(t, "5", srv.Get(ec+"PacketsResponded"))
	assert.Equal(t, "320", srv.Get(ec+"BytesReceived"))
}

// NSLookupDiagnostics against dnsmasq beyond a router.
func TestLabNSLookup(t *testing.T) {
	dnsmasq, err := exec.LookPath("dnsmasq")
	if err != nil {
		t.Skip("dnsmasq not installed (apt-get install dnsmasq-base)")
	}
	c := netlab.NewChain(t, 1)
	dir := t.TempDir()
	cmd := netlab.Command(c.Server, dnsmasq, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--bind-interfaces",
		"--listen-address="+c.ServerAddr(), "--address=/box.lab/10.77.1.99", "--pid-file="+filepath.Join(dir, "pid"), "--user=root")
	out, _ := os.Create(filepath.Join(dir, "dnsmasq.log"))
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	require.Eventually(t, func() bool {
		conn, err := netlab.Dial(c.Server)("udp", c.ServerAddr()+":53")
		if err == nil {
			conn.Close()
		}
		return err == nil
	}, 5*time.Second, 50*time.Millisecond)
	time.Sleep(200 * time.Millisecond)

	a := netlab.StartAgent(t, c.CPE, t.TempDir(), agentConfig(c.ServerAddr(), ""))
	ns := "Device.DNS.Diagnostics.NSLookupDiagnostics."
	st := runTest(t, a, ns, map[string]string{"HostName": "tv.box.lab", "DNSServer": c.ServerAddr(), "NumberOfRepetitions": "2", "Timeout": "2000"}, 30*time.Second)
	require.Equal(t, "Complete", st)
	assert.Equal(t, "2", a.Get(ns+"SuccessCount"))
	assert.Equal(t, "2", a.Get(ns+"ResultNumberOfEntries"))
	assert.Equal(t, "Success", a.Get(ns+"Result.1.Status"))
	assert.Equal(t, "10.77.1.99", a.Get(ns+"Result.1.IPAddresses"))
	assert.Equal(t, "tv.box.lab", a.Get(ns+"Result.1.HostNameReturned"))
	assert.Equal(t, c.ServerAddr(), a.Get(ns+"Result.1.DNSServerIP"))

	st = runTest(t, a, ns, map[string]string{"DNSServer": "10.77.9.9", "NumberOfRepetitions": "1", "Timeout": "300"}, 30*time.Second)
	require.Equal(t, "Complete", st)
	assert.Contains(t, []string{"Error_Timeout", "Error_DNSServerNotAvailable"}, a.Get(ns+"Result.1.Status"))
}
