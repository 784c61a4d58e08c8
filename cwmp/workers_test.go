package cwmp

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWorkersReuseAndLinger: a caller waits for its function; a worker
// that finished is reused by the next caller; concurrent callers get a
// worker each; idle workers end after their linger.
func TestWorkersReuseAndLinger(t *testing.T) {
	w := &workers{linger: 100 * time.Millisecond}
	ran := false
	w.run(func() { ran = true })
	assert.True(t, ran, "run returns after the function")
	for range 50 {
		w.run(func() {})
	}
	assert.Equal(t, int32(1), w.live.Load(), "one caller at a time: one worker")

	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(func() {
				n := inside.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(20 * time.Millisecond)
				inside.Add(-1)
			})
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(8), most.Load(), "concurrent callers do not wait for each other")
	assert.LessOrEqual(t, w.live.Load(), int32(9))
	require.Eventually(t, func() bool { return w.live.Load() == 0 }, 5*time.Second, 10*time.Millisecond,
		"idle workers end after their linger")
	w.mu.Lock()
	assert.Empty(t, w.free)
	w.mu.Unlock()
}
