package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

	"github.com/cwmp-agent/cwmp-agent/cwmp"

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
	opts := &slog.HandlerOptions{Level: &l.level, ReplaceAttr: redactAttr}
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

// redactAttr is the last guard against a URL's password reaching the log
// (and through it DeviceInfo.DeviceLog and uploaded log files): any string
// value that holds a URL with userinfo has its password hidden, whichever
// component logged it.
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	v := a.Value
	if v.Kind() != slog.KindString {
		if v.Kind() == slog.KindAny {
			if err, ok := v.Any().(error); ok {
				if s := err.Error(); strings.Contains(s, "://") && strings.Contains(s, "@") {
					return slog.String(a.Key, redactURLs(s))
				}
			}
		}
		return a
	}
	if s := v.String(); strings.Contains(s, "://") && strings.Contains(s, "@") {
		return slog.String(a.Key, redactURLs(s))
	}
	return a
}

// redactURLs hides the password of every URL in s.
func redactURLs(s string) string {
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '"' || r == '\'' || r == '<' || r == '>' })
	for _, f := range fields {
		if strings.Contains(f, "://") && strings.Contains(f, "@") {
			s = strings.ReplaceAll(s, f, cwmp.RedactURL(f))
		}
	}
	return s
}
