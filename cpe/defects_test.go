package cpe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
	"github.com/cwmp-agent/cwmp-agent/internal/linux/sysinfo"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/soap"
	"github.com/cwmp-agent/cwmp-agent/tr111"
	"github.com/cwmp-agent/cwmp-agent/tr111/tr111test"
)

const ms = "Device.ManagementServer."

func stunCPE(t *testing.T, acs *cwmptest.ACS, extra map[string]string) *CPE {
	t.Helper()
	return stunCPEModel(t, acs, "Device:1.1", extra)
}

// stunCPEModel is stunCPE serving a data model of a Device root.
func stunCPEModel(t *testing.T, acs *cwmptest.ACS, model string, extra map[string]string) *CPE {
	t.Helper()
	factory := map[string]string{
		ms + "URL":                          acs.URL,
		"Device.DeviceInfo.ManufacturerOUI": "00D09E",
		"Device.DeviceInfo.SerialNumber":    "STUN1",
		ms + "PeriodicInformEnable":         "false",
		ms + "ConnectionRequestUsername":    "cr",
		ms + "ConnectionRequestPassword":    "crpw",
	}
	for k, v := range extra {
		factory[k] = v
	}
	c, err := Build(Config{DataModel: model, StateDir: t.TempDir(), Factory: factory, UDPListen: "127.0.0.1:0",
		ConnReqListen: "127.0.0.1:0", Agent: cwmp.Config{RetryMinimumWait: 50 * time.Millisecond},
		STUN: tr111.ClientConfig{RTO: 20 * time.Millisecond, AddressPoll: 50 * time.Millisecond}})
	require.NoError(t, err)
	testrun.Go(t, c.Run)
	return c
}

// acsSet has the ACS set values in a session of its own (a Connection
// Request) and returns the SetParameterValuesResponse.
func acsSet(t *testing.T, acs *cwmptest.ACS, c *CPE, id string, kv ...string) *soap.SetParameterValuesResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	spv := &soap.SetParameterValues{}
	for i := 0; i < len(kv); i += 2 {
		spv.ParameterList = append(spv.ParameterList, soap.ParameterValue{Name: kv[i], Value: kv[i+1]})
	}
	call := acs.Enqueue(id, spv)
	code, err := cwmptest.ConnectionRequest(ctx, c.Tree.MustGet(ms+"ConnectionRequestURL"), "cr", "crpw")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	resp, err := call.Wait(ctx)
	require.NoError(t, err)
	r, ok := resp.(*soap.SetParameterValuesResponse)
	require.True(t, ok, "%T", resp)
	return r
}

// TestOneTransactionOneSTUNRestart: a SetParameterValues that changes four
// STUN parameters restarts discovery once (it once restarted it once per
// parameter: three Binding Requests with new transaction IDs within 1 ms).
func TestOneTransactionOneSTUNRestart(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	a, b := tr111test.NewServer(t, nil), tr111test.NewServer(t, nil)
	c := stunCPE(t, acs, map[string]string{ms + "STUNEnable": "true", ms + "STUNServerAddress": "127.0.0.1",
		ms + "STUNServerPort": strconv.Itoa(a.Addr().Port), ms + "STUNMinimumKeepAlivePeriod": "2", ms + "STUNMaximumKeepAlivePeriod": "30"})
	id := "00D09E-STUN1"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, acs.WaitSessions(ctx, id, 1))
	require.Eventually(t, func() bool { return c.STUN.State().Phase == "no-nat" }, 5*time.Second, 5*time.Millisecond)

	r := acsSet(t, acs, c, id, ms+"STUNServerPort", strconv.Itoa(b.Addr().Port), ms+"STUNMinimumKeepAlivePeriod", "1",
		ms+"STUNMaximumKeepAlivePeriod", "60", ms+"STUNUsername", "cpe-x")
	assert.Equal(t, 1, r.Status, "STUN changes are applied when the session ends")
	require.Eventually(t, func() bool { return len(b.Transactions(tr111test.Plain)) >= 1 }, 5*time.Second, 5*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // room for the restarts of the defect
	assert.Len(t, b.Transactions(tr111test.Plain), 1, "one transaction, one restart, one new Binding Request")

	// Only retransmissions come closer than STUNMinimumKeepAlivePeriod: two
	// more transactions in a row are two restarts, spaced by it.
	for _, v := range []string{"61", "62"} {
		require.NoError(t, c.Tree.SetValues([]datamodel.Change{{Path: ms + "STUNMaximumKeepAlivePeriod", Value: v}},
			datamodel.SetOptions{Origin: datamodel.OriginDevice}))
	}
	require.Eventually(t, func() bool { return len(b.Transactions(tr111test.Plain)) >= 2 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(300 * time.Millisecond)
	tx := b.Transactions(tr111test.Plain)
	for i := 1; i < len(tx); i++ {
		assert.GreaterOrEqual(t, tx[i].At.Sub(tx[i-1].At), time.Second-50*time.Millisecond,
			"Binding Requests %d and %d closer than STUNMinimumKeepAlivePeriod", i-1, i)
	}
}

// TestSTUNEnabledByACSIsNotified: the ACS enables STUN and, later in the
// same session, asks for Active Notification on UDPConnectionRequestAddress
// (GenieACS's provisions do it in this order). The binding is discovered
// after the session, so its change is notified: discovered during the
// session, before the SetParameterAttributes, it was never reported and
// GenieACS kept the private address.
func TestSTUNEnabledByACSIsNotified(t *testing.T) {
	for _, model := range []string{"Device:1.1", "Device:2.19"} {
		t.Run(model, func(t *testing.T) { stunEnabledByACSIsNotified(t, model) })
	}
}

func stunEnabledByACSIsNotified(t *testing.T, model string) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	srv := tr111test.NewServer(t, nil)
	nat := tr111test.NewRelay(t, srv.Addr())
	c := stunCPEModel(t, acs, model, nil)
	id := "00D09E-STUN1"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, acs.WaitSessions(ctx, id, 1))
	before := c.Tree.MustGet(ms + "UDPConnectionRequestAddress")
	seen := len(acs.Device(id).Informs)

	spv := acs.Enqueue(id, &soap.SetParameterValues{ParameterList: []soap.ParameterValue{
		{Name: ms + "STUNEnable", Value: "true"}, {Name: ms + "STUNServerAddress", Value: "127.0.0.1"},
		{Name: ms + "STUNServerPort", Value: strconv.Itoa(nat.Addr.Port)}}})
	// Discovery against the lab server takes well under a millisecond: a
	// client restarted at once would be done before the next RPC.
	acs.Enqueue(id, &soap.GetParameterValues{ParameterNames: []string{ms + "ConnectionRequestURL"}})
	acs.Enqueue(id, &soap.SetParameterAttributes{ParameterList: []soap.SetParameterAttributesStruct{
		{Name: ms + "UDPConnectionRequestAddress", NotificationChange: true, Notification: 2}}})
	code, err := cwmptest.ConnectionRequest(ctx, c.Tree.MustGet(ms+"ConnectionRequestURL"), "cr", "crpw")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	resp, err := spv.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, resp.(*soap.SetParameterValuesResponse).Status, "applied when the session ends")
	inf, err := acs.WaitEventAfter(ctx, id, "4 VALUE CHANGE", seen+1)
	require.NoError(t, err, "the binding found after the session is notified")
	got := ""
	for _, p := range inf.ParameterList {
		if p.Name == ms+"UDPConnectionRequestAddress" {
			got = p.Value
		}
	}
	assert.Equal(t, c.Tree.MustGet(ms+"UDPConnectionRequestAddress"), got)
	assert.NotEqual(t, before, got, "the public binding")
	assert.Equal(t, "true", c.Tree.MustGet(ms+"NATDetected"))
}

// TestUDPAndHTTPShareTheRateLimit: a flood of valid, distinct UDP
// Connection Requests starts no more sessions than HTTP ones can (924
// accepted in 11 s once gave 256 sessions, against 13 over HTTP).
func TestUDPAndHTTPShareTheRateLimit(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	c := stunCPE(t, acs, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := "00D09E-STUN1"
	require.NoError(t, acs.WaitSessions(ctx, id, 1))
	conn, err := net.Dial("udp4", c.STUN.LocalAddr().String())
	require.NoError(t, err)
	defer conn.Close()
	ts := uint64(time.Now().Unix())
	for i := 0; i < 300; i++ {
		conn.Write(tr111.FormatUDPConnRequest(c.STUN.LocalAddr().String(), ts+uint64(i), fmt.Sprint("flood-", i), "cr", "n", "crpw"))
		time.Sleep(200 * time.Microsecond)
	}
	time.Sleep(300 * time.Millisecond)
	accepted := c.STUN.State().Requests
	assert.LessOrEqual(t, accepted, 11, "the burst of the shared limit (10), and at most one refill")
	assert.GreaterOrEqual(t, accepted, 1)
	// The burst is spent: an HTTP Connection Request now gets 503 too.
	code, err := cwmptest.ConnectionRequest(ctx, c.Tree.MustGet(ms+"ConnectionRequestURL"), "cr", "crpw")
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code)
}

// TestFactoryResetReappliesComputedValues: the BOOTSTRAP Inform after a
// FactoryReset carries a valid ConnectionRequestURL (it carried ” until
// the agent restarted, and GenieACS then refused every Connection
// Request), and the next Connection Request works.
func TestFactoryResetReappliesComputedValues(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	c := stunCPE(t, acs, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := "00D09E-STUN1"
	require.NoError(t, acs.WaitSessions(ctx, id, 1))
	url := c.Tree.MustGet(ms + "ConnectionRequestURL")
	require.NotEmpty(t, url)
	seen := len(acs.Device(id).Informs)
	call := acs.Enqueue(id, &soap.FactoryReset{})
	code, err := cwmptest.ConnectionRequest(ctx, url, "cr", "crpw")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	_, err = call.Wait(ctx)
	require.NoError(t, err)
	inf, err := acs.WaitEventAfter(ctx, id, "0 BOOTSTRAP", seen)
	require.NoError(t, err)
	got := map[string]string{}
	for _, p := range inf.ParameterList {
		got[p.Name] = p.Value
	}
	assert.Equal(t, url, got[ms+"ConnectionRequestURL"], "the BOOTSTRAP after the reset announces the listener")
	assert.NotEmpty(t, c.Tree.MustGet(ms+"UDPConnectionRequestAddress"))
	n := len(acs.Device(id).Informs)
	code, err = cwmptest.ConnectionRequest(ctx, url, "cr", "crpw")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	require.NoError(t, acs.WaitSessions(ctx, id, n+1))
}

// TestCredentialsGeneratedWhenNoneConfigured: with no Connection Request
// credentials, an empty username and password no longer get 200 (HTTP)
// nor does an empty key sign a UDP Connection Request; random ones are
// generated, kept across restarts, the username readable by the ACS and
// the password not.
func TestCredentialsGeneratedWhenNoneConfigured(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	dir := t.TempDir()
	factory := map[string]string{ms + "URL": acs.URL, "Device.DeviceInfo.ManufacturerOUI": "00D09E",
		"Device.DeviceInfo.SerialNumber": "NOCRED", ms + "PeriodicInformEnable": "false"}
	cfg := Config{Root: "Device", StateDir: dir, Factory: factory, UDPListen: "127.0.0.1:0", ConnReqListen: "127.0.0.1:0"}
	c, err := Build(cfg)
	require.NoError(t, err)
	stop := testrun.Go(t, c.Run)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := "00D09E-NOCRED"
	require.NoError(t, acs.WaitSessions(ctx, id, 1))
	user, pass := c.Tree.MustGet(ms+"ConnectionRequestUsername"), c.Tree.MustGet(ms+"ConnectionRequestPassword")
	assert.NotEmpty(t, user)
	assert.GreaterOrEqual(t, len(pass), 16)
	vs, err := c.Tree.GetValues([]string{ms + "ConnectionRequestUsername", ms + "ConnectionRequestPassword"})
	require.NoError(t, err)
	assert.Equal(t, user, vs[0].Value, "the ACS reads the username")
	assert.Equal(t, "", vs[1].Value, "and not the password")

	url := c.Tree.MustGet(ms + "ConnectionRequestURL")
	code, err := cwmptest.ConnectionRequest(ctx, url, "", "")
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, code, "empty credentials are refused")
	code, err = cwmptest.ConnectionRequest(ctx, url, user, pass)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)

	// A UDP Connection Request signed with an empty key is ignored.
	conn, err := net.Dial("udp4", c.STUN.LocalAddr().String())
	require.NoError(t, err)
	defer conn.Close()
	before := c.STUN.State().Requests
	conn.Write(tr111.FormatUDPConnRequest("x", uint64(time.Now().Unix()), "e1", "", "n", ""))
	conn.Write(tr111.FormatUDPConnRequest("x", uint64(time.Now().Unix())+1, "e2", user, "n", ""))
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, before, c.STUN.State().Requests)

	// Kept across a restart.
	stop()
	c2, err := Build(cfg)
	require.NoError(t, err)
	assert.Equal(t, user, c2.Tree.MustGet(ms+"ConnectionRequestUsername"))
	assert.Equal(t, pass, c2.Tree.MustGet(ms+"ConnectionRequestPassword"))
	testrun.Go(t, c2.Run)()
}

// TestStaleTemporaryFilesRemoved: the temporary files of writes cut off
// by a kill (50 kills once left 21 of them) are removed at start; other
// files are not.
func TestStaleTemporaryFilesRemoved(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	dir := t.TempDir()
	stale := []string{".tree.json.tmp-123", ".agent.json.tmp-9f8e", ".notify.json.tmp-1", "downloads/.download-42"}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "downloads"), 0o700))
	for _, f := range append(stale, "downloads/fw.bin", ".keep") {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600))
	}
	c, err := Build(Config{Root: "Device", StateDir: dir, Factory: map[string]string{ms + "URL": acs.URL,
		"Device.DeviceInfo.ManufacturerOUI": "00D09E", "Device.DeviceInfo.SerialNumber": "TMP"}})
	require.NoError(t, err)
	testrun.Go(t, c.Run)()
	for _, f := range stale {
		assert.NoFileExists(t, filepath.Join(dir, f))
	}
	assert.FileExists(t, filepath.Join(dir, "downloads", "fw.bin"))
	assert.FileExists(t, filepath.Join(dir, ".keep"))
}

// TestStateOfEarlierReleasesKept: agent.json once held the Connection
// Request path and the last UDP Connection Request ts; now the listener
// and the TR-111 client keep their own files, and read the old ones.
func TestStateOfEarlierReleasesKept(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, atomicfile.WriteJSON(filepath.Join(dir, "agent.json"), map[string]any{
		"version": 1, "bootstrapped": true, "bootstrap_url": "http://acs/", "next_seq": 5, "next_transfer": 1,
		"cr_path": "/0123456789abcdef01234567", "extra": map[string]any{"last_udp_ts": 1700000000},
	}))
	c, err := Build(Config{Root: "Device", StateDir: dir, UDPListen: "127.0.0.1:0", Factory: map[string]string{ms + "URL": "http://acs/",
		"Device.DeviceInfo.ManufacturerOUI": "00D09E", "Device.DeviceInfo.SerialNumber": "OLD", ms + "ConnectionRequestUsername": "cr",
		ms + "ConnectionRequestPassword": "pw"}})
	require.NoError(t, err)
	testrun.Go(t, c.Run)()
	assert.Equal(t, "/0123456789abcdef01234567", c.ConnReq.URLPath())
	assert.Contains(t, c.Tree.MustGet(ms+"ConnectionRequestURL"), "/0123456789abcdef01234567")
	assert.Equal(t, uint64(1700000000), tr111.OpenTimestamps(dir, nil).Last())
	assert.FileExists(t, filepath.Join(dir, "connreq.json"))
}

// TestFactoryResetOneSession: after a FactoryReset the CPE informs once,
// with 0 BOOTSTRAP; the values the agent writes back after the reset
// start no session of their own (a "4 VALUE CHANGE" session with nothing
// changed followed the BOOTSTRAP one against GenieACS).
func TestFactoryResetOneSession(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	c := stunCPE(t, acs, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := "00D09E-STUN1"
	require.NoError(t, acs.WaitSessions(ctx, id, 1))
	seen := len(acs.Device(id).Informs)
	_, err = acs.Enqueue(id, &soap.FactoryReset{}), nil
	code, err := cwmptest.ConnectionRequest(ctx, c.Tree.MustGet(ms+"ConnectionRequestURL"), "cr", "crpw")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	_, err = acs.WaitEventAfter(ctx, id, "0 BOOTSTRAP", seen)
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	informs := acs.Device(id).Informs[seen:]
	for i, inf := range informs {
		t.Logf("inform %d: %v", i, inf.Event)
	}
	require.Len(t, informs, 2, "the Connection Request session, then the BOOTSTRAP")
}

// TestUptimeRestartsWithVirtualReboot: a real device without a reboot hook
// reboots virtually; its UpTime then counts from that reboot, not from the
// system's (GenieACS showed 1 BOOT with an uptime of hours).
func TestUptimeRestartsWithVirtualReboot(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	c, err := Build(Config{Root: "Device", StateDir: t.TempDir(), ConnReqListen: "127.0.0.1:0",
		Host: &sysinfo.Host{Root: "../internal/linux/sysinfo/testdata/root"},
		Factory: map[string]string{ms + "URL": acs.URL, "Device.DeviceInfo.ManufacturerOUI": "00D09E",
			"Device.DeviceInfo.SerialNumber": "UP2", ms + "PeriodicInformEnable": "false",
			ms + "ConnectionRequestUsername": "cr", ms + "ConnectionRequestPassword": "crpw"},
		Agent: cwmp.Config{RetryMinimumWait: 50 * time.Millisecond}})
	require.NoError(t, err)
	testrun.Go(t, c.Run)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := "00D09E-UP2"
	require.NoError(t, acs.WaitSessions(ctx, id, 1))
	require.Equal(t, "12345", c.Tree.MustGet("Device.DeviceInfo.UpTime"), "before: the system's uptime")
	seen := len(acs.Device(id).Informs)
	acs.Enqueue(id, &soap.Reboot{CommandKey: "r1"})
	code, err := cwmptest.ConnectionRequest(ctx, c.Tree.MustGet(ms+"ConnectionRequestURL"), "cr", "crpw")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	_, err = acs.WaitEventAfter(ctx, id, "M Reboot", seen)
	require.NoError(t, err)
	up, err := strconv.Atoi(c.Tree.MustGet("Device.DeviceInfo.UpTime"))
	require.NoError(t, err)
	assert.Less(t, up, 60, "after the virtual reboot the uptime counts from it")
}
