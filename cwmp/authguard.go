package cwmp

import (
	"log/slog"
	"sync"
	"time"

	"github.com/cwmp-agent/cwmp-agent/internal/clock"
)

// authGuard limits failed Connection Request authentications per source
// address and logs them without flooding the log. TCP sources cannot be
// spoofed, so blocking one blocks only the guesser; the ACS, from its own
// address, keeps working. (UDP Connection Requests are not guarded this
// way: their source address can be forged, and blocking it would let a
// forger lock the ACS's STUN server out.)
type authGuard struct {
	// Failures are allowed in a burst of MaxFailures, refilled one per
	// Refill; a source past them is refused for Block.
	maxFailures int
	refill      time.Duration
	block       time.Duration
	clock       clock.Clock
	log         *slog.Logger

	mu      sync.Mutex // guards sources
	sources map[string]*guardEntry
}

type guardEntry struct {
	tokens     float64
	last       time.Time // last failure, for the refill and eviction
	blocked    time.Time // refused until then
	loggedAt   time.Time
	unreported int // failures since the last log line
}

// maxGuarded bounds the sources tracked; beyond it the least recent is
// forgotten, so that guessing from many addresses costs no memory.
const maxGuarded = 1024

func newAuthGuard(clk clock.Clock, log *slog.Logger) *authGuard {
	return &authGuard{maxFailures: 10, refill: 6 * time.Second, block: time.Minute, clock: clk, log: log,
		sources: map[string]*guardEntry{}}
}

// blocked reports whether src is refused now, and for how long.
func (g *authGuard) blocked(src string) (bool, time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.sources[src]
	if e == nil {
		return false, 0
	}
	now := g.clock.Now()
	if now.Before(e.blocked) {
		return true, e.blocked.Sub(now)
	}
	return false, 0
}

// failed records a failed authentication from src. It logs the first
// failure of a source and then at most one line a minute with the count.
func (g *authGuard) failed(src string) {
	now := g.clock.Now()
	g.mu.Lock()
	e := g.sources[src]
	if e == nil {
		if len(g.sources) >= maxGuarded {
			g.evictLocked()
		}
		e = &guardEntry{tokens: float64(g.maxFailures), last: now}
		g.sources[src] = e
	}
	e.tokens += float64(now.Sub(e.last)) / float64(g.refill)
	if e.tokens > float64(g.maxFailures) {
		e.tokens = float64(g.maxFailures)
	}
	e.last = now
	e.tokens--
	e.unreported++
	blockNow := e.tokens < 0 && !now.Before(e.blocked)
	if blockNow {
		e.blocked = now.Add(g.block)
		e.tokens = 0
	}
	logIt := e.loggedAt.IsZero() || now.Sub(e.loggedAt) >= time.Minute || blockNow
	n := e.unreported
	if logIt {
		e.loggedAt, e.unreported = now, 0
	}
	g.mu.Unlock()
	switch {
	case blockNow:
		g.log.Warn("connection request authentication failed too often; source refused", "remote", src,
			"failures", n, "refused_for", g.block)
	case logIt:
		g.log.Warn("connection request authentication failed", "remote", src, "failures", n)
	}
}

func (g *authGuard) evictLocked() {
	var oldest string
	var at time.Time
	for k, e := range g.sources {
		if oldest == "" || e.last.Before(at) {
			oldest, at = k, e.last
		}
	}
	delete(g.sources, oldest)
}
