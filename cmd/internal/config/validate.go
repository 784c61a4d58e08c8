package config

import (
	"errors"
	"net"
	"net/url"
	"os"
	"regexp"
	"time"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/datamodel/backend"
	"github.com/cwmp-agent/cwmp-agent/diag"
	"github.com/cwmp-agent/cwmp-agent/soap"
	"github.com/cwmp-agent/cwmp-agent/swmod"
)

// OUIPattern is what device.oui must match (TR-106: six upper-case hex
// digits).
var OUIPattern = regexp.MustCompile(`^[0-9A-F]{6}$`)

// validate checks every section; the factory values are checked against
// the data model only when the rest is right.
func (c *Agent) validate() []error {
	var errs []error
	for _, check := range []func() []error{c.validateACS, c.validateDevice, c.validateListeners, c.validateDHCP,
		c.validateLog, c.validateMapping, c.validateDiagnostics, c.validateSoftware} {
		errs = append(errs, check()...)
	}
	if len(errs) == 0 {
		errs = c.validateFactory()
	}
	return errs
}

func (c *Agent) validateACS() []error {
	var errs []error
	a := &c.ACS
	if a.URL == "" {
		errs = append(errs, bad("acs.url", "required"))
	} else if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, bad("acs.url", "%q is not an http or https URL", a.URL))
	}
	if _, err := soap.ParseVersion(a.Version); err != nil {
		errs = append(errs, &Error{Key: "acs.version", Err: err})
	}
	if a.ResponseTimeout <= 0 {
		errs = append(errs, bad("acs.response_timeout", "must be positive"))
	}
	if a.RetryMinWait < time.Second || a.RetryMinWait > 65535*time.Second {
		errs = append(errs, bad("acs.retry_minimum_wait", "must be between 1s and 65535s"))
	}
	if a.RetryMultiplier < 1000 || a.RetryMultiplier > 65535 {
		errs = append(errs, bad("acs.retry_interval_multiplier", "must be between 1000 and 65535"))
	}
	if (a.ClientCert == "") != (a.ClientKey == "") {
		errs = append(errs, bad("acs.client_cert", "acs.client_cert and acs.client_key go together"))
	}
	for k, p := range map[string]string{"acs.ca_file": a.CAFile, "acs.client_cert": a.ClientCert, "acs.client_key": a.ClientKey} {
		if p != "" {
			if _, err := os.Stat(p); err != nil {
				errs = append(errs, &Error{Key: k, Err: err})
			}
		}
	}
	return errs
}

func (c *Agent) validateDevice() []error {
	var errs []error
	d := &c.Device
	if _, err := c.Schema(); err != nil {
		errs = append(errs, err)
	}
	if !OUIPattern.MatchString(d.OUI) {
		errs = append(errs, bad("device.oui", "%q: must be six upper-case hex digits (e.g. 00D09E)", d.OUI))
	}
	if d.SerialNumber == "" {
		errs = append(errs, bad("device.serial_number", "required"))
	}
	for k, v := range map[string]string{"device.manufacturer": d.Manufacturer, "device.product_class": d.ProductClass,
		"device.serial_number": d.SerialNumber, "device.software_version": d.SoftwareVersion, "device.hardware_version": d.HardwareVersion} {
		if len(v) > 64 {
			errs = append(errs, bad(k, "longer than 64 characters"))
		}
	}
	if c.StateDir == "" {
		errs = append(errs, bad("state_dir", "required"))
	}
	if c.Periodic.Interval < 1 {
		errs = append(errs, bad("periodic_inform.interval", "must be at least 1"))
	}
	if c.Notify.PollInterval < 100*time.Millisecond {
		errs = append(errs, bad("notify.poll_interval", "must be at least 100ms"))
	}
	return errs
}

func (c *Agent) validateListeners() []error {
	var errs []error
	cr := &c.ConnectionRequest
	for k, addr := range map[string]string{"connection_request.listen": cr.Listen, "udp_connection_request.listen": c.UDP.Listen,
		"metrics.listen": c.Metrics.Listen} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, bad(k, "%q: want host:port or :port", addr))
		}
	}
	if cr.URL != "" {
		if u, err := url.Parse(cr.URL); err != nil || u.Scheme != "http" || u.Host == "" {
			errs = append(errs, bad("connection_request.url", "%q: must be an http URL (TR-069: Connection Requests use HTTP)", cr.URL))
		}
	}
	if cr.MaxConns < 1 {
		errs = append(errs, bad("connection_request.max_connections", "must be at least 1"))
	}
	if cr.MaxConnsPerSource < 1 {
		errs = append(errs, bad("connection_request.max_connections_per_source", "must be at least 1"))
	}
	if c.UDP.MaxAhead < time.Minute {
		errs = append(errs, bad("udp_connection_request.max_timestamp_ahead", "must be at least 1m"))
	}
	return errs
}

func (c *Agent) validateDHCP() []error {
	var errs []error
	cl, sv := &c.DHCP.Client, &c.DHCP.Server
	switch cl.Mode {
	case "":
	case "lease", "inform":
		if s, err := c.Schema(); err == nil && s.Object(s.RootName()+".GatewayInfo.") == nil {
			errs = append(errs, bad("dhcp.client.mode", "the device side records GatewayInfo, which %s does not have (Device:1.1 and Device:2 do)", s.Model))
		}
		if cl.Interface == "" {
			errs = append(errs, bad("dhcp.client.interface", "required with dhcp.client.mode"))
		}
	default:
		errs = append(errs, bad("dhcp.client.mode", "%q: must be lease, inform or empty", cl.Mode))
	}
	if cl.InformInterval < time.Second {
		errs = append(errs, bad("dhcp.client.inform_interval", "must be at least 1s"))
	}
	if sv.Interface != "" {
		if s, err := c.Schema(); err == nil && s.Object(s.RootName()+".ManagementServer.ManageableDevice.{i}.") == nil {
			errs = append(errs, bad("dhcp.server.interface", "the gateway side fills the ManageableDevice table, which %s does not have (InternetGatewayDevice and Device:2 do)", s.Model))
		}
		if sv.PoolStart == nil {
			errs = append(errs, bad("dhcp.server.pool_start", "required with dhcp.server.interface"))
		}
		if sv.PoolEnd == nil {
			errs = append(errs, bad("dhcp.server.pool_end", "required with dhcp.server.interface"))
		}
	}
	if sv.LeaseTime < 2*time.Second {
		errs = append(errs, bad("dhcp.server.lease_time", "must be at least 2s"))
	}
	if c.DHCP.Presence < 0 {
		errs = append(errs, bad("dhcp.presence_check", "must not be negative"))
	}
	return errs
}

func (c *Agent) validateLog() []error {
	return c.Log.Validate()
}

// validateMapping reads the mapping file: one error per bad line of it.
func (c *Agent) validateMapping() []error {
	if c.MappingFile == "" {
		return nil
	}
	s, err := c.Schema()
	if err != nil {
		return nil // reported with the device section
	}
	fh, err := os.Open(c.MappingFile)
	if err != nil {
		return []error{&Error{Key: "mapping", Err: err}}
	}
	defer fh.Close()
	es, err := backend.Load(fh, s)
	c.Mapping = es
	if err == nil {
		return nil
	}
	list := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	}
	var errs []error
	for _, e := range list {
		var le *backend.LineError
		if errors.As(e, &le) {
			errs = append(errs, &Error{Key: "mapping", File: c.MappingFile, Line: le.Line, Err: le.Err})
		} else {
			errs = append(errs, bad("mapping", "%s: %w", c.MappingFile, e))
		}
	}
	return errs
}

// validateFactory builds a tree of the factory values: it names the path
// of any that does not fit the data model.
func (c *Agent) validateFactory() []error {
	s, _ := c.Schema()
	if _, err := datamodel.New(s, datamodel.Options{Factory: c.Factory()}); err != nil {
		var pe *datamodel.PathError
		if errors.As(err, &pe) {
			return []error{&Error{Key: "parameters." + pe.Path, Err: pe.Err}}
		}
		return []error{&Error{Key: "parameters", Err: err}}
	}
	return nil
}

func (c *Agent) validateDiagnostics() []error {
	d := &c.Diagnostics
	var errs []error
	switch d.Mode {
	case "real", "simulated":
	default:
		errs = append(errs, bad("diagnostics.mode", "%q: must be real or simulated", d.Mode))
	}
	if d.Loss < 0 || d.Loss > 1 {
		errs = append(errs, bad("diagnostics.loss", "%v: must be from 0 to 1", d.Loss))
	}
	if d.Latency < 0 || d.Jitter < 0 {
		errs = append(errs, bad("diagnostics.latency", "must not be negative"))
	}
	if d.Hops < 0 || d.Hops > 63 {
		errs = append(errs, bad("diagnostics.hops", "%d: must be from 0 to 63", d.Hops))
	}
	if _, err := diag.ParseSimulated("", "", "", d.Throughput, 0); err != nil {
		errs = append(errs, bad("diagnostics.throughput", "%q: %v", d.Throughput, err))
	}
	return errs
}

// Prober is the diagnostics' prober the configuration asks for.
func (c *Agent) Prober() diag.Prober {
	d := &c.Diagnostics
	if d.Mode != "simulated" {
		return &diag.Real{}
	}
	s, _ := diag.ParseSimulated("", "", "", d.Throughput, d.Hops) // checked by validate
	s.Latency, s.Jitter, s.Loss, s.Wait = d.Latency, d.Jitter, d.Loss, d.Wait
	return s
}

func (c *Agent) validateSoftware() []error {
	sm := &c.SoftwareModules
	var errs []error
	for key, code := range map[string]int{"fail_install": sm.FailInstall, "fail_update": sm.FailUpdate, "fail_uninstall": sm.FailUninstall} {
		// The faults a deployment-unit operation may report
		// (cwmp-1-2.xsd DeploymentUnitCPEFaultCodeType).
		switch {
		case code == 0, code == 9001, code == 9003, code == 9012, code == 9013, code >= 9015 && code <= 9018, code >= 9022 && code <= 9032:
		default:
			errs = append(errs, bad("software_modules."+key, "%d: not a fault a deployment unit operation reports (9001, 9003, 9012, 9013, 9015-9018, 9022-9032)", code))
		}
	}
	return errs
}

// SoftwareBackend is what installs deployment units: the hook when one is
// configured, else the virtual backend.
func (c *Agent) SoftwareBackend() swmod.Backend {
	sm := &c.SoftwareModules
	if sm.Hook != "" {
		return &swmod.Hook{Command: sm.Hook}
	}
	fail := map[string]int{}
	for op, code := range map[string]int{"install": sm.FailInstall, "update": sm.FailUpdate, "uninstall": sm.FailUninstall} {
		if code != 0 {
			fail[op] = code
		}
	}
	return &swmod.Virtual{Fail: fail}
}
