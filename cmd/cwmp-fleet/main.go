// Command cwmp-fleet runs fleets of virtual CPEs for ACS testing, the
// in-repository test ACS, and the demo.
//
//	cwmp-fleet run --config fleet.yaml --count 10000 --rate 200
//	cwmp-fleet test-acs --listen 127.0.0.1:7557
//	cwmp-fleet demo [-v] [--root InternetGatewayDevice]
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// version is stamped at build time with -X main.version.
var version = "dev"

const program = "cwmp-fleet"

const usage = `cwmp-fleet: virtual CPE fleets for ACS testing

Usage:
  cwmp-fleet run --count N [flags]        N virtual CPEs in one process (--rate, --serial-pattern,
                                          --template FILE, --periodic S, --duration D, --report FILE,
                                          --persist; the agent's configuration via --config)
                                          --shards N --shard-index I: one shard of a fleet of N
                                          (default index: $JOB_COMPLETION_INDEX); --metrics-listen ADDR
  cwmp-fleet report merge SHARD.json...   one report of a sharded fleet's shards (--out, --html)
  cwmp-fleet report html REPORT.json      a report's HTML page (--out)
  cwmp-fleet test-acs [--listen ADDR]     the in-repository test ACS (the fleet's peer in the performance report)
  cwmp-fleet demo [-v] [--root ROOT]      a virtual CPE against the built-in test ACS, printed as it goes
  cwmp-fleet version                      print the version

"cwmp-fleet --count N ..." is "cwmp-fleet run --count N ...". --help after a
command shows its flags.
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "cwmp-fleet:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("no command given")
	}
	if strings.HasPrefix(args[0], "--") && args[0] != "--help" && args[0] != "--version" {
		return cmdFleet(args)
	}
	switch args[0] {
	case "run":
		return cmdFleet(args[1:])
	case "report":
		return cmdReport(args[1:])
	case "test-acs":
		return cmdTestACS(args[1:])
	case "demo":
		return cmdDemo(args[1:])
	case "version", "--version":
		fmt.Println("cwmp-fleet", version)
		return nil
	case "help", "--help", "-h":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}
