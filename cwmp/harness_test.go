package cwmp

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/schemas"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

const (
	testOUI    = "00D09E"
	testSerial = "SN0001"
	testClass  = "Virtual"
	testID     = testOUI + "-" + testClass + "-" + testSerial
)

// harness is one agent against one test ACS.
type harness struct {
	t      testing.TB
	acs    *cwmptest.ACS
	tree   *datamodel.Tree
	agent  *Agent
	cr     *ConnReqServer
	dir    string
	cancel context.CancelFunc
	done   chan struct{}
	cfg    Config
	extra  map[string]string // factory values over factory()
}

type option func(*harness)

func withConfig(f func(*Config)) option { return func(h *harness) { f(&h.cfg) } }

// withFactory sets factory values over the harness's own.
func withFactory(kv map[string]string) option { return func(h *harness) { h.extra = kv } }

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("CWMP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func factory(acsURL string) map[string]string {
	return map[string]string{
		"Device.ManagementServer.URL":                       acsURL,
		"Device.DeviceInfo.Manufacturer":                    "cwmp-agent",
		"Device.DeviceInfo.ManufacturerOUI":                 testOUI,
		"Device.DeviceInfo.ProductClass":                    testClass,
		"Device.DeviceInfo.SerialNumber":                    testSerial,
		"Device.DeviceInfo.SoftwareVersion":                 "1.0.0",
		"Device.DeviceInfo.HardwareVersion":                 "hw1",
		"Device.ManagementServer.ConnectionRequestUsername": "cruser",
		"Device.ManagementServer.ConnectionRequestPassword": "crpass",
		"Device.ManagementServer.PeriodicInformEnable":      "false",
	}
}

// newHarness starts an ACS and an agent with a state directory.
func newHarness(t testing.TB, opts ...option) *harness {
	t.Helper()
	acs, err := cwmptest.New()
	require.NoError(t, err)
	t.Cleanup(func() { acs.Close() })
	h := &harness{t: t, acs: acs, dir: t.TempDir()}
	h.cfg = Config{
		StateDir:         h.dir,
		RetryMinimumWait: 50 * time.Millisecond,
		ResponseTimeout:  5 * time.Second,
		Logger:           testLogger(t),
	}
	for _, o := range opts {
		o(h)
	}
	h.start()
	return h
}

// start builds the tree and the agent over the state directory and runs it.
func (h *harness) start() {
	t := h.t
	f := factory(h.acs.URL)
	for k, v := range h.extra {
		f[k] = v
	}
	tree, err := datamodel.New(schemas.Device(), datamodel.Options{StateDir: h.dir, Factory: f})
	require.NoError(t, err)
	require.NoError(t, tree.Load())
	h.tree = tree
	cfg := h.cfg
	cfg.Tree = tree
	if cfg.UploadSource == nil {
		cfg.UploadSource = func(ft string) ([]byte, error) { return []byte("upload of " + ft), nil }
	}
	var a *Agent
	h.cr = &ConnReqServer{Tree: tree, StateDir: h.dir, Trigger: func() { a.ConnectionRequest() }, Logger: cfg.Logger}
	require.NoError(t, h.cr.Listen("127.0.0.1:0"))
	cfg.ConnReq = h.cr
	a, err = New(cfg)
	require.NoError(t, err)
	h.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.Run(ctx) }()
	go func() { defer wg.Done(); h.cr.Serve(ctx) }()
	go func() { wg.Wait(); close(h.done) }()
	t.Cleanup(h.stop)
}

// stop ends the agent and waits for it.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.t.Error("agent did not stop")
	}
	h.cancel = nil
}

// restart stops the agent and starts a new one on the same state.
func (h *harness) restart() {
	h.stop()
	h.start()
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	h.t.Cleanup(cancel)
	return ctx
}

// call queues an RPC, kicks a session with a Connection Request and waits
// for the answer.
func (h *harness) call(m soap.Message) (soap.Message, error) {
	h.t.Helper()
	c := h.acs.Enqueue(testID, m)
	h.agent.ConnectionRequest()
	resp, err := c.Wait(h.ctx())
	if err != nil {
		if f, ok := err.(*soap.Fault); ok {
			return resp, f
		}
		require.NoError(h.t, err)
	}
	return resp, nil
}

func events(inf *soap.Inform) []string {
	var out []string
	for _, e := range inf.Event {
		s := e.EventCode
		if e.CommandKey != "" {
			s += "(" + e.CommandKey + ")"
		}
		out = append(out, s)
	}
	return out
}

func params(inf *soap.Inform) map[string]soap.ParameterValue {
	out := map[string]soap.ParameterValue{}
	for _, p := range inf.ParameterList {
		out[p.Name] = p
	}
	return out
}
