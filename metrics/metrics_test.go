package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cpe"
	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/metrics"
	"github.com/cwmp-agent/cwmp-agent/soap"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

const ms = "Device.ManagementServer."

// scrape reads /metrics as Prometheus does and parses the exposition.
func scrape(t *testing.T, addr net.Addr) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err, "the exposition parses")
	return fams
}

// value is the sample of a family with those labels (name=value pairs);
// -1 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAgentMetrics runs a CPE with STUN against the test ACS and a STUN
// server, and reads over HTTP what it did: sessions, events, RPCs, faults,
// Connection Requests of two kinds, its STUN state; and the STUN server's
// own counters.
func TestAgentMetrics(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()

	// The ACS side's STUN server, with its metrics.
	sreg := prometheus.NewRegistry()
	var srv *tr111.Server
	sm := metrics.NewSTUNServer(sreg, func() int { return srv.BindingCount() })
	srv, err = tr111.NewServer(tr111.ServerConfig{Listen: "127.0.0.1:0", Spacing: time.Millisecond, OnRequest: sm.Request,
		OnDropped: sm.Dropped, OnConnectionRequestSent: sm.ConnectionRequestSent})
	require.NoError(t, err)
	srv.SetCredentials(map[string]tr111.Credential{"stun-m1": {STUNUsername: "stun-m1", STUNPassword: "stunpw", CRUsername: "cr", CRPassword: "crpw"}})
	testrun.Go(t, srv.Run)

	reg := metrics.NewRegistry()
	obs := metrics.NewCWMP(reg)
	c, err := cpe.Build(cpe.Config{DataModel: "Device:1.1", StateDir: t.TempDir(), Observer: obs,
		Factory: map[string]string{ms + "URL": acs.URL, "Device.DeviceInfo.ManufacturerOUI": "00D09E",
			"Device.DeviceInfo.SerialNumber": "M1", ms + "PeriodicInformEnable": "false",
			ms + "ConnectionRequestUsername": "cr", ms + "ConnectionRequestPassword": "crpw",
			ms + "STUNEnable": "true", ms + "STUNServerAddress": "127.0.0.1", ms + "STUNServerPort": strconv.Itoa(srv.Addr().Port),
			ms + "STUNUsername": "stun-m1", ms + "STUNPassword": "stunpw", ms + "STUNMinimumKeepAlivePeriod": "5"},
		UDPListen: "127.0.0.1:0", ConnReqListen: "127.0.0.1:0",
		STUN: tr111.ClientConfig{RTO: 20 * time.Millisecond, AddressPoll: 50 * time.Millisecond}})
	require.NoError(t, err)
	metrics.RegisterCPE(reg, c)
	var sessions int
	ready := func() error {
		if s, _, _ := c.Agent.Stats(); s == 0 {
			return errors.New("no session yet")
		}
		return nil
	}
	mlis, err := metrics.Listen("127.0.0.1:0", reg, ready, nil)
	require.NoError(t, err)
	testrun.Go(t, mlis.Run)
	base := "http://" + mlis.Addr().String()
	code, body := get(t, base+"/healthz")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok\n", body)
	code, body = get(t, base+"/readyz")
	assert.Equal(t, 503, code, "not ready before the first session")
	assert.Contains(t, body, "no session yet")

	testrun.Go(t, c.Run)
	id := "00D09E-M1"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, acs.WaitSessions(ctx, id, 1))
	sessions = 1
	require.Eventually(t, func() bool { return srv.BindingCount() == 1 }, 10*time.Second, 10*time.Millisecond,
		"the CPE's authenticated BINDING-CHANGE is recorded")

	// An HTTP Connection Request (digest: a challenge, then accepted) with
	// two GetParameterValues, one of them for a name that does not exist.
	good := acs.Enqueue(id, &soap.GetParameterValues{ParameterNames: []string{"Device.DeviceInfo.SerialNumber"}})
	bad := acs.Enqueue(id, &soap.GetParameterValues{ParameterNames: []string{"Device.NoSuchThing"}})
	crURL := c.Tree.MustGet(ms + "ConnectionRequestURL")
	st, err := cwmptest.ConnectionRequest(ctx, crURL, "cr", "crpw")
	require.NoError(t, err)
	require.Equal(t, 200, st)
	_, err = good.Wait(ctx)
	require.NoError(t, err)
	_, err = bad.Wait(ctx)
	require.Error(t, err)
	require.NoError(t, acs.WaitSessions(ctx, id, 2))
	sessions = 2
	// A guess, and a UDP Connection Request through the STUN binding.
	st, err = cwmptest.ConnectionRequest(ctx, crURL, "cr", "guess")
	require.NoError(t, err)
	require.Equal(t, 401, st)
	_, err = srv.ConnectionRequest(ctx, "stun-m1")
	require.NoError(t, err)
	require.NoError(t, acs.WaitSessions(ctx, id, 3))
	sessions = 3
	// Garbage at the STUN server.
	u, err := net.DialUDP("udp", nil, srv.Addr())
	require.NoError(t, err)
	u.Write([]byte("not stun"))
	u.Close()

	var f map[string]*dto.MetricFamily
	require.Eventually(t, func() bool {
		f = scrape(t, mlis.Addr())
		return value(f, "cwmp_sessions_total", "outcome", "ok") == float64(sessions)
	}, 5*time.Second, 20*time.Millisecond, "every session counted once it ended")
	assert.Equal(t, 1.0, value(f, "cwmp_session_events_total", "event", "0 BOOTSTRAP"))
	assert.Equal(t, 2.0, value(f, "cwmp_session_events_total", "event", "6 CONNECTION REQUEST"))
	assert.Equal(t, float64(sessions), value(f, "cwmp_session_duration_seconds"), "one observation per successful session")
	assert.Equal(t, 2.0, value(f, "cwmp_rpcs_total", "method", "GetParameterValues"))
	assert.Equal(t, 1.0, value(f, "cwmp_faults_sent_total", "code", "9005"), "the unknown name's fault")
	assert.Equal(t, 1.0, value(f, "cwmp_connection_requests_total", "kind", "http", "outcome", "accepted"))
	assert.Equal(t, 1.0, value(f, "cwmp_connection_requests_total", "kind", "http", "outcome", "auth_failed"))
	assert.GreaterOrEqual(t, value(f, "cwmp_connection_requests_total", "kind", "http", "outcome", "challenged"), 2.0)
	assert.Equal(t, 1.0, value(f, "cwmp_connection_requests_total", "kind", "udp", "outcome", "accepted"))
	assert.Equal(t, 2.0, value(f, "cwmp_connection_requests_total", "kind", "udp", "outcome", "replayed"),
		"the other two copies of the UDP Connection Request (TR-111 2.2.1.4: same id)")
	assert.Equal(t, 0.0, value(f, "cwmp_pending_events"))
	assert.Equal(t, 0.0, value(f, "cwmp_session_retries"))
	assert.Equal(t, 1.0, value(f, "cwmp_stun_binding_state", "phase", c.STUN.State().Phase))
	assert.Equal(t, 0.0, value(f, "cwmp_stun_binding_state", "phase", "disabled"))
	assert.Equal(t, 0.0, value(f, "cwmp_stun_nat_detected"), "loopback has no NAT")
	assert.Equal(t, c.STUN.State().Period.Seconds(), value(f, "cwmp_stun_keepalive_period_seconds"))
	assert.Equal(t, -1.0, value(f, "cwmp_manageable_devices"), "a Device has no ManageableDevice table")
	assert.Greater(t, value(f, "process_resident_memory_bytes"), 0.0)
	code, _ = get(t, base+"/readyz")
	assert.Equal(t, 200, code)

	// The STUN server's side.
	gather := func() map[string]*dto.MetricFamily {
		sf, err := sreg.Gather()
		require.NoError(t, err)
		fams := map[string]*dto.MetricFamily{}
		for _, x := range sf {
			fams[x.GetName()] = x
		}
		return fams
	}
	require.Eventually(t, func() bool { return value(gather(), "cwmp_stun_server_dropped_total") == 1 }, 5*time.Second, 10*time.Millisecond)
	fams := gather()
	assert.GreaterOrEqual(t, value(fams, "cwmp_stun_server_requests_total", "kind", "binding_change", "answer", "success"), 1.0)
	assert.Equal(t, 1.0, value(fams, "cwmp_stun_server_bindings"))
	assert.Equal(t, 1.0, value(fams, "cwmp_stun_server_udp_connection_requests_total", "result", "sent"))
	assert.Equal(t, 0.0, value(fams, "cwmp_stun_server_authentication_failures_total"))

	// Prometheus's own linter: naming conventions (units, _total), help.
	for _, g := range []prometheus.Gatherer{reg, sreg} {
		problems, err := testutil.GatherAndLint(g)
		require.NoError(t, err)
		for _, p := range problems {
			if strings.HasPrefix(p.Metric, "cwmp_") {
				t.Errorf("%s: %s", p.Metric, p.Text)
			}
		}
	}
}

// TestLabelsAreBounded: whatever an ACS makes the agent do, the number of
// series stays within fixed sets.
func TestLabelsAreBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.NewCWMP(reg)
	for i := range 5000 {
		m.RPC(fmt.Sprintf("Method%d", i), i)
		m.Session(cwmp.SessionResult{Err: &cwmp.HTTPError{Status: i}})
	}
	rpcs, err := testutil.GatherAndCount(reg, "cwmp_rpcs_total")
	require.NoError(t, err)
	assert.Equal(t, 1, rpcs, "unknown methods share the label other")
	faults, err := testutil.GatherAndCount(reg, "cwmp_faults_sent_total")
	require.NoError(t, err)
	assert.LessOrEqual(t, faults, 901, "9000-9899 and other")
	sessions, err := testutil.GatherAndCount(reg, "cwmp_sessions_total")
	require.NoError(t, err)
	assert.LessOrEqual(t, sessions, 901, "http 100 to http 999 and ok")
}

// TestListenerBounds: the metrics listener holds a bounded number of
// connections, and slow clients do not stop a scrape.
func TestListenerBounds(t *testing.T) {
	reg := metrics.NewRegistry()
	s, err := metrics.Listen("127.0.0.1:0", reg, nil, nil)
	require.NoError(t, err)
	testrun.Go(t, s.Run)
	var idle []net.Conn
	for range 40 {
		c, err := net.Dial("tcp", s.Addr().String())
		require.NoError(t, err)
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	// The connections beyond the bound were closed at once; from another
	// source address, a scrape still answers.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	c := http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + s.Addr().String() + "/metrics")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Contains(t, string(b), "go_goroutines")
}

// BenchmarkCWMPObserver: the counters' cost for one session as a fleet
// makes them: its end (two events, the duration) and one RPC answered,
// from both cores at once on one shared CWMP.
func BenchmarkCWMPObserver(b *testing.B) {
	m := metrics.NewCWMP(prometheus.NewRegistry())
	r := cwmp.SessionResult{Duration: 3 * time.Millisecond, Events: []string{"2 PERIODIC", "4 VALUE CHANGE"}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.RPC("GetParameterValues", 0)
			m.Session(r)
		}
	})
}
