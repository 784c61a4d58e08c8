package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/confkit"
	"github.com/cwmp-agent/cwmp-agent/internal/redact"

	"github.com/cwmp-agent/cwmp-agent/internal/logring"
)

// Logs is the agent's logging: text or JSON to stderr, a copy of the
// tail in a ring for DeviceInfo.DeviceLog, level and format changeable at
// run time (SIGHUP).
type Logs struct {
	level slog.LevelVar
	inner atomic.Pointer[slog.Handler]
	Ring  *logring.Ring
	out   io.Writer
}

// NewLogs logs at level in format ("text" or "json") to out.
func NewLogs(level, format string, out io.Writer) *Logs {
	l := &Logs{Ring: logring.New(32 << 10), out: out}
	l.Apply(level, format)
	return l
}

// Apply changes the level and format (SIGHUP).
func (l *Logs) Apply(level, format string) {
	var lv slog.Level
	lv.UnmarshalText([]byte(level))
	l.level.Set(lv)
	w := io.MultiWriter(l.out, l.Ring)
	opts := &slog.HandlerOptions{Level: &l.level, ReplaceAttr: redactAttr}
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	l.inner.Store(&h)
}

// Logger is a logger that follows Apply.
func (l *Logs) Logger() *slog.Logger { return slog.New(&swapHandler{l: l}) }

// swapHandler forwards to the current handler, replaying With calls, so that
// loggers made before a SIGHUP follow the new format.
type swapHandler struct {
	l   *Logs
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

// Stderr is where the commands write their errors and logs (tests replace it).
var Stderr io.Writer = os.Stderr

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
					return slog.String(a.Key, redact.URLs(s))
				}
			}
		}
		return a
	}
	if s := v.String(); strings.Contains(s, "://") && strings.Contains(s, "@") {
		return slog.String(a.Key, redact.URLs(s))
	}
	return a
}

// EnvPrefix starts the environment variable of every configuration key
// (CWMP_AGENT_ACS_URL for acs.url).
const EnvPrefix = "CWMP_AGENT_"

// Log is the log section of the configuration, shared by every command.
type Log struct {
	Level  string `yaml:"level" help:"debug, info, warn or error"`
	Format string `yaml:"format" help:"text or json (log/slog)"`
}

// Validate checks it.
func (l Log) Validate() []error {
	var errs []error
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, &confkit.Error{Key: "log.level", Err: fmt.Errorf("%q: must be debug, info, warn or error", l.Level)})
	}
	switch l.Format {
	case "text", "json":
	default:
		errs = append(errs, &confkit.Error{Key: "log.format", Err: fmt.Errorf("%q: must be text or json", l.Format)})
	}
	return errs
}
