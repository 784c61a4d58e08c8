package cwmp

import (
	"context"
	"sync"
)

// tasks is the agent's mailbox: other goroutines (Connection Request
// listeners, the notify engine, tree hooks, the transfer runner) post
// closures, and the agent's own goroutine, the one that runs sessions and
// owns the agent's state, runs them between sessions, as pion/ice's task
// loop does. Posting never blocks and never runs anything in the caller,
// so it is safe from any goroutine, including from a tree hook that the
// owner's own SetParameterValues sets off.
//
// Tasks posted before Run wait for it. A query (do) made while no
// goroutine owns the state, before Run or after it, runs in the caller;
// idle keeps two such callers apart.
type tasks struct {
	mu      sync.Mutex // guards queue and running
	queue   []func()
	running bool
	idle    sync.Mutex // held by a caller running a query without an owner
	wake    chan struct{}
}

func newTasks() *tasks { return &tasks{wake: make(chan struct{}, 1)} }

// post queues f for the owner.
func (t *tasks) post(f func()) {
	t.mu.Lock()
	t.queue = append(t.queue, f)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// do runs f on the owner and waits for it, or for ctx; without an owner it
// runs f at once. Never call it from the owner itself.
func (t *tasks) do(ctx context.Context, f func()) error {
	t.mu.Lock()
	if !t.running {
		t.mu.Unlock()
		t.idle.Lock()
		defer t.idle.Unlock()
		t.mu.Lock()
		owned := t.running
		t.mu.Unlock()
		if !owned {
			f()
			return nil
		}
		// An owner started meanwhile: ask it.
	} else {
		t.mu.Unlock()
	}
	done := make(chan struct{})
	t.post(func() { f(); close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// start makes the calling goroutine the owner, once a query running
// without one is over.
func (t *tasks) start() {
	t.idle.Lock()
	t.mu.Lock()
	t.running = true
	t.mu.Unlock()
	t.idle.Unlock()
}

// stop gives up ownership after running what was queued until then (a
// transfer's outcome posted as the agent stops is still saved).
func (t *tasks) stop() {
	t.idle.Lock()
	defer t.idle.Unlock()
	t.mu.Lock()
	t.running = false
	t.mu.Unlock()
	t.run()
}

// run runs the queued tasks, and those they queue (on the owner).
func (t *tasks) run() {
	for {
		t.mu.Lock()
		q := t.queue
		t.queue = nil
		t.mu.Unlock()
		if len(q) == 0 {
			return
		}
		for _, f := range q {
			f()
		}
	}
}
