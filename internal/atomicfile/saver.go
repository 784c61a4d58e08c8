package atomicfile

import (
	"context"
	"sync"
	"time"
)

// Saver writes a state file with WriteJSON in the background, coalescing
// bursts: a component that changes its state a thousand times a second
// writes it a few times a second, not a thousand. A crash loses at most the
// last interval. A nil Saver, or one without a path, writes nothing.
type Saver struct {
	path     string
	snapshot func() any // returns a copy safe to encode without locks
	interval time.Duration

	kick chan struct{}
	mu   sync.Mutex // serialises writes
}

// NewSaver writes snapshot() to path at most once per interval.
func NewSaver(path string, snapshot func() any, interval time.Duration) *Saver {
	return &Saver{path: path, snapshot: snapshot, interval: interval, kick: make(chan struct{}, 1)}
}

// Path is the file it writes.
func (s *Saver) Path() string { return s.path }

// Mark asks for a write soon. It never blocks.
func (s *Saver) Mark() {
	if s == nil || s.path == "" {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Flush writes now.
func (s *Saver) Flush() error {
	if s == nil || s.path == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return WriteJSON(s.path, s.snapshot())
}

// FlushPending writes now if a Mark is pending (for a final write once
// whatever marks has stopped).
func (s *Saver) FlushPending() error {
	if s == nil || s.path == "" {
		return nil
	}
	select {
	case <-s.kick:
		return s.Flush()
	default:
		return nil
	}
}

// Run writes after each Mark, at most once per interval, and once more
// when ctx ends if a Mark is pending.
func (s *Saver) Run(ctx context.Context, onErr func(error)) {
	if s == nil || s.path == "" {
		<-ctx.Done()
		return
	}
	for {
		select {
		case <-ctx.Done():
			if err := s.FlushPending(); err != nil {
				onErr(err)
			}
			return
		case <-s.kick:
			if err := s.Flush(); err != nil {
				onErr(err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(s.interval):
			}
		}
	}
}
