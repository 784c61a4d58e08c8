package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/cwmp-agent/cwmp-agent/internal/logring"
)

// logSetup is the agent's logging: text or JSON to stderr, a copy of the
// tail in a ring for DeviceInfo.DeviceLog, level and format changeable at
// run time (SIGHUP).
type logSetup struct {
	level slog.LevelVar
	inner atomic.Pointer[slog.Handler]
	ring  *logring.Ring
	out   io.Writer
}

func newLogSetup(level, format string, out io.Writer) *logSetup {
	l := &logSetup{ring: logring.New(32 << 10), out: out}
	l.apply(level, format)
	return l
}

func (l *logSetup) apply(level, format string) {
	var lv slog.Level
	lv.UnmarshalText([]byte(level))
	l.level.Set(lv)
	w := io.MultiWriter(l.out, l.ring)
	opts := &slog.HandlerOptions{Level: &l.level}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	l.inner.Store(&h)
}

func (l *logSetup) logger() *slog.Logger { return slog.New(&swapHandler{l: l}) }

// swapHandler forwards to the current handler, replaying With calls, so that
// loggers made before a SIGHUP follow the new format.
type swapHandler struct {
	l   *logSetup
	ops []func(slog.Handler) slog.Handler
}

func (s *swapHandler) cur() slog.Handler {
	h := *s.l.inner.Load()
	for _, op := range s.ops {
		h = op(h)
	}
	return h
}

func (s *swapHandler) Enabled(_ context.Context, lv slog.Level) bool { return lv >= s.l.level.Level() }
func (s *swapHandler) Handle(ctx context.Context, r slog.Record) error {
	return s.cur().Handle(ctx, r)
}
func (s *swapHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &swapHandler{l: s.l, ops: append(append([]func(slog.Handler) slog.Handler(nil), s.ops...), func(h slog.Handler) slog.Handler { return h.WithAttrs(as) })}
}
func (s *swapHandler) WithGroup(g string) slog.Handler {
	return &swapHandler{l: s.l, ops: append(append([]func(slog.Handler) slog.Handler(nil), s.ops...), func(h slog.Handler) slog.Handler { return h.WithGroup(g) })}
}

var stderr io.Writer = os.Stderr
