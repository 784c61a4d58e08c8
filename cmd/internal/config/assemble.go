package config

import (
	"log/slog"

	"github.com/cwmp-agent/cwmp-agent/cpe"
	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/internal/linux/sysinfo"
	"github.com/cwmp-agent/cwmp-agent/internal/logring"
	"github.com/cwmp-agent/cwmp-agent/internal/netguard"
	"github.com/cwmp-agent/cwmp-agent/soap"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// CPE turns the configuration into the assembly of one CPE; ring receives
// the log tail (DeviceInfo.DeviceLog), nil none.
func (c *Agent) CPE(log *slog.Logger, ring *logring.Ring) cpe.Config {
	v, _ := soap.ParseVersion(c.ACS.Version)
	var host *sysinfo.Host
	if c.Device.SystemValues {
		host = &sysinfo.Host{}
	}
	factory := c.Factory()
	if c.Device.SoftwareVersion == "" {
		if sv := (sysinfo.Host{}).OSRelease("VERSION_ID"); sv != "" {
			factory[c.RootName()+".DeviceInfo.SoftwareVersion"] = sv
		}
	}
	d := &c.DHCP
	s, _ := c.Schema() // checked by Load
	return cpe.Config{
		Schema:   s,
		Root:     c.RootName(),
		StateDir: c.StateDir,
		Factory:  factory,
		Agent: cwmp.Config{
			Version: v,
			TLS: cwmp.TLSConfig{CAFile: c.ACS.CAFile, ClientCert: c.ACS.ClientCert, ClientKey: c.ACS.ClientKey,
				InsecureSkipVerify: c.ACS.InsecureSkipVerify},
			ResponseTimeout:         c.ACS.ResponseTimeout,
			RetryMinimumWait:        c.ACS.RetryMinWait,
			RetryIntervalMultiplier: c.ACS.RetryMultiplier,
			Hooks: cwmp.Hooks{Reboot: c.Hooks.Reboot, FactoryReset: c.Hooks.FactoryReset, Firmware: c.Hooks.Firmware,
				ConfigFile: c.Hooks.ConfigFile},
			Logger: log,
		},
		ConnReqListen:        c.ConnectionRequest.Listen,
		ConnReqURL:           c.ConnectionRequest.URL,
		ConnReqLimits:        netguard.Limits{Max: c.ConnectionRequest.MaxConns, PerSource: c.ConnectionRequest.MaxConnsPerSource},
		STUN:                 tr111.ClientConfig{MaxTimestampAhead: c.UDP.MaxAhead},
		ControlSocket:        c.Control.Socket,
		Host:                 host,
		Log:                  ring,
		NotifyPoll:           c.Notify.PollInterval,
		UDPListen:            c.UDP.Listen,
		VolatileUDPTimestamp: !c.UDP.PersistTimestamp,
		DHCP: cpe.DHCPConfig{ClientMode: d.Client.Mode, ClientInterface: d.Client.Interface,
			InformServer: d.Client.InformServer, InformInterval: d.Client.InformInterval, ReleaseOnExit: d.Client.ReleaseOnExit,
			ResolvConf: d.Client.ResolvConf, ServerInterface: d.Server.Interface, PoolStart: d.Server.PoolStart,
			PoolEnd: d.Server.PoolEnd, LeaseTime: d.Server.LeaseTime, Router: d.Server.Router, DNS: d.Server.DNS,
			PresenceInterval: d.Presence},
		Mapping:         c.Mapping,
		Diagnostics:     c.Prober(),
		SoftwareModules: c.SoftwareBackend(),
		Logger:          log,
	}
}
