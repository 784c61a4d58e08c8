package cwmp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/clock"
	"github.com/cwmp-agent/cwmp-agent/internal/digest"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/schemas"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

func TestRebootAndFactoryReset(t *testing.T) {
	h := newHarness(t)
	_, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	boot := h.agent.BootTime()

	_, err = h.call(&soap.Reboot{CommandKey: "rb-1"})
	require.NoError(t, err)
	inf, err := h.acs.WaitEvent(h.ctx(), testID, "M Reboot")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"1 BOOT", "M Reboot(rb-1)"}, events(inf))
	assert.True(t, h.agent.BootTime().After(boot), "the virtual reboot restarts the uptime")

	_, err = h.call(&soap.SetParameterValues{ParameterList: []soap.ParameterValue{{Name: "Device.ManagementServer.Username", Value: "changed"}}, ParameterKey: "k"})
	require.NoError(t, err)
	_, err = h.call(&soap.FactoryReset{})
	require.NoError(t, err)
	var fr *soap.Inform
	require.NoError(t, h.acs.WaitFor(h.ctx(), func(a *cwmptest.ACS) bool {
		d := a.Devs()[testID]
		for _, in := range d.Informs[1:] {
			if len(in.Event) > 0 && in.Event[0].EventCode == "0 BOOTSTRAP" {
				fr = in
				return true
			}
		}
		return false
	}))
	assert.ElementsMatch(t, []string{"0 BOOTSTRAP", "1 BOOT"}, events(fr))
	assert.Equal(t, "", h.tree.MustGet("Device.ManagementServer.Username"), "factory values are back")
	assert.Equal(t, "", params(fr)["Device.ManagementServer.ParameterKey"].Value)
}

// TestNoPeriodicRightAfterReboot: with PeriodicInformTime the Unknown Time
// the periodic phase is the boot time, so the first 2 PERIODIC after a
// (virtual) Reboot or FactoryReset comes a whole interval later. A
// spurious one came 59 ms after the 1 BOOT session: the time was read
// before the reboot reset the boot time, and the schedule took the new
// boot time, in its future, as the next instant (TR-098: periodic Informs
// at the reference time plus or minus a multiple of the interval).
func TestNoPeriodicRightAfterReboot(t *testing.T) {
	h := newHarness(t, withFactory(map[string]string{"Device.ManagementServer.PeriodicInformEnable": "true",
		"Device.ManagementServer.PeriodicInformInterval": "3600"}))
	_, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	periodic := func() int {
		n := 0
		for _, in := range h.acs.Device(testID).Informs {
			for _, e := range in.Event {
				if e.EventCode == "2 PERIODIC" {
					n++
				}
			}
		}
		return n
	}
	for _, m := range []soap.Message{&soap.Reboot{CommandKey: "r"}, &soap.FactoryReset{}} {
		seen := len(h.acs.Device(testID).Informs)
		_, err = h.call(m)
		require.NoError(t, err)
		_, err = h.acs.WaitEventAfter(h.ctx(), testID, "1 BOOT", seen)
		require.NoError(t, err)
		time.Sleep(500 * time.Millisecond)
		assert.Zero(t, periodic(), "no 2 PERIODIC within the interval after %s", m.Method())
	}
}

func TestScheduleInformSurvivesRestart(t *testing.T) {
	h := newHarness(t)
	_, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	_, err = h.call(&soap.ScheduleInform{DelaySeconds: 1, CommandKey: "sched"})
	require.NoError(t, err)
	h.restart()
	inf, err := h.acs.WaitEvent(h.ctx(), testID, "3 SCHEDULED")
	require.NoError(t, err)
	assert.Contains(t, events(inf), "M ScheduleInform(sched)")
}

// fileServer serves files with optional Basic auth and accepts PUTs.
type fileServer struct {
	*httptest.Server
	mu   sync.Mutex
	puts map[string][]byte
}

func newFileServer(t *testing.T) *fileServer {
	fs := &fileServer{puts: map[string][]byte{}}
	var dig digest.Server
	dig.Realm = "files"
	fs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/fw.bin":
			w.Write([]byte("firmware-image"))
		case "/config.xml":
			w.Write([]byte("<config/>"))
		case "/secret.bin":
			if digest.CheckBasic(r.Header.Get("Authorization"), "fu", "fp") {
				w.Write([]byte("secret"))
				return
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="files"`)
			w.WriteHeader(http.StatusUnauthorized)
		case "/digest.bin":
			if dig.Check(r.Header.Get("Authorization"), r.Method, r.RequestURI, "fu", "fp") == digest.OK {
				w.Write([]byte("digest-protected"))
				return
			}
			w.Header().Set("WWW-Authenticate", dig.Challenge(false))
			w.WriteHeader(http.StatusUnauthorized)
		case "/upload":
			b, _ := io.ReadAll(r.Body)
			fs.mu.Lock()
			fs.puts[r.Method] = b
			fs.mu.Unlock()
			w.WriteHeader(http.StatusCreated)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(fs.Close)
	return fs
}

func transferFor(t *testing.T, h *harness, key string) *soap.TransferComplete {
	t.Helper()
	var tc *soap.TransferComplete
	require.NoError(t, h.acs.WaitFor(h.ctx(), func(a *cwmptest.ACS) bool {
		for _, x := range a.Devs()[testID].Transfers {
			if x.CommandKey == key {
				tc = x
				return true
			}
		}
		return false
	}))
	return tc
}

func TestDownloadsAndUpload(t *testing.T) {
	fs := newFileServer(t)
	h := newHarness(t)
	_, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)

	resp, err := h.call(&soap.Download{CommandKey: "fw", FileType: "1 Firmware Upgrade Image", URL: fs.URL + "/fw.bin", FileSize: 14, TargetFileName: "fw.bin"})
	require.NoError(t, err)
	assert.Equal(t, 1, resp.(*soap.DownloadResponse).Status)
	tc := transferFor(t, h, "fw")
	assert.Equal(t, 0, tc.FaultStruct.FaultCode)
	assert.False(t, tc.StartTime.IsZero())
	assert.False(t, tc.CompleteTime.Before(tc.StartTime))
	inf, err := h.acs.WaitEvent(h.ctx(), testID, "7 TRANSFER COMPLETE")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"1 BOOT", "7 TRANSFER COMPLETE", "M Download(fw)"}, events(inf), "a firmware image reboots the CPE")
	b, err := os.ReadFile(filepath.Join(h.dir, "downloads", "fw.bin"))
	require.NoError(t, err)
	assert.Equal(t, "firmware-image", string(b))

	for _, tc := range []struct {
		key, url string
		size     uint32
		user     string
		fault    int
	}{
		{"cfg", fs.URL + "/config.xml", 0, "", 0},
		{"basic", fs.URL + "/secret.bin", 0, "fu", 0},
		{"digest", fs.URL + "/digest.bin", 0, "fu", 0},
		{"noauth", fs.URL + "/secret.bin", 0, "", 9012},
		{"missing", fs.URL + "/nothing", 0, "", 9016},
		{"size", fs.URL + "/config.xml", 99, "", 9018},
		{"down", "http://127.0.0.1:1/x", 0, "", 9015},
	} {
		_, err := h.call(&soap.Download{CommandKey: tc.key, FileType: "3 Vendor Configuration File", URL: tc.url, FileSize: tc.size, Username: tc.user, Password: "fp"})
		require.NoError(t, err, tc.key)
		got := transferFor(t, h, tc.key)
		assert.Equal(t, tc.fault, got.FaultStruct.FaultCode, "%s: %s", tc.key, got.FaultStruct.FaultString)
	}

	_, err = h.call(&soap.Download{CommandKey: "ftp", FileType: "1 Firmware Upgrade Image", URL: "ftp://files/fw.bin"})
	assertFault(t, err, 9013)
	_, err = h.call(&soap.Download{CommandKey: "odd", FileType: "9 Something", URL: fs.URL + "/fw.bin"})
	assertFault(t, err, 9003)

	_, err = h.call(&soap.Upload{CommandKey: "up", FileType: "1 Vendor Configuration File", URL: fs.URL + "/upload"})
	require.NoError(t, err)
	got := transferFor(t, h, "up")
	assert.Equal(t, 0, got.FaultStruct.FaultCode, got.FaultStruct.FaultString)
	fs.mu.Lock()
	assert.Equal(t, "upload of 1 Vendor Configuration File", string(fs.puts["PUT"]))
	fs.mu.Unlock()

	// A delayed download is listed as queued, and can be cancelled.
	_, err = h.call(&soap.Download{CommandKey: "later", FileType: "2 Web Content", URL: fs.URL + "/fw.bin", DelaySeconds: 3600})
	require.NoError(t, err)
	resp, err = h.call(&soap.GetQueuedTransfers{})
	require.NoError(t, err)
	assert.Contains(t, resp.(*soap.GetQueuedTransfersResponse).TransferList, soap.QueuedTransfer{CommandKey: "later", State: 1})
	resp, err = h.call(&soap.GetAllQueuedTransfers{})
	require.NoError(t, err)
	assert.Contains(t, resp.(*soap.GetAllQueuedTransfersResponse).TransferList,
		soap.AllQueuedTransfer{CommandKey: "later", State: 1, IsDownload: true, FileType: "2 Web Content"})
	_, err = h.call(&soap.CancelTransfer{CommandKey: "later"})
	require.NoError(t, err)
	resp, err = h.call(&soap.GetQueuedTransfers{})
	require.NoError(t, err)
	assert.Empty(t, resp.(*soap.GetQueuedTransfersResponse).TransferList)

	_, err = h.call(&soap.ScheduleDownload{CommandKey: "sd", FileType: "1 Firmware Upgrade Image", URL: fs.URL + "/fw.bin",
		TimeWindowList: []soap.TimeWindow{{WindowStart: 0, WindowEnd: 600, WindowMode: "1 At Any Time"}}})
	require.NoError(t, err)
	assert.Equal(t, 0, transferFor(t, h, "sd").FaultStruct.FaultCode)
	_, err = h.call(&soap.ScheduleDownload{CommandKey: "sd2", FileType: "1 Firmware Upgrade Image", URL: fs.URL + "/fw.bin",
		TimeWindowList: []soap.TimeWindow{{WindowStart: 0, WindowEnd: 600, WindowMode: "4 Confirmation Needed"}}})
	assertFault(t, err, 9003)
}

func TestTransferCompleteSurvivesRestart(t *testing.T) {
	fs := newFileServer(t)
	h := newHarness(t)
	_, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	// The ACS goes down as soon as the Download is answered: the
	// TransferComplete cannot be delivered until after a restart.
	h.acs.OnInform(func(d *cwmptest.Device, inf *soap.Inform) {})
	_, err = h.call(&soap.Download{CommandKey: "keep", FileType: "3 Vendor Configuration File", URL: fs.URL + "/config.xml"})
	require.NoError(t, err)
	h.acs.FailInforms(1000, http.StatusServiceUnavailable)
	require.Eventually(t, func() bool {
		for _, e := range h.agent.Pending() {
			if e.Code == EventMDownload {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond)
	h.stop()
	h.acs.FailInforms(0, 0)
	h.start()
	tc := transferFor(t, h, "keep")
	assert.Equal(t, 0, tc.FaultStruct.FaultCode)
	inf, err := h.acs.WaitEvent(h.ctx(), testID, "M Download")
	require.NoError(t, err)
	assert.Contains(t, events(inf), "7 TRANSFER COMPLETE")
	assert.Contains(t, events(inf), "1 BOOT")
	require.Eventually(t, func() bool { return len(h.agent.Pending()) == 0 }, 5*time.Second, 10*time.Millisecond, "delivered events are gone")
}

func TestACSURLChangeBootstraps(t *testing.T) {
	h := newHarness(t)
	_, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	other, err := cwmptest.New()
	require.NoError(t, err)
	defer other.Close()
	_, err = h.call(&soap.SetParameterValues{ParameterList: []soap.ParameterValue{{Name: "Device.ManagementServer.URL", Value: other.URL}}, ParameterKey: "move"})
	require.NoError(t, err)
	inf, err := other.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"0 BOOTSTRAP"}, events(inf), "the new ACS gets a bootstrap")
	assert.Equal(t, "move", params(inf)["Device.ManagementServer.ParameterKey"].Value)

	// A restart now sends only 1 BOOT to the new ACS.
	require.NoError(t, other.WaitSessions(h.ctx(), testID, 1))
	h.restart()
	inf, err = other.WaitInform(h.ctx(), testID, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"1 BOOT"}, events(inf))
}

func TestConnectionRequests(t *testing.T) {
	h := newHarness(t, func(h *harness) {})
	_, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	require.NoError(t, h.acs.WaitSessions(h.ctx(), testID, 1))
	crURL := h.tree.MustGet("Device.ManagementServer.ConnectionRequestURL")
	require.Contains(t, crURL, h.cr.Path)
	require.Contains(t, crURL, fmt.Sprint(h.cr.Addr().(*net.TCPAddr).Port))

	st, err := cwmptest.ConnectionRequest(h.ctx(), crURL, "cruser", "crpass")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, st)
	inf, err := h.acs.WaitEvent(h.ctx(), testID, "6 CONNECTION REQUEST")
	require.NoError(t, err)
	assert.Equal(t, []string{"6 CONNECTION REQUEST"}, events(inf))

	st, _ = cwmptest.ConnectionRequest(h.ctx(), crURL, "cruser", "wrong")
	assert.Equal(t, http.StatusUnauthorized, st)
	resp, err := http.Get(crURL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `qop="auth"`)
	st, _ = cwmptest.ConnectionRequest(h.ctx(), strings.TrimSuffix(crURL, h.cr.Path)+"/other", "cruser", "crpass")
	assert.Equal(t, http.StatusNotFound, st)

	// Requests during a session become one session after it.
	h.acs.Delay(200 * time.Millisecond)
	before := len(h.acs.Device(testID).Informs)
	for i := 0; i < 3; i++ {
		st, err := cwmptest.ConnectionRequest(h.ctx(), crURL, "cruser", "crpass")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, st)
	}
	h.acs.Delay(0)
	require.NoError(t, h.acs.WaitSessions(h.ctx(), testID, 3))
	time.Sleep(300 * time.Millisecond)
	after := len(h.acs.Device(testID).Informs)
	assert.LessOrEqual(t, after-before, 2, "three requests, at most one session running and one after it")

	// The rate limit answers 503 beyond its burst.
	h.cr.Burst, h.cr.Every = 2, time.Hour
	h.cr.limit = rate.NewLimiter(rate.Every(h.cr.Every), h.cr.Burst)
	var codes []int
	for i := 0; i < 3; i++ {
		st, _ := cwmptest.ConnectionRequest(h.ctx(), crURL, "cruser", "crpass")
		codes = append(codes, st)
	}
	assert.Equal(t, []int{200, 200, 503}, codes)
}

func TestRetryBackoff(t *testing.T) {
	for n := 1; n <= 12; n++ {
		lo := retryWait(n, 5*time.Second, 2000, 0)
		hi := retryWait(n, 5*time.Second, 2000, 1)
		e := n
		if e > 10 {
			e = 10
		}
		assert.Equal(t, time.Duration(5<<(e-1))*time.Second, lo, "retry %d lower bound", n)
		assert.Equal(t, time.Duration(5<<e)*time.Second, hi, "retry %d upper bound", n)
	}
	assert.Equal(t, 7500*time.Millisecond, retryWait(1, 5*time.Second, 2000, 0.5))
	assert.Equal(t, 15*time.Second, retryWait(1, 10*time.Second, 1500, 1))
}

// TestRetryTiming runs the agent on a fake clock against an ACS that fails:
// each retry waits within its TR-069 range and RetryCount counts up.
func TestRetryTiming(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	h := newHarness(t, withConfig(func(c *Config) {
		c.Clock = fc
		c.RetryMinimumWait = 5 * time.Second
		c.Virtual.Rand = func() float64 { return 0.5 }
	}), func(h *harness) { h.acs.FailInforms(3, http.StatusInternalServerError) })
	for n := 1; n <= 3; n++ {
		require.Eventually(t, func() bool { _, f, _ := h.agent.Stats(); return f >= uint64(n) }, 5*time.Second, time.Millisecond)
		// The agent waits alone: no transfer is queued, so no runner exists.
		require.True(t, fc.WaitTimers(1, 5*time.Second))
		want := fc.Now().Add(retryWait(n, 5*time.Second, 2000, 0.5))
		var d time.Time
		require.Eventually(t, func() bool { d, _ = fc.NextDeadline(); return !d.IsZero() && d.Equal(want) }, 5*time.Second, time.Millisecond,
			"retry %d: the next wake-up is m*k^(n-1) plus half the range", n)
		fc.Set(d)
	}
	inf, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	assert.Equal(t, uint32(3), inf.RetryCount)
	require.NoError(t, h.acs.WaitSessions(h.ctx(), testID, 1))
	require.Eventually(t, func() bool { _, _, rc := h.agent.Stats(); return rc == 0 }, time.Second, time.Millisecond, "reset after success")
}

func TestPeriodicInform(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	h := newHarness(t, withConfig(func(c *Config) { c.Clock = fc }))
	require.NoError(t, h.acs.WaitSessions(h.ctx(), testID, 1))
	require.NoError(t, h.tree.SetValues([]datamodel.Change{
		{Path: "Device.ManagementServer.PeriodicInformEnable", Value: "true"},
		{Path: "Device.ManagementServer.PeriodicInformInterval", Value: "60"},
		{Path: "Device.ManagementServer.PeriodicInformTime", Value: "2025-12-31T23:59:30Z"},
	}, datamodel.SetOptions{Origin: datamodel.OriginACS}))
	var d time.Time
	require.Eventually(t, func() bool { d, _ = fc.NextDeadline(); return d.Equal(time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)) }, 5*time.Second, time.Millisecond,
		"the phase comes from PeriodicInformTime")
	fc.Set(d)
	inf, err := h.acs.WaitEvent(h.ctx(), testID, "2 PERIODIC")
	require.NoError(t, err)
	assert.Equal(t, []string{"2 PERIODIC"}, events(inf))
	require.Eventually(t, func() bool { d, _ = fc.NextDeadline(); return d.Equal(time.Date(2026, 1, 1, 0, 1, 30, 0, time.UTC)) }, 5*time.Second, time.Millisecond)
}

// selfSigned makes a CA and a server certificate for 127.0.0.1.
func selfSigned(t *testing.T, dir string) (caFile string, srv tls.Certificate) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTpl, caTpl, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "acs"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	caFile = filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	return caFile, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, cert := selfSigned(t, dir)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	require.NoError(t, err)
	acs := cwmptest.Serve(ln)
	defer acs.Close()
	url := strings.Replace(acs.URL, "http://", "https://", 1)

	run := func(tc TLSConfig) (*cwmptest.ACS, *Agent) {
		tree, err := datamodel.New(schemas.Device(), datamodel.Options{Factory: factory(url)})
		require.NoError(t, err)
		a, err := New(Config{Tree: tree, TLS: tc, RetryMinimumWait: time.Hour, Logger: testLogger(t)})
		require.NoError(t, err)
		testrun.Go(t, a.Run)
		return acs, a
	}
	_, bad := run(TLSConfig{})
	require.Eventually(t, func() bool { _, f, _ := bad.Stats(); return f >= 1 }, 5*time.Second, 10*time.Millisecond, "an unknown CA fails the session")
	assert.Nil(t, acs.Device(testID))

	run(TLSConfig{CAFile: caFile})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, acs.WaitSessions(ctx, testID, 1), "with the CA file the session succeeds")

	_, err = tlsConfig(TLSConfig{CAFile: filepath.Join(dir, "missing.pem")})
	assert.Error(t, err)
	_, err = tlsConfig(TLSConfig{ClientCert: caFile, ClientKey: caFile})
	assert.Error(t, err)
}
