// Package logring keeps the tail of the agent's own log in memory, for
// DeviceInfo.DeviceLog and the "2 Vendor Log File" Upload. It is an
// io.Writer that a slog handler writes formatted lines to.
package logring

import "sync"

// Ring holds at most Size bytes of the most recent whole lines.
type Ring struct {
	Size int

	mu  sync.Mutex
	buf []byte
}

// New returns a ring of size bytes.
func New(size int) *Ring { return &Ring{Size: size} }

// Write appends p, dropping the oldest whole lines beyond Size.
func (r *Ring) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	if over := len(r.buf) - r.Size; over > 0 {
		cut := over
		for cut < len(r.buf) && r.buf[cut-1] != '\n' {
			cut++
		}
		r.buf = append(r.buf[:0], r.buf[cut:]...)
	}
	return len(p), nil
}

// String returns the kept lines.
func (r *Ring) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.buf)
}
