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

	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/cpe"
	"github.com/cwmp-agent/cwmp-agent/internal/netguard"
	"github.com/cwmp-agent/cwmp-agent/internal/linux/sysinfo"
	"github.com/cwmp-agent/cwmp-agent/soap"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

func parseVersion(s string) (soap.Version, error) { return soap.ParseVersion(s) }

// cpeConfig turns the configuration into the assembly of one CPE.
func cpeConfig(cfg *Config, logs *logSetup) cpe.Config {
	v, _ := parseVersion(cfg.ACS.Version)
	var host *sysinfo.Host
	if cfg.Device.SystemValues {
		host = &sysinfo.Host{}
	}
	factory := cfg.Factory()
	if cfg.Device.SoftwareVersion == "" {
		if sv := (sysinfo.Host{}).OSRelease("VERSION_ID"); sv != "" {
			factory[cfg.Device.Root+".DeviceInfo.SoftwareVersion"] = sv
		}
	}
	log := logs.logger()
	return cpe.Config{
		Root:     cfg.Device.Root,
		StateDir: cfg.StateDir,
		Factory:  factory,
		Agent: cwmp.Config{
			Version:                 v,
			TLS:                     cwmp.TLSConfig{CAFile: cfg.ACS.CAFile, ClientCert: cfg.ACS.ClientCert, ClientKey: cfg.ACS.ClientKey, InsecureSkipVerify: cfg.ACS.InsecureSkipVerify},
			ResponseTimeout:         cfg.ACS.ResponseTimeout,
			RetryMinimumWait:        cfg.ACS.RetryMinWait,
			RetryIntervalMultiplier: cfg.ACS.RetryMultiplier,
			Hooks:                   cwmp.Hooks{Reboot: cfg.Hooks.Reboot, FactoryReset: cfg.Hooks.FactoryReset, Firmware: cfg.Hooks.Firmware, ConfigFile: cfg.Hooks.ConfigFile},
			Logger:                  log,
		},
		ConnReqListen:        cfg.ConnectionRequest.Listen,
		ConnReqURL:           cfg.ConnectionRequest.URL,
		ConnReqLimits:        netguard.Limits{Max: cfg.ConnectionRequest.MaxConns, PerSource: cfg.ConnectionRequest.MaxConnsPerSource},
		STUN:                 tr111.ClientConfig{MaxTimestampAhead: cfg.UDPMaxAhead},
		ControlSocket:        cfg.Socket,
		Host:                 host,
		Log:                  logs.ring,
		NotifyPoll:           cfg.NotifyPoll,
		UDPListen:            cfg.UDPListen,
		VolatileUDPTimestamp: !cfg.UDPPersistTS,
		DHCP: cpe.DHCPConfig{ClientMode: cfg.DHCP.ClientMode, ClientInterface: cfg.DHCP.ClientInterface,
			InformServer: cfg.DHCP.InformServer, InformInterval: cfg.DHCP.InformInterval, ReleaseOnExit: cfg.DHCP.ReleaseOnExit,
			ResolvConf: cfg.DHCP.ResolvConf, ServerInterface: cfg.DHCP.ServerInterface, PoolStart: cfg.DHCP.PoolStart,
			PoolEnd: cfg.DHCP.PoolEnd, LeaseTime: cfg.DHCP.LeaseTime, Router: cfg.DHCP.Router, DNS: cfg.DHCP.DNS,
			PresenceInterval: cfg.DHCP.Presence},
		Mapping: cfg.Mapping.Entries,
		Logger:  log,
	}
}

// cmdRun runs the agent in the foreground until SIGTERM or SIGINT; SIGHUP
// reloads the log settings from the configuration file.
func cmdRun(args []string) error {
	cf := newCommonFlags("run", "[--config FILE] [flags]")
	if err := parseFlags(cf.fs, args); err != nil {
		return err
	}
	cfg, _, err := cf.load()
	if err != nil {
		return err
	}
	logs := newLogSetup(cfg.Log.Level, cfg.Log.Format, stderr)
	log := logs.logger()
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return &ConfigError{Key: "state_dir", Err: err}
	}
	c, err := cpe.Build(cpeConfig(cfg, logs))
	if err != nil {
		return err
	}
	log.Info("cwmp-agent starting", "version", version, "root", cfg.Device.Root, "serial", cfg.Device.SerialNumber,
		"connection_request_url", c.Tree.MustGet(cfg.Device.Root+".ManagementServer.ConnectionRequestURL"), "state_dir", cfg.StateDir)

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
				fresh, _, err := cf.load()
				if err != nil {
					log.Error("SIGHUP: configuration not reloaded", "err", err)
					continue
				}
				logs.apply(fresh.Log.Level, fresh.Log.Format)
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
