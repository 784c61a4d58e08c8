// Command cwmp-agent is the device agent: a TR-069 (CWMP) CPE with TR-111.
//
//	cwmp-agent run --config /etc/cwmp-agent/config.yaml
//	cwmp-agent get|set|dump|inform ...
//	cwmp-agent check-config --config FILE
//	cwmp-agent dhcp option125|hook, dnsmasq-config, dnsmasq-script
//
// Fleets of virtual CPEs, the test ACS and the demo are cwmp-fleet; the
// ACS-side STUN server is cwmp-stun-server. This binary links neither.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/cli"
	"github.com/cwmp-agent/cwmp-agent/cmd/internal/config"
)

// version is stamped at build time with -X main.version.
var version = "dev"

const usage = `cwmp-agent: a TR-069 (CWMP) CPE agent with TR-111

Usage:
  cwmp-agent run [--config FILE] [flags]   run the agent in the foreground
  cwmp-agent get PATH...                   read parameters of the running agent
  cwmp-agent set PATH VALUE [PATH VALUE]   write parameters as the device
  cwmp-agent dump [PATH]                   every parameter, one JSON object per line
  cwmp-agent names [PATH] [--next-level]   parameter and object names with their writability (JSON lines)
  cwmp-agent inform [EVENT]                ask the running agent for a session
  cwmp-agent call NAME [KEY=VALUE]...      run a control action (request-download, transfer.autonomous, du.changed...)
  cwmp-agent check-config --config FILE    validate a configuration and its mapping file (errors with lines)
  cwmp-agent dhcp option125 [--config F]   print the TR-111 Device Identity option for udhcpc and dhclient
  cwmp-agent dhcp hook [--chain SCRIPT]    udhcpc/dhclient script: GatewayInfo into the running agent
  cwmp-agent dnsmasq-config [--config F]   print the dnsmasq lines of a TR-111 gateway
  cwmp-agent dnsmasq-script add|old|del MAC IP
                                           dnsmasq's dhcp-script: the ManageableDevice table follows its leases
  cwmp-agent version                       print the version

get, set, dump and inform talk to the running agent over its control socket
(control.socket of --config, or --socket). Flags go before or after the
arguments; --help after a command shows its flags.

Fleets, the test ACS and the demo are cwmp-fleet's; the ACS-side STUN server
is cwmp-stun-server. "cwmp-agent fleet|test-acs|demo|stun-server ..." runs
them when they are installed next to cwmp-agent or on PATH.
`

const program = "cwmp-agent"

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return // usage printed: asking for help is no failure
		}
		fmt.Fprintln(os.Stderr, "cwmp-agent:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:])
	case "check-config":
		return cmdCheckConfig(args[1:])
	case "dhcp":
		return cmdDHCP(args[1:])
	case "dnsmasq-script":
		return cmdDnsmasqScript(args[1:])
	case "dnsmasq-config":
		return cmdDnsmasqConfig(args[1:])
	case "get", "set", "dump", "names", "inform", "call":
		return cmdControl(args[0], args[1:])
	case "version", "--version", "-v":
		fmt.Println("cwmp-agent", version)
		return nil
	case "help", "--help", "-h":
		fmt.Print(usage)
		return nil
	case "fleet":
		return forward("cwmp-fleet", append([]string{"run"}, args[1:]...))
	case "test-acs", "demo":
		return forward("cwmp-fleet", args)
	case "stun-server":
		return forward("cwmp-stun-server", args[1:])
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// newCommon is the flag set of a subcommand that reads the configuration.
func newCommon(name, synopsis string) *cli.Common {
	return cli.NewCommon(program, name, synopsis, config.FlagKeys)
}

// load reads the configuration the flags name.
func load(c *cli.Common) (*config.Agent, error) {
	return config.Load(config.Source{File: *c.Config, Flags: c.Set(config.FlagKeys)})
}
