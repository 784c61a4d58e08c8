package tr111

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
)

// TimestampsFile is the file in the state directory holding the last
// accepted UDP Connection Request timestamp.
const TimestampsFile = "tr111.json"

// Timestamps keeps the last accepted UDP Connection Request ts across
// restarts (TR-111 2.2.1.4 allows either; keeping it refuses replays of
// requests accepted before the restart). It is the TR-111 client's own
// state, in its own file.
type Timestamps struct {
	path string
	log  *slog.Logger

	mu   sync.Mutex // guards last
	last uint64
}

type timestampState struct {
	LastUDPTimestamp uint64 `json:"last_udp_ts"`
}

// OpenTimestamps reads the file in dir ("" keeps the ts in memory). An
// agent.json of an earlier release, which kept the ts there, is read when
// the file is absent.
func OpenTimestamps(dir string, log *slog.Logger) *Timestamps {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Timestamps{log: log}
	if dir == "" {
		return t
	}
	t.path = filepath.Join(dir, TimestampsFile)
	var st timestampState
	err := atomicfile.ReadJSON(t.path, &st)
	switch {
	case errors.Is(err, os.ErrNotExist):
		var old struct {
			Extra struct {
				LastUDPTimestamp uint64 `json:"last_udp_ts"`
			} `json:"extra"`
		}
		if atomicfile.PeekJSON(filepath.Join(dir, "agent.json"), &old) == nil && old.Extra.LastUDPTimestamp != 0 {
			// Kept in its own file now: the agent no longer writes it.
			st.LastUDPTimestamp = old.Extra.LastUDPTimestamp
			if err := atomicfile.WriteJSON(t.path, st); err != nil {
				log.Error("cannot save the last UDP Connection Request timestamp", "err", err)
			}
		}
	case err != nil:
		log.Error("the last UDP Connection Request timestamp is not restored", "err", err)
	}
	t.last = st.LastUDPTimestamp
	return t
}

// Last is the last accepted ts (0: none).
func (t *Timestamps) Last() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// Save records and persists ts.
func (t *Timestamps) Save(ts uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last = ts
	if t.path == "" {
		return
	}
	if err := atomicfile.WriteJSON(t.path, timestampState{LastUDPTimestamp: ts}); err != nil {
		t.log.Error("cannot save the last UDP Connection Request timestamp", "err", err)
	}
}
