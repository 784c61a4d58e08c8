package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/cli"
	"github.com/cwmp-agent/cwmp-agent/cmd/internal/config"
	"github.com/cwmp-agent/cwmp-agent/cpe/control"
)

var ctlOut io.Writer = os.Stdout

// cmdControl runs get, set, dump, names, inform and call against the
// running agent.
func cmdControl(op string, args []string) error {
	fs := cli.NewFlags(program, op, map[string]string{
		"get":    "PATH... [--config FILE | --socket PATH]",
		"set":    "PATH VALUE [PATH VALUE]... [--config FILE | --socket PATH] (a value starting with - after --)",
		"dump":   "[PATH] [--format json|text] [--config FILE | --socket PATH]",
		"names":  "[PATH] [--next-level] [--config FILE | --socket PATH]",
		"inform": "[EVENT] [--config FILE | --socket PATH]",
		"call":   "NAME [KEY=VALUE]... [--config FILE | --socket PATH]",
	}[op])
	cfgFile := fs.String("config", "", "configuration file (for control.socket)")
	socket := fs.String("socket", "", "control socket path")
	format := fs.String("format", "", "dump: json (default) or text")
	nextLevel := fs.Bool("next-level", false, "names: only the next level below PATH")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	path, err := config.SocketPath(*cfgFile, *socket)
	if err != nil {
		return err
	}
	rest := fs.Args()
	var req control.Request
	switch op {
	case "get":
		if len(rest) == 0 {
			return fmt.Errorf("get: give at least one parameter path")
		}
		req = control.Request{Op: "get", Paths: rest}
	case "set":
		if len(rest) == 0 || len(rest)%2 != 0 {
			return fmt.Errorf("set: give PATH VALUE pairs")
		}
		req = control.Request{Op: "set", Values: map[string]string{}}
		for i := 0; i < len(rest); i += 2 {
			req.Values[rest[i]] = rest[i+1]
		}
	case "dump":
		req = control.Request{Op: "dump"}
		if len(rest) > 0 {
			req.Path = rest[0]
		}
	case "names":
		req = control.Request{Op: "names", NextLevel: *nextLevel}
		if len(rest) > 0 {
			req.Path = rest[0]
		}
	case "inform":
		req = control.Request{Op: "inform"}
		if len(rest) > 0 {
			req.Event = strings.Join(rest, " ")
		}
	case "call":
		if len(rest) == 0 {
			return fmt.Errorf("call: give the action's name (request-download, transfer.autonomous, du.changed, stun.state, dhcp.leases...)")
		}
		req = control.Request{Op: "call", Name: rest[0], Args: map[string]string{}}
		for _, kv := range rest[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return fmt.Errorf("call: %q is not KEY=VALUE", kv)
			}
			req.Args[k] = v
		}
	}
	resp, err := control.Do(path, req)
	if err != nil {
		return err
	}
	switch op {
	case "get":
		if len(resp.Values) == 1 && !strings.HasSuffix(rest[0], ".") && len(rest) == 1 {
			fmt.Fprintln(ctlOut, resp.Values[0].Value)
			return nil
		}
		for _, v := range resp.Values {
			fmt.Fprintf(ctlOut, "%s = %s\n", v.Name, v.Value)
		}
	case "call":
		return json.NewEncoder(ctlOut).Encode(resp.Result)
	case "names":
		enc := json.NewEncoder(ctlOut)
		for _, n := range resp.Names {
			enc.Encode(n)
		}
	case "dump":
		if *format == "text" {
			for _, v := range resp.Values {
				fmt.Fprintf(ctlOut, "%s = %s\n", v.Name, v.Value)
			}
			return nil
		}
		enc := json.NewEncoder(ctlOut)
		for _, v := range resp.Values {
			enc.Encode(v)
		}
	}
	return nil
}
