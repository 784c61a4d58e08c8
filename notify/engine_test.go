package notify

import (
	"context"
	"fmt"
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

const (
	udpAddr  = "Device.ManagementServer.UDPConnectionRequestAddress"
	udpLimit = "Device.ManagementServer.UDPConnectionRequestAddressNotificationLimit"
	gwSerial = "Device.GatewayInfo.SerialNumber"
)

type rig struct {
	t      *testing.T
	tree   *datamodel.Tree
	eng    *Engine
	clk    *clock.Fake
	active atomic.Int32
	cancel context.CancelFunc
	done   chan struct{}
	dir    string
}

func newRig(t *testing.T, dir string) *rig {
	tree, err := datamodel.New(schemas.Device(), datamodel.Options{StateDir: dir})
	require.NoError(t, err)
	require.NoError(t, tree.Load())
	r := &rig{t: t, tree: tree, clk: clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), dir: dir}
	r.eng = New(Config{Tree: tree, StateDir: dir, Clock: r.clk, OnActive: func() { r.active.Add(1) }})
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	go func() { r.eng.Run(ctx); close(r.done) }()
	t.Cleanup(r.stop)
	// The first poll done, the engine waits on a timer, or (with nothing
	// to time) has no goroutine until something pokes it.
	require.Eventually(t, func() bool {
		r.eng.loop.mu.Lock()
		defer r.eng.loop.mu.Unlock()
		return !r.eng.loop.running || r.clk.Pending() >= 1
	}, 5*time.Second, time.Millisecond, "the engine settles after its first poll")
	return r
}

func (r *rig) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
		r.eng.Close()
		r.cancel = nil
	}
}

// step advances the fake clock and lets the engine react.
func (r *rig) step(d time.Duration) {
	r.t.Helper()
	r.clk.Advance(d)
	time.Sleep(5 * time.Millisecond)
}

func (r *rig) setAttr(path string, n int) {
	require.NoError(r.t, r.tree.SetAttributes([]datamodel.AttrChange{{Name: path, NotificationChange: true, Notification: n}}, datamodel.OriginACS))
}

// deliver simulates a session: Collect, then Delivered.
func (r *rig) deliver() []string {
	names, tok := r.eng.Collect()
	r.eng.Delivered(tok)
	return names
}

func (r *rig) waitActive(n int32) {
	r.t.Helper()
	require.Eventually(r.t, func() bool {
		r.clk.Advance(10 * time.Millisecond)
		return r.active.Load() >= n
	}, 10*time.Second, time.Millisecond)
}

func TestPassiveRidesTheNextInform(t *testing.T) {
	r := newRig(t, t.TempDir())
	r.setAttr("Device.DeviceInfo.ProvisioningCode", 1)
	require.NoError(t, r.tree.Set("Device.DeviceInfo.ProvisioningCode", "ABCD"))
	r.step(time.Second)
	assert.Equal(t, int32(0), r.active.Load(), "passive starts no session")
	assert.Equal(t, []string{"Device.DeviceInfo.ProvisioningCode"}, r.deliver())
	assert.Empty(t, r.deliver(), "delivered once")
}

func TestACSChangesAreNotReported(t *testing.T) {
	r := newRig(t, t.TempDir())
	r.setAttr("Device.DeviceInfo.ProvisioningCode", 2)
	require.NoError(t, r.tree.SetValues([]datamodel.Change{{Path: "Device.DeviceInfo.ProvisioningCode", Value: "ACS1"}}, datamodel.SetOptions{Origin: datamodel.OriginACS}))
	r.step(time.Second)
	assert.Equal(t, int32(0), r.active.Load())
	assert.Empty(t, r.eng.Pending())
}

func TestActiveBurstIsOneSession(t *testing.T) {
	r := newRig(t, t.TempDir())
	for i := 0; i < 20; i++ {
		require.NoError(t, r.tree.Set(gwSerial, fmt.Sprint("GW", i)))
	}
	r.waitActive(1)
	r.step(time.Second)
	assert.Equal(t, int32(1), r.active.Load(), "GatewayInfo is active by default; a burst gives one session")
	assert.Equal(t, []string{gwSerial}, r.deliver())

	// Changed and changed back: still reported.
	require.NoError(t, r.tree.Set(gwSerial, "X"))
	require.NoError(t, r.tree.Set(gwSerial, "GW19"))
	r.waitActive(2)
	assert.Equal(t, []string{gwSerial}, r.deliver())
}

func TestThrottledBurstGivesOneInformAtTheLimit(t *testing.T) {
	r := newRig(t, t.TempDir())
	r.setAttr(udpAddr, 2)
	require.NoError(t, r.tree.SetValues([]datamodel.Change{{Path: udpLimit, Value: "60"}}, datamodel.SetOptions{Origin: datamodel.OriginACS}))

	require.NoError(t, r.tree.Set(udpAddr, "198.51.100.1:1000"))
	r.waitActive(1) // nothing notified before: at once
	assert.Equal(t, []string{udpAddr}, r.deliver())
	start := r.clk.Now()

	for i := 0; i < 100; i++ {
		require.NoError(t, r.tree.Set(udpAddr, fmt.Sprintf("198.51.100.1:%d", 2000+i)))
		r.clk.Advance(100 * time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	assert.Equal(t, int32(1), r.active.Load(), "within the limit: delayed")
	names, tok := r.eng.Collect()
	assert.Empty(t, names, "a throttled change does not ride another session early")
	r.eng.Delivered(tok)

	r.clk.Set(start.Add(59 * time.Second))
	time.Sleep(10 * time.Millisecond)
	assert.Equal(t, int32(1), r.active.Load())
	r.clk.Set(start.Add(60 * time.Second))
	r.waitActive(2)
	assert.Equal(t, []string{udpAddr}, r.deliver(), "exactly one notification, at the limit")
	assert.Equal(t, "198.51.100.1:2099", r.tree.MustGet(udpAddr), "the Inform reads the current (last) value")
	r.step(10 * time.Minute)
	assert.Equal(t, int32(2), r.active.Load(), "never a second one for the burst")

	// Changes further apart than the limit are notified each at once.
	for i := 0; i < 3; i++ {
		r.step(61 * time.Second)
		require.NoError(t, r.tree.Set(udpAddr, fmt.Sprintf("203.0.113.%d:1", i)))
		r.waitActive(int32(3 + i))
		assert.Equal(t, []string{udpAddr}, r.deliver())
	}
}

func TestFailedSessionAndRestartKeepPending(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, dir)
	require.NoError(t, r.tree.Set(gwSerial, "GW1"))
	r.waitActive(1)
	names, _ := r.eng.Collect() // the session fails: no Delivered
	assert.Equal(t, []string{gwSerial}, names)
	names, _ = r.eng.Collect()
	assert.Equal(t, []string{gwSerial}, names, "kept after a failed session")
	r.stop()

	r2 := newRig(t, dir)
	assert.Equal(t, []string{gwSerial}, r2.eng.Pending(), "kept across a restart")
	assert.Equal(t, []string{gwSerial}, r2.deliver())
}

func TestNotificationOffDropsPending(t *testing.T) {
	r := newRig(t, t.TempDir())
	require.NoError(t, r.tree.Set(gwSerial, "GW1"))
	r.setAttr(gwSerial, 0)
	assert.Empty(t, r.eng.Pending())
	require.NoError(t, r.tree.FactoryReset())
	assert.Empty(t, r.eng.Pending())
}

func TestComputedParametersArePolled(t *testing.T) {
	r := newRig(t, t.TempDir())
	var mu sync.Mutex
	up := 100
	require.NoError(t, r.tree.Bind("Device.DeviceInfo.UpTime", func(string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprint(up), nil
	}))
	r.setAttr("Device.DeviceInfo.UpTime", 1)
	r.step(11 * time.Second) // first poll records the value
	assert.Empty(t, r.eng.Pending())
	mu.Lock()
	up = 110
	mu.Unlock()
	r.step(11 * time.Second)
	require.Eventually(t, func() bool { return len(r.eng.Pending()) == 1 }, time.Second, time.Millisecond)
	assert.Equal(t, []string{"Device.DeviceInfo.UpTime"}, r.eng.Pending())
	assert.Equal(t, int32(0), r.active.Load(), "passive")
}

// BenchmarkPoll10k polls 10,000 watched computed parameters. Target: under
// 5 ms of CPU per poll.
func BenchmarkPoll10k(b *testing.B) {
	var s = "model Bench:1.0\nobject Device.\nobject Device.Row.{i}. instances=1000\n"
	for i := 0; i < 10; i++ {
		s += fmt.Sprintf("P%d unsignedInt R computed\n", i)
	}
	sc, err := datamodel.ParseSchema(stringsReader(s))
	require.NoError(b, err)
	tree, err := datamodel.New(sc, datamodel.Options{})
	require.NoError(b, err)
	var n atomic.Int64
	for i := 0; i < 10; i++ {
		require.NoError(b, tree.Bind(fmt.Sprintf("Device.Row.{i}.P%d", i), func(string) (string, error) { return fmt.Sprint(n.Load()), nil }))
	}
	require.NoError(b, tree.SetAttributes([]datamodel.AttrChange{{Name: "Device.", NotificationChange: true, Notification: 1}}, datamodel.OriginACS))
	e := New(Config{Tree: tree})
	e.poll()
	require.Len(b, e.polled, 10000)
	b.ReportAllocs()
	for b.Loop() {
		e.poll()
	}
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// running reports whether the engine holds a goroutine.
func (r *rig) running() bool {
	r.eng.loop.mu.Lock()
	defer r.eng.loop.mu.Unlock()
	return r.eng.loop.running
}

// TestIdleEngineHoldsNoGoroutine: with nothing computed to poll and
// nothing throttled, the engine has no goroutine; a change wakes it, an
// Active Notification is signalled, and it goes idle again. A throttled
// change keeps it until the limit passes.
func TestIdleEngineHoldsNoGoroutine(t *testing.T) {
	r := newRig(t, t.TempDir())
	require.Eventually(t, func() bool { return !r.running() }, 5*time.Second, time.Millisecond)
	require.NoError(t, r.tree.Set(gwSerial, "GW1"))
	r.waitActive(1)
	require.Eventually(t, func() bool { return !r.running() }, 5*time.Second, time.Millisecond, "idle again after the signal")
	assert.Equal(t, []string{gwSerial}, r.deliver())

	r.setAttr(udpAddr, 2)
	require.NoError(t, r.tree.SetValues([]datamodel.Change{{Path: udpLimit, Value: "60"}}, datamodel.SetOptions{Origin: datamodel.OriginACS}))
	require.NoError(t, r.tree.Set(udpAddr, "198.51.100.1:1000"))
	r.waitActive(2)
	assert.Equal(t, []string{udpAddr}, r.deliver())
	require.NoError(t, r.tree.Set(udpAddr, "198.51.100.1:1001"))
	r.step(time.Second)
	assert.True(t, r.running(), "a throttled change is timed by the engine's goroutine")
	r.step(60 * time.Second)
	r.waitActive(3)
	assert.Equal(t, []string{udpAddr}, r.deliver())
	require.Eventually(t, func() bool { return !r.running() }, 5*time.Second, time.Millisecond)
}
