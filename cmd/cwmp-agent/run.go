package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/cli"
	"github.com/cwmp-agent/cwmp-agent/cmd/internal/config"
	"github.com/cwmp-agent/cwmp-agent/cpe"
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
	c, err := cpe.Build(cc)
	if err != nil {
		return err
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
	// Start-up (configuration, schema parsing) leaves garbage behind; an
	// embedded agent should give it back rather than hold it as RSS.
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
			debug.FreeOSMemory()
		}
	}()
	err = c.Run(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("agent stopped: %w", err)
	}
	log.Info("cwmp-agent stopped")
	return nil
}
