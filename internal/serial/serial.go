// Package serial runs functions one at a time, in the order they were
// posted, on a goroutine that exists only while there is work. A state
// whose every reader and writer is a posted function has one owner, as
// with a goroutine reading an inbox, but an idle owner costs no goroutine:
// a fleet holds hundreds of thousands of idle CPEs, each with such states.
package serial

import "sync"

// Queue is a serial executor. The zero value is closed: functions posted
// wait until Open.
type Queue struct {
	mu      sync.Mutex
	q       []func()
	running bool // a drainer goroutine exists
	open    bool
	idle    *sync.Cond // signalled when the drainer exits
}

// Post queues f. It never blocks and never runs f on the caller's
// goroutine.
func (s *Queue) Post(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.q = append(s.q, f)
	s.kick()
}

// Open starts running what is queued and what is posted from now on.
func (s *Queue) Open() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open = true
	s.kick()
}

// Close stops running posted functions (they stay queued) and waits for
// the one running, if any, to return.
func (s *Queue) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open = false
	for s.running {
		s.cond().Wait()
	}
}

func (s *Queue) cond() *sync.Cond {
	if s.idle == nil {
		s.idle = sync.NewCond(&s.mu)
	}
	return s.idle
}

// kick starts a drainer when there is work and none runs; s.mu is held.
func (s *Queue) kick() {
	if s.open && !s.running && len(s.q) > 0 {
		s.running = true
		go s.drain()
	}
}

func (s *Queue) drain() {
	for {
		s.mu.Lock()
		if !s.open || len(s.q) == 0 {
			s.running = false
			if s.idle != nil {
				s.idle.Broadcast()
			}
			s.mu.Unlock()
			return
		}
		f := s.q[0]
		s.q[0] = nil
		s.q = s.q[1:]
		if len(s.q) == 0 {
			s.q = nil // let a burst's backing array go
		}
		s.mu.Unlock()
		f()
	}
}
