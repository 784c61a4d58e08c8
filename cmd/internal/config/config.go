// Package config is the configuration of the device agent and of fleets:
// one YAML file, the environment (CWMP_AGENT_<KEY>) and flags, decoded once
// into Agent (cmd/internal/confkit), then validated section by section.
// Only the commands read it; they turn it into a cpe.Config.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/schemas"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/cli"
	"github.com/cwmp-agent/cwmp-agent/cmd/internal/confkit"
	"github.com/cwmp-agent/cwmp-agent/datamodel/backend"
)

// EnvPrefix starts the environment variable of every key.
const EnvPrefix = cli.EnvPrefix

// Error is a configuration problem naming its key (and line).
type Error = confkit.Error

// Agent is the agent's configuration. The yaml tags are the keys; the help
// tags are the README's configuration table.
type Agent struct {
	ACS struct {
		URL                string        `yaml:"url" help:"ACS URL (http or https); factory value of ManagementServer.URL"`
		Username           string        `yaml:"username" help:"CPE username for the ACS (ManagementServer.Username)"`
		Password           string        `yaml:"password" help:"CPE password for the ACS (ManagementServer.Password)"`
		CAFile             string        `yaml:"ca_file" help:"PEM CA certificates trusted for https ACS and file servers, in addition to the system roots"`
		ClientCert         string        `yaml:"client_cert" help:"PEM client certificate for TLS"`
		ClientKey          string        `yaml:"client_key" help:"PEM key of acs.client_cert"`
		InsecureSkipVerify bool          `yaml:"insecure_skip_verify" help:"do not verify the ACS certificate (testing only)"`
		Version            string        `yaml:"version" help:"highest CWMP version to speak: 1.0 ... 1.4"`
		ResponseTimeout    time.Duration `yaml:"response_timeout" help:"how long to wait for each ACS response"`
		RetryMinWait       time.Duration `yaml:"retry_minimum_wait" help:"CWMPRetryMinimumWaitInterval of the session retry back-off"`
		RetryMultiplier    int           `yaml:"retry_interval_multiplier" help:"CWMPRetryIntervalMultiplier (1/1000) of the back-off"`
	} `yaml:"acs"`
	Device struct {
		DataModel       string   `yaml:"data_model" help:"data model served: Device:1.1, InternetGatewayDevice:1.2 or Device:2.19 (TR-181; Device:2 says the same); empty: from device.root"`
		DataModelFiles  []string `yaml:"data_model_files" help:"vendors' data-model XML files (BBF format) whose objects and parameters are added to the model"`
		Root            string   `yaml:"root" help:"data model root, as before data_model: Device (Device:1.1) or InternetGatewayDevice (InternetGatewayDevice:1.2); empty: the data model's"`
		Manufacturer    string   `yaml:"manufacturer" help:"DeviceInfo.Manufacturer"`
		OUI             string   `yaml:"oui" help:"DeviceInfo.ManufacturerOUI: six upper-case hex digits"`
		ProductClass    string   `yaml:"product_class" help:"DeviceInfo.ProductClass"`
		SerialNumber    string   `yaml:"serial_number" help:"DeviceInfo.SerialNumber"`
		ModelName       string   `yaml:"model_name" help:"DeviceInfo.ModelName"`
		Description     string   `yaml:"description" help:"DeviceInfo.Description"`
		SoftwareVersion string   `yaml:"software_version" help:"DeviceInfo.SoftwareVersion (default: VERSION_ID of /etc/os-release)"`
		HardwareVersion string   `yaml:"hardware_version" help:"DeviceInfo.HardwareVersion"`
		SystemValues    bool     `yaml:"system_values" help:"bind LAN/WAN addresses and counters to the interface that reaches the ACS"`
	} `yaml:"device"`
	StateDir          string `yaml:"state_dir" help:"where the tree, events, transfers and notifications persist"`
	ConnectionRequest struct {
		Listen            string `yaml:"listen" help:"TCP address of the HTTP Connection Request listener"`
		Username          string `yaml:"username" help:"factory ConnectionRequestUsername"`
		Password          string `yaml:"password" help:"factory ConnectionRequestPassword"`
		URL               string `yaml:"url" help:"announce this ConnectionRequestURL instead of the computed one (port forward, name)"`
		MaxConns          int    `yaml:"max_connections" help:"connections the HTTP Connection Request listener holds at once; more are closed at once"`
		MaxConnsPerSource int    `yaml:"max_connections_per_source" help:"the same, from one source address"`
	} `yaml:"connection_request"`
	UDP struct {
		Listen           string        `yaml:"listen" help:"UDP address for TR-111 UDP Connection Requests and STUN (empty: off)"`
		PersistTimestamp bool          `yaml:"persist_timestamp" help:"keep the last accepted UDP Connection Request timestamp across restarts"`
		MaxAhead         time.Duration `yaml:"max_timestamp_ahead" help:"how far ahead of the CPE's clock a UDP Connection Request's ts may be"`
	} `yaml:"udp_connection_request"`
	Periodic struct {
		Enable   bool `yaml:"enable" help:"factory PeriodicInformEnable"`
		Interval int  `yaml:"interval" help:"factory PeriodicInformInterval, seconds"`
	} `yaml:"periodic_inform"`
	Parameters map[string]string `yaml:"parameters" help:"map of full parameter path to factory value"`
	Control    struct {
		Socket string `yaml:"socket" help:"the local control socket"`
	} `yaml:"control"`
	Hooks struct {
		Reboot       string `yaml:"reboot" help:"command run for Reboot (argument: CommandKey); empty: virtual reboot"`
		FactoryReset string `yaml:"factory_reset" help:"command run for FactoryReset; empty: virtual reset"`
		Firmware     string `yaml:"firmware" help:"command run for a downloaded firmware image (arguments: file, CommandKey)"`
		ConfigFile   string `yaml:"config_file" help:"command run for a downloaded vendor configuration file (arguments: file, CommandKey)"`
	} `yaml:"hooks"`
	DHCP struct {
		Client struct {
			Mode           string        `yaml:"mode" help:"TR-111 device side, built-in DHCP client: lease (obtain and keep a lease), inform (DHCPINFORM only) or empty (off; hook mode needs nothing). Root Device"`
			Interface      string        `yaml:"interface" help:"interface the built-in DHCP client runs on"`
			InformServer   net.IP        `yaml:"inform_server" help:"where DHCPINFORM goes (unicast); empty: the interface's default gateway"`
			InformInterval time.Duration `yaml:"inform_interval" help:"time between DHCPINFORMs"`
			ReleaseOnExit  bool          `yaml:"release_on_exit" help:"send DHCPRELEASE when the agent stops (otherwise the lease is kept for the next start)"`
			ResolvConf     string        `yaml:"resolv_conf" help:"file to write the lease's DNS servers to (empty: none)"`
		} `yaml:"client"`
		Server struct {
			Interface string        `yaml:"interface" help:"TR-111 gateway side, built-in DHCP server on this LAN interface (empty: off). Root InternetGatewayDevice"`
			PoolStart net.IP        `yaml:"pool_start" help:"first address the built-in server gives out"`
			PoolEnd   net.IP        `yaml:"pool_end" help:"last address the built-in server gives out"`
			LeaseTime time.Duration `yaml:"lease_time" help:"lease time of the built-in server (at least 2s)"`
			Router    net.IP        `yaml:"router" help:"router announced in option 3 (empty: the interface's address)"`
			DNS       []net.IP      `yaml:"dns" help:"comma-separated DNS servers announced in option 6 (empty: none)"`
		} `yaml:"server"`
		Presence time.Duration `yaml:"presence_check" help:"how often the ManageableDevice table checks the kernel neighbour table for departed devices (0: never)"`
	} `yaml:"dhcp"`
	MappingFile string `yaml:"mapping" help:"mapping file (YAML) binding parameters to files, commands or the control socket (see README)"`
	Notify      struct {
		PollInterval time.Duration `yaml:"poll_interval" help:"how often computed parameters with a Notification attribute are read"`
	} `yaml:"notify"`
	Diagnostics struct {
		Mode       string        `yaml:"mode" help:"real: the diagnostics the ACS asks for probe from this host (and UDPEchoConfig's server listens); simulated: believable results, nothing sent (a fleet's default)"`
		Latency    time.Duration `yaml:"latency" help:"simulated: round-trip time to any host"`
		Jitter     time.Duration `yaml:"jitter" help:"simulated: spread of the round-trip times (0: a tenth of the latency)"`
		Loss       float64       `yaml:"loss" help:"simulated: fraction of probes lost, 0 to 1"`
		Throughput string        `yaml:"throughput" help:"simulated: bit/s of downloads and uploads (k, M, G suffixes)"`
		Hops       int           `yaml:"hops" help:"simulated: routers a traceroute finds before the host"`
		Wait       bool          `yaml:"wait" help:"simulated: a test takes as long as its figures say (else it ends at once)"`
	} `yaml:"diagnostics"`
	SoftwareModules struct {
		Hook          string `yaml:"hook" help:"command that installs, updates and removes deployment units for ChangeDUState (Device:2; see README); empty: virtual (the tables follow, nothing installs)"`
		FailInstall   int    `yaml:"fail_install" help:"virtual: fault code every Install ends with (0: none)"`
		FailUpdate    int    `yaml:"fail_update" help:"virtual: fault code every Update ends with (0: none)"`
		FailUninstall int    `yaml:"fail_uninstall" help:"virtual: fault code every Uninstall ends with (0: none)"`
	} `yaml:"software_modules"`
	Metrics struct {
		Listen string `yaml:"listen" help:"host:port of the Prometheus metrics listener (/metrics, /healthz, /readyz); empty: off. Keep it on loopback or a management network: it needs no credentials"`
	} `yaml:"metrics"`
	Log cli.Log `yaml:"log"`

	// Mapping holds the mounts of MappingFile (read during validation).
	Mapping []backend.Entry `yaml:"-"`
	// schema is the data model served (set during validation).
	schema *datamodel.Schema
	// File is the configuration file read, if any.
	File string `yaml:"-"`
}

// Defaults is the configuration with nothing configured.
func Defaults() *Agent {
	c := &Agent{}
	c.ACS.Version, c.ACS.ResponseTimeout, c.ACS.RetryMinWait, c.ACS.RetryMultiplier = "1.4", 30*time.Second, 5*time.Second, 2000
	c.Device.Manufacturer, c.Device.SystemValues = "cwmp-agent", true
	c.StateDir = "/var/lib/cwmp-agent"
	c.ConnectionRequest.Listen, c.ConnectionRequest.MaxConns, c.ConnectionRequest.MaxConnsPerSource = ":7547", 64, 8
	c.UDP.Listen, c.UDP.PersistTimestamp, c.UDP.MaxAhead = ":7547", true, time.Hour
	c.Periodic.Enable, c.Periodic.Interval = true, 3600
	c.Parameters = map[string]string{}
	c.Diagnostics.Mode, c.Diagnostics.Latency, c.Diagnostics.Throughput, c.Diagnostics.Hops = "real", 20*time.Millisecond, "100M", 4
	c.Control.Socket = "/run/cwmp-agent/agent.sock"
	c.DHCP.Client.InformInterval = time.Hour
	c.DHCP.Server.LeaseTime = time.Hour
	c.DHCP.Presence = 60 * time.Second
	c.Notify.PollInterval = 10 * time.Second
	c.Log = cli.Log{Level: "info", Format: "text"}
	return c
}

// Keys lists every key of the agent's configuration with its help and
// default (the README's table; a test keeps them equal).
func Keys() []confkit.Key { return confkit.Keys(Defaults()) }

// FlagKeys are the flags of the commands that read the configuration, by
// name, with the key each sets.
var FlagKeys = map[string]string{
	"acs-url": "acs.url", "state-dir": "state_dir", "root": "device.root", "data-model": "device.data_model", "serial": "device.serial_number",
	"oui": "device.oui", "socket": "control.socket", "log-level": "log.level", "log-format": "log.format",
	"cr-listen": "connection_request.listen", "metrics-listen": "metrics.listen",
}

// Source says where the configuration comes from.
type Source struct {
	File  string            // "" none
	Flags map[string]string // key -> value, from the command line
	// Env looks up an environment variable; nil is os.LookupEnv.
	Env func(string) (string, bool)
	// Defaults, when set, changes the built-in defaults before the file,
	// the environment and the flags apply (a program's own defaults).
	Defaults func(*Agent)
}

// Load reads the configuration: defaults, then the file, the environment,
// the flags. Every problem names its key (and its line in the file); they
// come joined, sorted.
func Load(src Source) (*Agent, error) {
	c, doc, errs := decode(src, nil)
	if len(errs) == 0 {
		errs = c.validate()
	}
	if len(errs) > 0 {
		return nil, errors.Join(confkit.Sorted(doc.Locate(errs))...)
	}
	return c, nil
}

// decode fills the configuration without validating it; only, when set,
// limits the file to those top-level keys.
func decode(src Source, only []string) (*Agent, *confkit.Doc, []error) {
	c := Defaults()
	if src.Defaults != nil {
		src.Defaults(c)
	}
	c.File = src.File
	var doc *confkit.Doc
	var errs []error
	if src.File != "" {
		d, err := confkit.Read(src.File)
		if err != nil {
			return nil, nil, []error{err}
		}
		doc = d
		if only == nil {
			only = notStun
		}
		errs = append(errs, confkit.Decode(doc, c, confkit.Options{Only: only})...)
	}
	env := src.Env
	if env == nil {
		env = os.LookupEnv
	}
	errs = append(errs, confkit.ApplyEnv(c, EnvPrefix, env)...)
	for k, v := range src.Flags {
		if err := confkit.Set(c, k, v); err != nil {
			errs = append(errs, err)
		}
	}
	return c, doc, errs
}

// notStun is every top-level key but stun_server, which cwmp-stun-server
// reads from the same file.
var notStun = func() []string {
	var out []string
	seen := map[string]bool{}
	for _, k := range Keys() {
		top := k.Name
		for i := range top {
			if top[i] == '.' {
				top = top[:i]
				break
			}
		}
		if !seen[top] {
			seen[top] = true
			out = append(out, top)
		}
	}
	return out
}()

// SocketPath finds the control socket for the control commands: socket
// when given, else control.socket of the file, of CWMP_AGENT_CONTROL_SOCKET,
// or the default. Nothing else of the file is checked.
func SocketPath(file, socket string) (string, error) {
	if socket != "" {
		return socket, nil
	}
	c, doc, errs := decode(Source{File: file}, []string{"control"})
	if len(errs) > 0 {
		return "", errors.Join(doc.Locate(errs)...)
	}
	return c.Control.Socket, nil
}

// Factory returns the factory values of the tree: the device and ACS keys
// mapped onto their parameters, then `parameters`, which wins.
func (c *Agent) Factory() map[string]string {
	r := c.RootName()
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

// RootName is the root object of the data model served.
func (c *Agent) RootName() string {
	if c.schema != nil {
		return c.schema.RootName()
	}
	if c.Device.Root != "" {
		return c.Device.Root
	}
	return "Device"
}

// Schema is the data model served: device.data_model (or device.root)
// with device.data_model_files. Load has checked it.
func (c *Agent) Schema() (*datamodel.Schema, error) {
	if c.schema != nil {
		return c.schema, nil
	}
	model := c.Device.DataModel
	if model == "" {
		switch c.Device.Root {
		case "", schemas.RootDevice:
			model = schemas.Device11
		case schemas.RootIGD:
			model = schemas.IGD12
		default:
			return nil, bad("device.root", "%q: must be Device or InternetGatewayDevice", c.Device.Root)
		}
	}
	// A file named twice (in the file and again in the environment) is
	// read once: its second reading would only redefine the first's.
	var files []string
	seen := map[string]bool{}
	for _, f := range c.Device.DataModelFiles {
		if k := filepath.Clean(f); !seen[k] {
			seen[k] = true
			files = append(files, f)
		}
	}
	s, err := schemas.Extend(model, files)
	if err != nil {
		key := "device.data_model"
		if _, merr := schemas.Model(model); merr == nil {
			key = "device.data_model_files"
		}
		return nil, &Error{Key: key, Err: err}
	}
	if c.Device.Root != "" && c.Device.Root != s.RootName() {
		return nil, bad("device.root", "%q does not match device.data_model %s, whose root is %s", c.Device.Root, s.Model, s.RootName())
	}
	c.schema = s
	return s, nil
}

// bad is a problem of a key.
func bad(key string, format string, args ...any) error {
	return &Error{Key: key, Err: fmt.Errorf(format, args...)}
}
