package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/cli"
	"github.com/cwmp-agent/cwmp-agent/cmd/internal/config"
	"github.com/cwmp-agent/cwmp-agent/cpe"
	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/internal/linux/imagepages"
)

// cmdRun runs the agent in the foreground until SIGTERM or SIGINT; SIGHUP
// reloads the log settings from the configuration file.
func cmdRun(args []string) error {
	cf := newCommon("run", "[--config FILE] [flags]")
	if err := cli.Parse(cf.FS, args); err != nil {
		return err
	}
	cfg, err := load(cf)
	if err != nil {
		return err
	}
	logs := cli.NewLogs(cfg.Log.Level, cfg.Log.Format, cli.Stderr)
	log := logs.Logger()
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return &config.Error{Key: "state_dir", Err: err}
	}
	cc := cfg.CPE(log, logs.Ring)
	cc.Agent.UserAgent = "cwmp-agent/" + version
	sessionDone := make(chan struct{}, 1)
	// lastSession is the outcome of the last session, for /readyz.
	var lastSession atomic.Pointer[string]
	cc.Agent.OnSession = func(r cwmp.SessionResult) {
		kind := cwmp.ErrorKind(r.Err)
		lastSession.Store(&kind)
		select {
		case sessionDone <- struct{}{}:
		default:
		}
	}
	ms, err := newMetrics(cfg.Metrics.Listen, &cc)
	if err != nil {
		return &config.Error{Key: "metrics.listen", Err: err}
	}
	c, err := cpe.Build(cc)
	if err != nil {
		return err
	}
	// Ready: the last session with the ACS succeeded (the CPE can be
	// managed); not before the first one.
	ready := func() error {
		switch k := lastSession.Load(); {
		case k == nil:
			return errors.New("no session with the ACS yet")
		case *k != "":
			return fmt.Errorf("the last session with the ACS failed: %s", *k)
		}
		return nil
	}
	if err := ms.listen(c, ready, log); err != nil {
		return &config.Error{Key: "metrics.listen", Err: err}
	}
	log.Info("cwmp-agent starting", "version", version, "data_model", c.Tree.Schema().Model, "serial", cfg.Device.SerialNumber,
		"connection_request_url", c.Tree.MustGet(cfg.RootName()+".ManagementServer.ConnectionRequestURL"), "state_dir", cfg.StateDir)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if cfg.File == "" {
					continue
				}
				fresh, err := load(cf)
				if err != nil {
					log.Error("SIGHUP: configuration not reloaded", "err", err)
					continue
				}
				logs.Apply(fresh.Log.Level, fresh.Log.Format)
				log.Info("SIGHUP: log settings reloaded", "level", fresh.Log.Level, "format", fresh.Log.Format)
			}
		}
	}()
	// Start-up (configuration, schema parsing, every package's initialiser)
	// leaves garbage and touched code behind; an embedded agent gives both
	// back rather than hold them as RSS, once started and then every
	// trimInterval (a GC of a small heap and one madvise per mapping).
	go trimMemory(ctx, log, sessionDone)
	go ms.run(ctx, log)
	err = c.Run(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("agent stopped: %w", err)
	}
	log.Info("cwmp-agent stopped")
	return nil
}

// trimDelay is how long after start-up or a session the agent hands back
// what it no longer uses: sessions touch code and heap an idle agent does
// not. It is short: an idle device should look idle to top(1) soon after.
const trimDelay = 200 * time.Millisecond

// trimMemory returns garbage to the system and drops the executable's
// pages from the resident set (imagepages) once started and after each
// session. The cost is one GC of a small heap and a few madvise calls.
func trimMemory(ctx context.Context, log *slog.Logger, sessionDone <-chan struct{}) {
	t := time.NewTimer(trimDelay)
	defer t.Stop()
	logged := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-sessionDone:
			t.Reset(trimDelay)
		case <-t.C:
			debug.FreeOSMemory()
			if _, err := imagepages.Release(); err != nil && !logged {
				log.Debug("executable pages not released", "err", err)
				logged = true
			}
		}
	}
}
