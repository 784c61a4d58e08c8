package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/cli"
	"github.com/cwmp-agent/cwmp-agent/cmd/internal/config"
	"github.com/cwmp-agent/cwmp-agent/cpe"
	"github.com/cwmp-agent/cwmp-agent/cpe/control"
	"github.com/cwmp-agent/cwmp-agent/tr111"
	"github.com/cwmp-agent/cwmp-agent/tr111/assoc"
)

var dhcpOut io.Writer = os.Stdout

// cmdDHCP runs `cwmp-agent dhcp option125|hook`.
func cmdDHCP(args []string) error {
	if len(args) == 0 {
		return errors.New("dhcp: give option125 or hook")
	}
	switch args[0] {
	case "option125":
		return cmdOption125(args[1:])
	case "hook":
		return cmdDHCPHook(args[1:])
	}
	return fmt.Errorf("dhcp: unknown command %q (option125 or hook)", args[0])
}

// identityFromConfig reads the device's own identity from the agent's
// configuration (device.oui, device.serial_number, device.product_class).
// extra adds the command's own flags.
func identityFromConfig(name string, args []string, extra func(*pflag.FlagSet)) (tr111.Identity, *pflag.FlagSet, error) {
	cf := newCommon(name, "[--config FILE] [flags]")
	if extra != nil {
		extra(cf.FS)
	}
	if err := cli.Parse(cf.FS, args); err != nil {
		return tr111.Identity{}, nil, err
	}
	cfg, err := load(cf)
	if err != nil {
		return tr111.Identity{}, nil, err
	}
	return tr111.Identity{ManufacturerOUI: cfg.Device.OUI, SerialNumber: cfg.Device.SerialNumber, ProductClass: cfg.Device.ProductClass}, cf.FS, nil
}

// cmdOption125 prints the Device Identity option for DHCP clients that the
// agent does not run itself.
func cmdOption125(args []string) error {
	id, _, err := identityFromConfig("dhcp option125", args, nil)
	if err != nil {
		return err
	}
	f := assoc.DeviceOptionForms(id)
	fmt.Fprintf(dhcpOut, "# option 125 (RFC 3925), enterprise %d, sub-options 1-3 (TR-111 1.2.5)\n", tr111.EnterpriseBBF)
	fmt.Fprintf(dhcpOut, "hex: %s\n", f.Hex)
	fmt.Fprintf(dhcpOut, "\n# busybox udhcpc: send it, ask for the answer, run the hook\n")
	fmt.Fprintf(dhcpOut, "udhcpc -i IFACE %s -s /usr/libexec/cwmp-agent/udhcpc-hook\n", f.Udhcpc)
	fmt.Fprintf(dhcpOut, "\n# ISC dhclient: in dhclient.conf\n%s", f.DHClient)
	fmt.Fprintf(dhcpOut, "\n# /usr/libexec/cwmp-agent/udhcpc-hook:\n#   #!/bin/sh\n#   exec cwmp-agent dhcp hook --chain /usr/share/udhcpc/default.script \"$@\"\n")
	fmt.Fprintf(dhcpOut, "# /etc/dhcp/dhclient-exit-hooks.d/cwmp-agent (dhclient-script sources it):\n#   cwmp-agent dhcp hook\n")
	return nil
}

// cmdDHCPHook is the script a device's own DHCP client runs: it records
// the Gateway Identity in the running agent's GatewayInfo (TR-111 1.2.2),
// then runs the --chain script (the DHCP client's usual one) so that the
// interface is still configured.
func cmdDHCPHook(args []string) error {
	fs := cli.NewFlags(program, "dhcp hook", "[EVENT...] [--chain SCRIPT] [--config FILE | --socket PATH] [--root ROOT]")
	cfgFile := fs.String("config", "", "configuration file (for control.socket)")
	socket := fs.String("socket", "", "control socket path")
	chain := fs.String("chain", "", "script to run afterwards with the same arguments (udhcpc's default.script)")
	root := fs.String("root", "Device", "data model root of the agent")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	herr := func() error {
		action, id, err := assoc.ClientHookEvent(rest, os.Getenv)
		if err != nil {
			// A malformed option is the gateway's fault: record nothing from
			// it, as if it had sent no identity (TR-111 1.2.2: empty strings).
			fmt.Fprintln(os.Stderr, "cwmp-agent dhcp hook:", err)
			id = nil
		}
		if action == assoc.HookIgnore {
			return nil
		}
		if action == assoc.HookClear {
			id = nil
		}
		path, err := config.SocketPath(*cfgFile, *socket)
		if err != nil {
			return err
		}
		req := control.Request{Op: "set", Values: map[string]string{}}
		for _, c := range assoc.GatewayInfoChanges(*root, id) {
			req.Values[c.Path] = c.Value
		}
		_, err = control.Do(path, req)
		return err
	}()
	if herr != nil {
		fmt.Fprintln(os.Stderr, "cwmp-agent dhcp hook:", herr)
	}
	if *chain != "" {
		cmd := exec.Command(*chain, rest...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		return cmd.Run()
	}
	return herr
}

// cmdDnsmasqScript is dnsmasq's dhcp-script on a gateway that runs
// dnsmasq: it hands each lease event to the running agent, whose
// ManageableDevice table follows them (TR-111 1.2.1).
func cmdDnsmasqScript(args []string) error {
	fs := cli.NewFlags(program, "dnsmasq-script", "add|old|del MAC IP [HOSTNAME] [--config FILE | --socket PATH]")
	cfgFile := fs.String("config", "", "configuration file (for control.socket)")
	socket := fs.String("socket", "", "control socket path")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	ev, ok, err := assoc.ParseDnsmasqScript(fs.Args(), os.Getenv, time.Now())
	if err != nil || !ok {
		return err
	}
	path, err := config.SocketPath(*cfgFile, *socket)
	if err != nil {
		return err
	}
	a := map[string]string{"action": ev.Action, "mac": ev.MAC, "ip": ev.IP}
	if ev.Identity != nil {
		a["oui"], a["serial"], a["class"] = ev.Identity.ManufacturerOUI, ev.Identity.SerialNumber, ev.Identity.ProductClass
	}
	if !ev.Expires.IsZero() {
		a["expires"] = strconv.FormatInt(ev.Expires.Unix(), 10)
	}
	_, err = control.Do(path, control.Request{Op: "call", Name: "dhcp.lease", Args: a})
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		// The agent is not running: keep the event for its start.
		dir := cpe.DnsmasqSpool(path)
		if serr := cpe.SpoolLeaseEvent(dir, a); serr != nil {
			return fmt.Errorf("%w; and the event could not be kept: %w", err, serr)
		}
		fmt.Fprintf(cli.Stderr, "cwmp-agent dnsmasq-script: the agent is not running; the %s event of %s is kept in %s for its start\n", ev.Action, ev.MAC, dir)
		return nil
	}
	return err
}

// cmdDnsmasqConfig prints the dnsmasq lines for a gateway running dnsmasq.
func cmdDnsmasqConfig(args []string) error {
	var script *string
	id, _, err := identityFromConfig("dnsmasq-config", args, func(fs *pflag.FlagSet) {
		script = fs.String("script", "/usr/libexec/cwmp-agent/dnsmasq-script", "path of the dhcp-script wrapper")
	})
	if err != nil {
		return err
	}
	fmt.Fprint(dhcpOut, assoc.DnsmasqConfig(id, *script))
	fmt.Fprintf(dhcpOut, "# %s is a two-line script:\n#   #!/bin/sh\n#   exec cwmp-agent dnsmasq-script \"$@\"\n", *script)
	return nil
}
