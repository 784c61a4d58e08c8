package assoc

import (
	"context"
	"sync"
	"time"

	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
)

// saver writes a state file atomically (write, fsync, rename) in the
// background, coalescing bursts: a gateway answering a thousand DHCP
// exchanges a second writes its leases a few times a second, not a
// thousand. A crash loses at most the last interval, and a client whose
// lease was lost that way is simply given its address again when it asks.
type saver struct {
	path     string
	snapshot func() any // returns a copy safe to encode without locks
	interval time.Duration

	kick chan struct{}
	mu   sync.Mutex // serialises writes
}

func newSaver(path string, snapshot func() any) *saver {
	return &saver{path: path, snapshot: snapshot, interval: 200 * time.Millisecond, kick: make(chan struct{}, 1)}
}

// mark asks for a write soon.
func (s *saver) mark() {
	if s == nil || s.path == "" {
		return
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// flush writes now.
func (s *saver) flush() error {
	if s == nil || s.path == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return atomicfile.WriteJSON(s.path, s.snapshot())
}

// run writes after each mark, at most once per interval, and once more
// when ctx ends if anything is pending.
func (s *saver) run(ctx context.Context, onErr func(error)) {
	if s == nil || s.path == "" {
		<-ctx.Done()
		return
	}
	for {
		select {
		case <-ctx.Done():
			select {
			case <-s.kick:
				if err := s.flush(); err != nil {
					onErr(err)
				}
			default:
			}
			return
		case <-s.kick:
			if err := s.flush(); err != nil {
				onErr(err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(s.interval):
			}
		}
	}
}
