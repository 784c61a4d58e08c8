package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/datamodel/backend"
	"github.com/cwmp-agent/cwmp-agent/schemas"
)

// delim separates viper key levels. It is not "." because the keys of
// `parameters` are whole dotted parameter paths that must stay whole.
const delim = "::"

// setting is one configuration key: its name (dotted, as written in YAML
// and in messages), default, and help.
type setting struct {
	key  string
	def  any
	help string
}

// settings lists every key the agent reads. The README's configuration
// table is written from it.
var settings = []setting{
	{"acs.url", "", "ACS URL (http or https); factory value of ManagementServer.URL"},
	{"acs.username", "", "CPE username for the ACS (ManagementServer.Username)"},
	{"acs.password", "", "CPE password for the ACS (ManagementServer.Password)"},
	{"acs.ca_file", "", "PEM CA certificates trusted for https ACS and file servers, in addition to the system roots"},
	{"acs.client_cert", "", "PEM client certificate for TLS"},
	{"acs.client_key", "", "PEM key of acs.client_cert"},
	{"acs.insecure_skip_verify", false, "do not verify the ACS certificate (testing only)"},
	{"acs.version", "1.4", "highest CWMP version to speak: 1.0 ... 1.4"},
	{"acs.response_timeout", "30s", "how long to wait for each ACS response"},
	{"acs.retry_minimum_wait", "5s", "CWMPRetryMinimumWaitInterval of the session retry back-off"},
	{"acs.retry_interval_multiplier", 2000, "CWMPRetryIntervalMultiplier (1/1000) of the back-off"},
	{"device.root", "Device", "data model root: Device (Device:1.1) or InternetGatewayDevice (InternetGatewayDevice:1.2)"},
	{"device.manufacturer", "cwmp-agent", "DeviceInfo.Manufacturer"},
	{"device.oui", "", "DeviceInfo.ManufacturerOUI: six upper-case hex digits"},
	{"device.product_class", "", "DeviceInfo.ProductClass"},
	{"device.serial_number", "", "DeviceInfo.SerialNumber"},
	{"device.model_name", "", "DeviceInfo.ModelName"},
	{"device.description", "", "DeviceInfo.Description"},
	{"device.software_version", "", "DeviceInfo.SoftwareVersion (default: VERSION_ID of /etc/os-release)"},
	{"device.hardware_version", "", "DeviceInfo.HardwareVersion"},
	{"device.system_values", true, "bind LAN/WAN addresses and counters to the interface that reaches the ACS"},
	{"state_dir", "/var/lib/cwmp-agent", "where the tree, events, transfers and notifications persist"},
	{"connection_request.listen", ":7547", "TCP address of the HTTP Connection Request listener"},
	{"connection_request.username", "", "factory ConnectionRequestUsername"},
	{"connection_request.password", "", "factory ConnectionRequestPassword"},
	{"connection_request.url", "", "announce this ConnectionRequestURL instead of the computed one (port forward, name)"},
	{"connection_request.max_connections", 64, "connections the HTTP Connection Request listener holds at once; more are closed at once"},
	{"connection_request.max_connections_per_source", 8, "the same, from one source address"},
	{"udp_connection_request.listen", ":7547", "UDP address for TR-111 UDP Connection Requests and STUN (empty: off)"},
	{"udp_connection_request.persist_timestamp", true, "keep the last accepted UDP Connection Request timestamp across restarts"},
	{"udp_connection_request.max_timestamp_ahead", "1h", "how far ahead of the CPE's clock a UDP Connection Request's ts may be"},
	{"periodic_inform.enable", true, "factory PeriodicInformEnable"},
	{"periodic_inform.interval", 3600, "factory PeriodicInformInterval, seconds"},
	{"parameters", map[string]any{}, "map of full parameter path to factory value"},
	{"control.socket", "/run/cwmp-agent/agent.sock", "the local control socket"},
	{"hooks.reboot", "", "command run for Reboot (argument: CommandKey); empty: virtual reboot"},
	{"hooks.factory_reset", "", "command run for FactoryReset; empty: virtual reset"},
	{"hooks.firmware", "", "command run for a downloaded firmware image (arguments: file, CommandKey)"},
	{"hooks.config_file", "", "command run for a downloaded vendor configuration file (arguments: file, CommandKey)"},
	{"dhcp.client.mode", "", "TR-111 device side, built-in DHCP client: lease (obtain and keep a lease), inform (DHCPINFORM only) or empty (off; hook mode needs nothing). Root Device"},
	{"dhcp.client.interface", "", "interface the built-in DHCP client runs on"},
	{"dhcp.client.inform_server", "", "where DHCPINFORM goes (unicast); empty: the interface's default gateway"},
	{"dhcp.client.inform_interval", "1h", "time between DHCPINFORMs"},
	{"dhcp.client.release_on_exit", false, "send DHCPRELEASE when the agent stops (otherwise the lease is kept for the next start)"},
	{"dhcp.client.resolv_conf", "", "file to write the lease's DNS servers to (empty: none)"},
	{"dhcp.server.interface", "", "TR-111 gateway side, built-in DHCP server on this LAN interface (empty: off). Root InternetGatewayDevice"},
	{"dhcp.server.pool_start", "", "first address the built-in server gives out"},
	{"dhcp.server.pool_end", "", "last address the built-in server gives out"},
	{"dhcp.server.lease_time", "1h", "lease time of the built-in server (at least 2s)"},
	{"dhcp.server.router", "", "router announced in option 3 (empty: the interface's address)"},
	{"dhcp.server.dns", "", "comma-separated DNS servers announced in option 6 (empty: none)"},
	{"dhcp.presence_check", "60s", "how often the ManageableDevice table checks the kernel neighbour table for departed devices (0: never)"},
	{"mapping", "", "mapping file (YAML) binding parameters to files, commands or the control socket (see README)"},
	{"notify.poll_interval", "10s", "how often computed parameters with a Notification attribute are read"},
	{"log.level", "info", "debug, info, warn or error"},
	{"log.format", "text", "text or json (log/slog)"},
}

// Config is the agent's configuration as plain values.
type Config struct {
	ACS struct {
		URL, Username, Password       string
		CAFile, ClientCert, ClientKey string
		InsecureSkipVerify            bool
		Version                       string
		ResponseTimeout, RetryMinWait time.Duration
		RetryMultiplier               int
	}
	Device struct {
		Root, Manufacturer, OUI, ProductClass, SerialNumber string
		ModelName, Description                              string
		SoftwareVersion, HardwareVersion                    string
		SystemValues                                        bool
	}
	StateDir          string
	ConnectionRequest struct {
		Listen, Username, Password, URL string
		MaxConns, MaxConnsPerSource     int
	}
	UDPListen    string
	UDPPersistTS bool
	UDPMaxAhead  time.Duration
	Periodic     struct {
		Enable   bool
		Interval int
	}
	Parameters map[string]string
	Socket     string
	Hooks      struct{ Reboot, FactoryReset, Firmware, ConfigFile string }
	NotifyPoll time.Duration
	DHCP       struct {
		ClientMode, ClientInterface, ResolvConf string
		InformServer                            net.IP
		InformInterval                          time.Duration
		ReleaseOnExit                           bool
		ServerInterface                         string
		PoolStart, PoolEnd, Router              net.IP
		DNS                                     []net.IP
		LeaseTime, Presence                     time.Duration
	}
	Log struct{ Level, Format string }
	// Mapping is the mapping file and its mounts.
	Mapping struct {
		File    string
		Entries []backend.Entry
	}
	File string // the config file read, if any
}

// ConfigError names the key and the problem, and where the file says it
// when the key is in the file.
type ConfigError struct {
	Key  string
	Err  error
	File string
	Line int
}

func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("config: %s:%d: %s: %v", e.File, e.Line, e.Key, e.Err)
	}
	return "config: " + e.Key + ": " + e.Err.Error()
}

// keyLines maps every key of a YAML file, dotted, to its line (parameters
// keep their whole path after "parameters.").
func keyLines(data []byte) map[string]int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil {
		return nil
	}
	out := map[string]int{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind == yaml.DocumentNode {
			for _, c := range n.Content {
				walk(c, prefix)
			}
			return
		}
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			key := strings.ToLower(k.Value)
			if prefix == "parameters." {
				key = k.Value
			}
			out[prefix+key] = k.Line
			walk(n.Content[i+1], prefix+key+".")
		}
	}
	walk(&doc, "")
	return out
}

// withLines adds file and line to the configuration errors of err.
func withLines(err error, file string) error {
	if file == "" {
		return err
	}
	data, rerr := os.ReadFile(file)
	if rerr != nil {
		return err
	}
	lines := keyLines(data)
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		var ce *ConfigError
		if errors.As(e, &ce) && ce.Line == 0 {
			k := ce.Key
			for k != "" {
				if l, ok := lines[k]; ok {
					ce.File, ce.Line = file, l
					break
				}
				i := strings.LastIndexByte(k, '.')
				if i < 0 || strings.HasPrefix(k, "parameters.") && i < len("parameters.") {
					break
				}
				k = k[:i]
			}
		}
	}
	return errors.Join(list...)
}

func vkey(k string) string { return strings.ReplaceAll(k, ".", delim) }

// newViper builds a viper with the key delimiter, defaults and environment
// variables CWMP_AGENT_<KEY> (dots become underscores).
func newViper() *viper.Viper {
	v := viper.NewWithOptions(viper.KeyDelimiter(delim))
	for _, s := range settings {
		v.SetDefault(vkey(s.key), s.def)
	}
	v.SetEnvPrefix("CWMP_AGENT")
	v.SetEnvKeyReplacer(strings.NewReplacer(delim, "_"))
	v.AutomaticEnv()
	return v
}

// flagKeys are the flags that set a configuration key.
var flagKeys = map[string]string{
	"acs-url": "acs.url", "state-dir": "state_dir", "root": "device.root", "serial": "device.serial_number",
	"oui": "device.oui", "socket": "control.socket", "log-level": "log.level", "log-format": "log.format",
	"cr-listen": "connection_request.listen",
}

// commonFlags are the flags of the commands that read the configuration.
type commonFlags struct {
	fs     *pflag.FlagSet
	config *string
}

// newCommonFlags is the flag set of a command that reads the
// configuration: --config and the flags of flagKeys.
func newCommonFlags(name, synopsis string) *commonFlags {
	fs := newFlags(name, synopsis)
	c := &commonFlags{fs: fs, config: fs.String("config", "", "YAML configuration file")}
	names := make([]string, 0, len(flagKeys))
	for n := range flagKeys {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fs.String(n, "", "sets "+flagKeys[n])
	}
	return c
}

// load reads the configuration: defaults, then the file, then environment
// variables, then flags. Every problem names its key.
func (c *commonFlags) load() (*Config, *viper.Viper, error) {
	v := newViper()
	if *c.config != "" {
		v.SetConfigFile(*c.config)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, nil, &ConfigError{Key: "--config " + *c.config, Err: err}
		}
	}
	c.fs.Visit(func(f *pflag.Flag) {
		if key, ok := flagKeys[f.Name]; ok {
			v.Set(vkey(key), f.Value.String())
		}
	})
	var params map[string]any
	if *c.config != "" {
		p, err := readParameters(*c.config)
		if err != nil {
			return nil, nil, &ConfigError{Key: "parameters", Err: err}
		}
		params = p
	}
	cfg, err := decode(v, params)
	if err != nil {
		return nil, nil, withLines(err, *c.config)
	}
	cfg.File = *c.config
	return cfg, v, nil
}

// readParameters reads the `parameters` map of a configuration file with
// its keys as written: viper folds keys to lower case, and parameter paths
// are case-sensitive.
func readParameters(file string) (map[string]any, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Parameters map[string]any `yaml:"parameters"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return doc.Parameters, nil
}

var ouiRE = regexp.MustCompile(`^[0-9A-F]{6}$`)

// known accepts the agent's keys and the stun-server's, so that one file
// can configure both.
func known(key string) bool {
	for _, s := range append(append([]setting(nil), settings...), stunSettings...) {
		if s.key == key {
			return true
		}
	}
	return false
}

// decode turns viper's values into a Config and validates them.
func decode(v *viper.Viper, params map[string]any) (*Config, error) {
	for _, k := range v.AllKeys() {
		dotted := strings.ReplaceAll(k, delim, ".")
		if strings.HasPrefix(dotted, "parameters.") || known(dotted) {
			continue
		}
		return nil, &ConfigError{Key: dotted, Err: errors.New("unknown key")}
	}
	str := func(k string) string { return strings.TrimSpace(v.GetString(vkey(k))) }
	var cfg Config
	var errs []error
	bad := func(k string, err error) { errs = append(errs, &ConfigError{Key: k, Err: err}) }
	boolean := func(k string) bool {
		raw := v.Get(vkey(k))
		switch x := raw.(type) {
		case bool:
			return x
		case string:
			b, err := strconv.ParseBool(x)
			if err != nil {
				bad(k, fmt.Errorf("%q is not a boolean", x))
			}
			return b
		}
		return v.GetBool(vkey(k))
	}
	integer := func(k string) int {
		raw := v.Get(vkey(k))
		switch x := raw.(type) {
		case int:
			return x
		case string:
			n, err := strconv.Atoi(strings.TrimSpace(x))
			if err != nil {
				bad(k, fmt.Errorf("%q is not a whole number", x))
			}
			return n
		}
		return v.GetInt(vkey(k))
	}
	dur := func(k string) time.Duration {
		raw := v.Get(vkey(k))
		if s, ok := raw.(string); ok {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil {
				bad(k, fmt.Errorf("%q is not a duration (e.g. 30s)", s))
			}
			return d
		}
		return v.GetDuration(vkey(k))
	}
	a := &cfg.ACS
	a.URL, a.Username, a.Password = str("acs.url"), v.GetString(vkey("acs.username")), v.GetString(vkey("acs.password"))
	a.CAFile, a.ClientCert, a.ClientKey = str("acs.ca_file"), str("acs.client_cert"), str("acs.client_key")
	a.InsecureSkipVerify = boolean("acs.insecure_skip_verify")
	a.Version = str("acs.version")
	a.ResponseTimeout = dur("acs.response_timeout")
	a.RetryMinWait = dur("acs.retry_minimum_wait")
	a.RetryMultiplier = integer("acs.retry_interval_multiplier")
	d := &cfg.Device
	d.Root, d.Manufacturer, d.OUI = str("device.root"), str("device.manufacturer"), str("device.oui")
	d.ProductClass, d.SerialNumber = str("device.product_class"), str("device.serial_number")
	d.ModelName, d.Description = str("device.model_name"), str("device.description")
	d.SoftwareVersion, d.HardwareVersion = str("device.software_version"), str("device.hardware_version")
	d.SystemValues = boolean("device.system_values")
	cfg.StateDir = str("state_dir")
	cr := &cfg.ConnectionRequest
	cr.Listen, cr.Username, cr.Password, cr.URL = str("connection_request.listen"), v.GetString(vkey("connection_request.username")),
		v.GetString(vkey("connection_request.password")), str("connection_request.url")
	cr.MaxConns, cr.MaxConnsPerSource = integer("connection_request.max_connections"), integer("connection_request.max_connections_per_source")
	cfg.UDPListen = str("udp_connection_request.listen")
	cfg.UDPPersistTS = boolean("udp_connection_request.persist_timestamp")
	cfg.UDPMaxAhead = dur("udp_connection_request.max_timestamp_ahead")
	cfg.Periodic.Enable = boolean("periodic_inform.enable")
	cfg.Periodic.Interval = integer("periodic_inform.interval")
	cfg.Socket = str("control.socket")
	cfg.Hooks.Reboot, cfg.Hooks.FactoryReset = str("hooks.reboot"), str("hooks.factory_reset")
	cfg.Hooks.Firmware, cfg.Hooks.ConfigFile = str("hooks.firmware"), str("hooks.config_file")
	cfg.NotifyPoll = dur("notify.poll_interval")
	cfg.Mapping.File = str("mapping")
	dh := &cfg.DHCP
	ip4 := func(k string) net.IP {
		v := str(k)
		if v == "" {
			return nil
		}
		ip := net.ParseIP(v).To4()
		if ip == nil {
			bad(k, fmt.Errorf("%q is not an IPv4 address", v))
		}
		return ip
	}
	dh.ClientMode, dh.ClientInterface, dh.ResolvConf = str("dhcp.client.mode"), str("dhcp.client.interface"), str("dhcp.client.resolv_conf")
	dh.InformServer = ip4("dhcp.client.inform_server")
	dh.InformInterval = dur("dhcp.client.inform_interval")
	dh.ReleaseOnExit = boolean("dhcp.client.release_on_exit")
	dh.ServerInterface = str("dhcp.server.interface")
	dh.PoolStart, dh.PoolEnd, dh.Router = ip4("dhcp.server.pool_start"), ip4("dhcp.server.pool_end"), ip4("dhcp.server.router")
	for _, d := range strings.Split(str("dhcp.server.dns"), ",") {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		if ip := net.ParseIP(d).To4(); ip != nil {
			dh.DNS = append(dh.DNS, ip)
		} else {
			bad("dhcp.server.dns", fmt.Errorf("%q is not an IPv4 address", d))
		}
	}
	dh.LeaseTime = dur("dhcp.server.lease_time")
	dh.Presence = dur("dhcp.presence_check")
	cfg.Log.Level, cfg.Log.Format = str("log.level"), str("log.format")
	cfg.Parameters = map[string]string{}
	if raw := v.Get(vkey("parameters")); raw != nil {
		if _, ok := raw.(map[string]any); !ok {
			bad("parameters", errors.New("must be a map of parameter path to value"))
		}
		for k, val := range params {
			switch x := val.(type) {
			case map[string]any, []any:
				bad("parameters."+k, errors.New("must be a single value (a whole dotted path as the key)"))
			case nil:
				cfg.Parameters[k] = ""
			default:
				cfg.Parameters[k] = fmt.Sprint(x)
			}
		}
	}

	// Validation.
	if a.URL == "" {
		bad("acs.url", errors.New("required"))
	} else if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("acs.url", fmt.Errorf("%q is not an http or https URL", a.URL))
	}
	if _, err := parseVersion(a.Version); err != nil {
		bad("acs.version", err)
	}
	if a.ResponseTimeout <= 0 {
		bad("acs.response_timeout", errors.New("must be positive"))
	}
	if a.RetryMinWait < time.Second || a.RetryMinWait > 65535*time.Second {
		bad("acs.retry_minimum_wait", errors.New("must be between 1s and 65535s"))
	}
	if a.RetryMultiplier < 1000 || a.RetryMultiplier > 65535 {
		bad("acs.retry_interval_multiplier", errors.New("must be between 1000 and 65535"))
	}
	if (a.ClientCert == "") != (a.ClientKey == "") {
		bad("acs.client_cert", errors.New("acs.client_cert and acs.client_key go together"))
	}
	for _, k := range []string{"acs.ca_file", "acs.client_cert", "acs.client_key"} {
		if p := str(k); p != "" {
			if _, err := os.Stat(p); err != nil {
				bad(k, err)
			}
		}
	}
	if _, err := schemas.For(d.Root); err != nil || d.Root == "" {
		bad("device.root", fmt.Errorf("%q: must be Device or InternetGatewayDevice", d.Root))
	}
	if !ouiRE.MatchString(d.OUI) {
		bad("device.oui", fmt.Errorf("%q: must be six upper-case hex digits (e.g. 00D09E)", d.OUI))
	}
	if d.SerialNumber == "" {
		bad("device.serial_number", errors.New("required"))
	}
	for k, val := range map[string]string{"device.manufacturer": d.Manufacturer, "device.product_class": d.ProductClass,
		"device.serial_number": d.SerialNumber, "device.software_version": d.SoftwareVersion, "device.hardware_version": d.HardwareVersion} {
		if len(val) > 64 {
			bad(k, errors.New("longer than 64 characters"))
		}
	}
	if cfg.StateDir == "" {
		bad("state_dir", errors.New("required"))
	}
	for k, addr := range map[string]string{"connection_request.listen": cr.Listen, "udp_connection_request.listen": cfg.UDPListen} {
		if addr == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(k, fmt.Errorf("%q: want host:port or :port", addr))
		}
	}
	if cr.URL != "" {
		if u, err := url.Parse(cr.URL); err != nil || u.Scheme != "http" || u.Host == "" {
			bad("connection_request.url", fmt.Errorf("%q: must be an http URL (TR-069: Connection Requests use HTTP)", cr.URL))
		}
	}
	if cr.MaxConns < 1 {
		bad("connection_request.max_connections", errors.New("must be at least 1"))
	}
	if cr.MaxConnsPerSource < 1 {
		bad("connection_request.max_connections_per_source", errors.New("must be at least 1"))
	}
	if cfg.UDPMaxAhead < time.Minute {
		bad("udp_connection_request.max_timestamp_ahead", errors.New("must be at least 1m"))
	}
	if cfg.Periodic.Interval < 1 {
		bad("periodic_inform.interval", errors.New("must be at least 1"))
	}
	if cfg.NotifyPoll < 100*time.Millisecond {
		bad("notify.poll_interval", errors.New("must be at least 100ms"))
	}
	switch dh.ClientMode {
	case "":
	case "lease", "inform":
		if d.Root != "Device" {
			bad("dhcp.client.mode", errors.New("the device side records GatewayInfo, which exists under the Device root only"))
		}
		if dh.ClientInterface == "" {
			bad("dhcp.client.interface", errors.New("required with dhcp.client.mode"))
		}
	default:
		bad("dhcp.client.mode", fmt.Errorf("%q: must be lease, inform or empty", dh.ClientMode))
	}
	if dh.InformInterval < time.Second {
		bad("dhcp.client.inform_interval", errors.New("must be at least 1s"))
	}
	if dh.ServerInterface != "" {
		if d.Root != "InternetGatewayDevice" {
			bad("dhcp.server.interface", errors.New("the gateway side fills the ManageableDevice table, which exists under the InternetGatewayDevice root only"))
		}
		if dh.PoolStart == nil {
			bad("dhcp.server.pool_start", errors.New("required with dhcp.server.interface"))
		}
		if dh.PoolEnd == nil {
			bad("dhcp.server.pool_end", errors.New("required with dhcp.server.interface"))
		}
	}
	if dh.LeaseTime < 2*time.Second {
		bad("dhcp.server.lease_time", errors.New("must be at least 2s"))
	}
	if dh.Presence < 0 {
		bad("dhcp.presence_check", errors.New("must not be negative"))
	}
	switch cfg.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", fmt.Errorf("%q: must be debug, info, warn or error", cfg.Log.Level))
	}
	switch cfg.Log.Format {
	case "text", "json":
	default:
		bad("log.format", fmt.Errorf("%q: must be text or json", cfg.Log.Format))
	}
	if cfg.Mapping.File != "" {
		if s, err := schemas.For(d.Root); err == nil {
			if fh, err := os.Open(cfg.Mapping.File); err != nil {
				bad("mapping", err)
			} else {
				es, err := backend.Load(fh, s)
				fh.Close()
				if err != nil {
					// One error per line of the mapping file.
					list := []error{err}
					if j, ok := err.(interface{ Unwrap() []error }); ok {
						list = j.Unwrap()
					}
					for _, e := range list {
						var le *backend.LineError
						if errors.As(e, &le) {
							errs = append(errs, &ConfigError{Key: "mapping", File: cfg.Mapping.File, Line: le.Line, Err: le.Err})
						} else {
							bad("mapping", fmt.Errorf("%s: %w", cfg.Mapping.File, e))
						}
					}
				}
				cfg.Mapping.Entries = es
			}
		}
	}
	if len(errs) == 0 {
		// The factory values must fit the data model; the tree names the path.
		s, _ := schemas.For(d.Root)
		if _, err := datamodel.New(s, datamodel.Options{Factory: cfg.Factory()}); err != nil {
			var pe *datamodel.PathError
			if errors.As(err, &pe) {
				bad("parameters."+pe.Path, pe.Err)
			} else {
				bad("parameters", err)
			}
		}
	}
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return nil, errors.Join(errs...)
	}
	return &cfg, nil
}

// Factory returns the factory values of the tree: the device and ACS keys
// mapped onto their parameters, then `parameters`, which wins.
func (c *Config) Factory() map[string]string {
	r := c.Device.Root
	ms, di := r+".ManagementServer.", r+".DeviceInfo."
	f := map[string]string{
		ms + "URL":                       c.ACS.URL,
		ms + "Username":                  c.ACS.Username,
		ms + "Password":                  c.ACS.Password,
		ms + "ConnectionRequestUsername": c.ConnectionRequest.Username,
		ms + "ConnectionRequestPassword": c.ConnectionRequest.Password,
		ms + "PeriodicInformEnable":      strconv.FormatBool(c.Periodic.Enable),
		ms + "PeriodicInformInterval":    strconv.Itoa(c.Periodic.Interval),
		di + "Manufacturer":              c.Device.Manufacturer,
		di + "ManufacturerOUI":           c.Device.OUI,
		di + "ProductClass":              c.Device.ProductClass,
		di + "SerialNumber":              c.Device.SerialNumber,
		di + "ModelName":                 c.Device.ModelName,
		di + "Description":               c.Device.Description,
		di + "SoftwareVersion":           c.Device.SoftwareVersion,
		di + "HardwareVersion":           c.Device.HardwareVersion,
	}
	for k, v := range c.Parameters {
		f[k] = v
	}
	return f
}
