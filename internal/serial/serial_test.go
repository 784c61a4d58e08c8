package serial

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOneAtATimeInOrder: functions posted from many goroutines run one at
// a time (never two at once), each once, in each poster's order.
func TestOneAtATimeInOrder(t *testing.T) {
	var q Queue
	q.Open()
	var inside atomic.Int32
	var mu sync.Mutex
	last := map[int]int{}
	var wg sync.WaitGroup
	done := make(chan struct{}, 8000)
	for p := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				q.Post(func() {
					if inside.Add(1) != 1 {
						t.Error("two functions ran at once")
					}
					mu.Lock()
					if prev, ok := last[p]; ok && prev != i-1 {
						t.Errorf("poster %d: %d ran after %d", p, i, prev)
					}
					last[p] = i
					mu.Unlock()
					inside.Add(-1)
					done <- struct{}{}
				})
			}
		}()
	}
	wg.Wait()
	for range 8000 {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("not every posted function ran")
		}
	}
}

// TestClosedQueueHolds: nothing runs before Open or after Close; Close
// waits for the running function; what was held runs at the next Open.
func TestClosedQueueHolds(t *testing.T) {
	var q Queue
	ran := make(chan int, 4)
	q.Post(func() { ran <- 1 })
	select {
	case <-ran:
		t.Fatal("ran before Open")
	case <-time.After(20 * time.Millisecond):
	}
	q.Open()
	assert.Equal(t, 1, <-ran)

	release, started := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	q.Post(func() { close(started); <-release; finished.Store(true) })
	<-started
	go func() { time.Sleep(20 * time.Millisecond); close(release) }()
	q.Close()
	assert.True(t, finished.Load(), "Close returned while a function ran")
	q.Post(func() { ran <- 2 })
	select {
	case <-ran:
		t.Fatal("ran after Close")
	case <-time.After(20 * time.Millisecond):
	}
	q.Open()
	assert.Equal(t, 2, <-ran)
}

// TestIdleQueueHasNoGoroutine: the point of the package.
func TestIdleQueueHasNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	qs := make([]Queue, 1000)
	var wg sync.WaitGroup
	for i := range qs {
		qs[i].Open()
		wg.Add(1)
		qs[i].Post(wg.Done)
	}
	wg.Wait()
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= before+5 }, 5*time.Second, 10*time.Millisecond,
		"1000 idle queues hold %d goroutines", runtime.NumGoroutine()-before)
}
