// Command cwmp-agent is a TR-069 (CWMP) CPE agent implementing TR-111.
//
//	cwmp-agent run --config /etc/cwmp-agent/config.yaml
//	cwmp-agent demo
//	cwmp-agent get|set|dump ...
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/cwmp-agent/cwmp-agent/cwmp"
)

// version is stamped at build time with -X main.version.
var version = "dev"

const usage = `cwmp-agent: a TR-069 (CWMP) CPE agent with TR-111

Usage:
  cwmp-agent run [--config FILE] [flags]   run the agent in the foreground
  cwmp-agent demo [-v]                     run against a built-in local ACS and print the transcript
  cwmp-agent get PATH...                   read parameters of the running agent
  cwmp-agent set PATH VALUE [PATH VALUE]   write parameters as the device
  cwmp-agent dump [PATH]                   every parameter, one JSON object per line
  cwmp-agent inform [EVENT]                ask the running agent for a session
  cwmp-agent stun-server [flags]           the ACS-side TR-111 STUN server (--listen :3478,
                                           --secondary, --credentials FILE, --api 127.0.0.1:7549, --state-dir,
                                           --share-port)
  cwmp-agent dhcp option125 [--config F]   print the TR-111 Device Identity option for udhcpc and dhclient
  cwmp-agent dhcp hook [--chain SCRIPT]    udhcpc/dhclient script: GatewayInfo into the running agent
  cwmp-agent dnsmasq-config [--config F]   print the dnsmasq lines of a TR-111 gateway
  cwmp-agent dnsmasq-script add|old|del MAC IP
                                           dnsmasq's dhcp-script: the ManageableDevice table follows its leases
  cwmp-agent fleet --count N [flags]       N virtual CPEs in one process, for ACS testing (--rate,
                                           --serial-pattern, --template FILE, --periodic S, --duration D,
                                           --report FILE, --persist; listeners from the configuration)
  cwmp-agent test-acs [--listen ADDR]      the in-repository test ACS (the fleet's peer in the performance report)
  cwmp-agent check-config --config FILE    validate a configuration and its mapping file (errors with lines)
  cwmp-agent version                       print the version

get, set, dump and inform talk to the running agent over its control socket
(control.socket of --config, or --socket).
`

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
	cwmp.UserAgent = "cwmp-agent/" + version
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:])
	case "demo":
		return cmdDemo(args[1:])
	case "stun-server":
		return cmdStunServer(args[1:])
	case "check-config":
		return cmdCheckConfig(args[1:])
	case "fleet":
		return cmdFleet(args[1:])
	case "test-acs":
		return cmdTestACS(args[1:])
	case "dhcp":
		return cmdDHCP(args[1:])
	case "dnsmasq-script":
		return cmdDnsmasqScript(args[1:])
	case "dnsmasq-config":
		return cmdDnsmasqConfig(args[1:])
	case "get", "set", "dump", "inform":
		return cmdControl(args[0], args[1:])
	case "version", "--version", "-v":
		fmt.Println("cwmp-agent", version)
		return nil
	case "help", "--help", "-h":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
