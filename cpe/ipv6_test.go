package cpe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/netlab"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// An ACS reached over IPv6: the session runs to [::1], the announced
// ConnectionRequestURL holds the bracketed IPv6 source address and the
// dual-stack listener's port, a Connection Request over IPv6 starts a
// session, and a Download comes from an IPv6 file server.
func TestIPv6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	acs := cwmptest.Serve(ln)
	defer acs.Close()
	acsURL := "http://" + ln.Addr().String() + "/acs"
	fln, err := net.Listen("tcp6", "[::1]:0")
	require.NoError(t, err)
	files := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("cfg")) }))
	files.Listener = fln
	files.Start()
	defer files.Close()

	c, err := Build(Config{DataModel: "Device:2.19", StateDir: t.TempDir(), ConnReqListen: ":0",
		Factory: map[string]string{ms + "URL": acsURL, "Device.DeviceInfo.ManufacturerOUI": "00D09E",
			"Device.DeviceInfo.SerialNumber": "V6", ms + "PeriodicInformEnable": "false",
			ms + "ConnectionRequestUsername": "acs", ms + "ConnectionRequestPassword": "pw"},
		Agent: cwmp.Config{RetryMinimumWait: 50 * time.Millisecond}})
	require.NoError(t, err)
	testrun.Go(t, c.Run)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	inf, err := acs.WaitInform(ctx, "00D09E-V6", 1)
	require.NoError(t, err)
	crURL := ""
	for _, p := range inf.ParameterList {
		if p.Name == ms+"ConnectionRequestURL" {
			crURL = p.Value
		}
	}
	assert.True(t, strings.HasPrefix(crURL, "http://[::1]:"), "a bracketed IPv6 literal: %s", crURL)

	call := acs.Enqueue("00D09E-V6", &soap.Download{CommandKey: "v6", FileType: "3 Vendor Configuration File", URL: files.URL + "/c.cfg"})
	status, err := cwmptest.ConnectionRequest(ctx, crURL, "acs", "pw")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status, "the Connection Request over IPv6")
	_, err = call.Wait(ctx)
	require.NoError(t, err)
	require.NoError(t, acs.WaitFor(ctx, func(a *cwmptest.ACS) bool { return len(a.Devs()["00D09E-V6"].Transfers) == 1 }))
	assert.Equal(t, 0, acs.Device("00D09E-V6").Transfers[0].FaultStruct.FaultCode, "downloaded over IPv6")
}

// The same with the agent binary in a network namespace that has IPv6
// only (no IPv4 address at all), the ACS in another.
func TestIPv6OnlyNamespace(t *testing.T) {
	p := netlab.NewPair(t, netlab.PairOptions{})
	for _, a := range [][3]string{{p.GW, "fd77::1/64", p.GWIf}, {p.Dev, "fd77::2/64", p.DevIf}} {
		out, err := exec.Command("ip", "-n", a[0], "addr", "add", a[1], "dev", a[2], "nodad").CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	ln, err := netlab.Listen(p.GW, "tcp6", "[fd77::1]:0")
	require.NoError(t, err)
	acs := cwmptest.Serve(ln)
	defer acs.Close()
	dir := t.TempDir()
	a := netlab.StartAgent(t, p.Dev, dir, fmt.Sprintf(`acs: {url: "http://%s/acs", retry_minimum_wait: 1s}
device: {data_model: "Device:2.19", oui: "00D09E", serial_number: V6NS}
state_dir: "{dir}/state"
control: {socket: "{dir}/agent.sock"}
connection_request: {listen: ":7547", username: acs, password: pw}
udp_connection_request: {listen: ""}
periodic_inform: {enable: false}
`, ln.Addr().String()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = acs.WaitInform(ctx, "00D09E-V6NS", 1)
	require.NoError(t, err)
	crURL := a.Get(ms + "ConnectionRequestURL")
	assert.Equal(t, "http://[fd77::2]:7547/", crURL[:len("http://[fd77::2]:7547/")], crURL)
	assert.Equal(t, "fd77::2", a.Get("Device.IP.Interface.1.IPv6Address.1.IPAddress"), "the interface's IPv6 address in the model")

	// A Connection Request from the ACS's namespace, over IPv6.
	dial := netlab.Dial(p.GW)
	client := &http.Client{Transport: &http.Transport{DialContext: func(_ context.Context, network, addr string) (net.Conn, error) { return dial(network, addr) }}}
	status, err := cwmptest.ConnectionRequestVia(ctx, client, crURL, "acs", "pw")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	_, err = acs.WaitEvent(ctx, "00D09E-V6NS", "6 CONNECTION REQUEST")
	require.NoError(t, err)
}

func TestMain(m *testing.M) {
	code := m.Run()
	netlab.RemoveAgentBinary()
	os.Exit(code)
}
