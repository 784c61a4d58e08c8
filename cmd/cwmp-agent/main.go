// Command cwmp-agent is a TR-069 (CWMP) CPE agent implementing TR-111.
package main

import (
	"fmt"
	"os"
)

// version is stamped at build time with -X main.version.
var version = "dev"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "cwmp-agent:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("no command given (try: cwmp-agent version)")
	}
	switch args[0] {
	case "version":
		fmt.Println("cwmp-agent", version)
		return nil
	}
	return fmt.Errorf("unknown command %q", args[0])
}
