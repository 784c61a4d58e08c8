package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/cli"
	"github.com/cwmp-agent/cwmp-agent/cmd/internal/config"
	"github.com/cwmp-agent/cwmp-agent/cpe"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

var demoOut io.Writer = os.Stdout

// cmdDemo starts the in-repository test ACS on loopback and a virtual CPE
// against it, runs a BOOTSTRAP session, a GetParameterValues, a
// SetParameterValues, an AddObject and a Connection Request, and prints what
// went over the wire.
func cmdDemo(args []string) error {
	fs := cli.NewFlags(program, "demo", "[-v] [--root ROOT | --data-model MODEL]")
	verbose := fs.BoolP("verbose", "v", false, "print every envelope in full")
	root := fs.String("root", "", "Device (Device:1.1) or InternetGatewayDevice (InternetGatewayDevice:1.2)")
	model := fs.String("data-model", "", "Device:1.1, InternetGatewayDevice:1.2 or Device:2.19 (TR-181)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	out := demoOut
	acs, err := cwmptest.New()
	if err != nil {
		return err
	}
	defer acs.Close()
	dir, err := os.MkdirTemp("", "cwmp-agent-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logs := cli.NewLogs("error", "text", io.Discard)
	cfg := config.Defaults()
	cfg.ACS.URL = acs.URL
	cfg.ACS.Version, cfg.ACS.ResponseTimeout, cfg.ACS.RetryMinWait, cfg.ACS.RetryMultiplier = "1.4", 10*time.Second, time.Second, 2000
	cfg.Device.Root, cfg.Device.DataModel = *root, *model
	sch, err := cfg.Schema()
	if err != nil {
		return err
	}
	cfg.Device.Manufacturer, cfg.Device.OUI, cfg.Device.ProductClass = "cwmp-agent", "00D09E", "Demo"
	cfg.Device.SerialNumber, cfg.Device.SoftwareVersion, cfg.Device.HardwareVersion = "DEMO0001", version, "virtual"
	cfg.Device.SystemValues = true
	cfg.StateDir = dir
	cfg.ConnectionRequest.Listen, cfg.ConnectionRequest.Username, cfg.ConnectionRequest.Password = "127.0.0.1:0", "acs", "demo-secret"
	cfg.Periodic.Enable, cfg.Periodic.Interval = false, 3600
	cfg.Notify.PollInterval = 10 * time.Second
	cfg.UDP.Listen, cfg.Control.Socket = "", "" // the demo opens no port of the agent's defaults
	cfg.Diagnostics.Mode = "simulated"          // nor sends a probe
	cc := cfg.CPE(logs.Logger(), logs.Ring)
	c, err := cpe.Build(cc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	defer func() { stop(); <-done }()

	id := cwmptest.DeviceID(soap.DeviceID{OUI: "00D09E", ProductClass: "Demo", SerialNumber: "DEMO0001"})
	r := sch.RootName()
	step := func(title string) { fmt.Fprintf(out, "\n== %s\n", title) }
	fmt.Fprintf(out, "cwmp-agent %s demo: ACS at %s, virtual CPE %s (%s)\n", version, acs.URL, id, sch.Model)

	step("1. First contact: the CPE bootstraps")
	if err := acs.WaitSessions(ctx, id, 1); err != nil {
		return err
	}
	seen := printExchanges(out, acs, 0, *verbose)

	call := func(title string, m soap.Message) (soap.Message, error) {
		step(title)
		cl := acs.Enqueue(id, m)
		code, err := cwmptest.ConnectionRequest(ctx, c.Tree.MustGet(r+".ManagementServer.ConnectionRequestURL"), "acs", "demo-secret")
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "   ACS → CPE  HTTP GET ConnectionRequestURL (Digest) → %d\n", code)
		resp, err := cl.Wait(ctx)
		if err := acs.WaitFor(ctx, func(a *cwmptest.ACS) bool { return len(a.Logged()) > seen && sessionEnded(a.Logged()) }); err != nil {
			return nil, err
		}
		seen = printExchanges(out, acs, seen, *verbose)
		return resp, err
	}
	if _, err := call("2. Connection Request, then GetParameterValues", &soap.GetParameterValues{ParameterNames: []string{r + ".DeviceInfo.", r + ".ManagementServer.PeriodicInformInterval"}}); err != nil {
		return err
	}
	if _, err := call("3. SetParameterValues", &soap.SetParameterValues{ParameterKey: "demo-1", ParameterList: []soap.ParameterValue{
		{Name: r + ".ManagementServer.PeriodicInformInterval", Value: "300", Type: "xsd:unsignedInt"},
		{Name: r + ".ManagementServer.PeriodicInformEnable", Value: "true", Type: "xsd:boolean"},
	}}); err != nil {
		return err
	}
	// A table the ACS may add to, in each model.
	table := r + ".LAN.DHCPOption."
	switch {
	case r == "InternetGatewayDevice":
		table = r + ".Layer3Forwarding.Forwarding."
	case sch.Object("Device.NAT.PortMapping.{i}.") != nil:
		table = "Device.NAT.PortMapping."
	}
	if _, err := call("4. AddObject", &soap.AddObject{ObjectName: table, ParameterKey: "demo-2"}); err != nil {
		return err
	}
	// An IPPing (simulated: the demo sends no probe): the test runs once
	// the session is over, and the CPE comes back with 8 DIAGNOSTICS
	// COMPLETE for the ACS to read the results.
	ping := r + ".IPPingDiagnostics."
	switch {
	case sch.Object("Device.IP.Diagnostics.IPPing.") != nil:
		ping = "Device.IP.Diagnostics.IPPing."
	case r == "Device":
		ping = "Device.LAN.IPPingDiagnostics."
	}
	if _, err := call("5. Diagnostics: an IPPing requested with SetParameterValues", &soap.SetParameterValues{ParameterKey: "demo-3", ParameterList: []soap.ParameterValue{
		{Name: ping + "Host", Value: "192.0.2.10", Type: "xsd:string"},
		{Name: ping + "NumberOfRepetitions", Value: "4", Type: "xsd:unsignedInt"},
		{Name: ping + "DiagnosticsState", Value: "Requested", Type: "xsd:string"},
	}}); err != nil {
		return err
	}
	step("6. The test ran after that session; the CPE reports 8 DIAGNOSTICS COMPLETE")
	if err := acs.WaitFor(ctx, func(a *cwmptest.ACS) bool {
		ex := a.Logged()
		return len(ex) > seen && sessionEnded(ex) && hasEvent(ex[seen:], "8 DIAGNOSTICS COMPLETE")
	}); err != nil {
		return err
	}
	seen = printExchanges(out, acs, seen, *verbose)
	if _, err := call("7. The ACS reads the results", &soap.GetParameterValues{ParameterNames: []string{ping}}); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nDone: %d HTTP exchanges. The CPE's tree now has PeriodicInformInterval=%s, ParameterKey=%s.\n",
		len(acs.Exchanges()), c.Tree.MustGet(r+".ManagementServer.PeriodicInformInterval"), c.Tree.MustGet(r+".ManagementServer.ParameterKey"))
	return nil
}

func sessionEnded(ex []Exchange) bool { return len(ex) > 0 && ex[len(ex)-1].Status == 204 }

func hasEvent(ex []Exchange, code string) bool {
	for _, x := range ex {
		if x.InEnv == nil {
			continue
		}
		if in, ok := x.InEnv.Body.(*soap.Inform); ok {
			for _, e := range in.Event {
				if e.EventCode == code {
					return true
				}
			}
		}
	}
	return false
}

// Exchange is a cwmptest exchange, named here for brevity.
type Exchange = cwmptest.Exchange

// printExchanges prints the exchanges from index from and returns the count.
func printExchanges(out io.Writer, acs *cwmptest.ACS, from int, verbose bool) int {
	ex := acs.Exchanges()
	for _, x := range ex[from:] {
		fmt.Fprintf(out, "   CPE → ACS  %s\n", describe(x.InEnv, x.In))
		if verbose && x.In != nil {
			fmt.Fprintln(out, indent(string(x.In)))
		}
		answer := fmt.Sprintf("HTTP %d", x.Status)
		if x.Out != nil {
			if env, err := soap.DecodeBytes(x.Out); err == nil {
				answer = describe(env, x.Out)
			}
		} else if x.Status == 204 {
			answer = "204 No Content (session over)"
		}
		fmt.Fprintf(out, "   ACS → CPE  %s\n", answer)
		if verbose && x.Out != nil {
			fmt.Fprintln(out, indent(string(x.Out)))
		}
	}
	return len(ex)
}

func indent(s string) string {
	return "      " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n      ")
}

// describe summarises one envelope in a line.
func describe(env *soap.Envelope, raw []byte) string {
	if raw == nil {
		return "(empty POST: no more requests from the CPE)"
	}
	if env == nil || env.Body == nil {
		return "(undecodable)"
	}
	switch m := env.Body.(type) {
	case *soap.Inform:
		var ev []string
		for _, e := range m.Event {
			s := e.EventCode
			if e.CommandKey != "" {
				s += "(" + e.CommandKey + ")"
			}
			ev = append(ev, s)
		}
		return fmt.Sprintf("Inform [%s] DeviceId %s-%s, %d parameters, RetryCount %d", strings.Join(ev, ", "), m.DeviceId.OUI, m.DeviceId.SerialNumber, len(m.ParameterList), m.RetryCount)
	case *soap.GetParameterValues:
		return "GetParameterValues " + strings.Join(m.ParameterNames, ", ")
	case *soap.GetParameterValuesResponse:
		var b strings.Builder
		fmt.Fprintf(&b, "GetParameterValuesResponse (%d values)", len(m.ParameterList))
		for i, p := range m.ParameterList {
			if i == 6 {
				fmt.Fprintf(&b, "\n                 ...")
				break
			}
			fmt.Fprintf(&b, "\n                 %s = %s", p.Name, p.Value)
		}
		return b.String()
	case *soap.SetParameterValues:
		var kv []string
		for _, p := range m.ParameterList {
			kv = append(kv, p.Name+"="+p.Value)
		}
		return fmt.Sprintf("SetParameterValues %s (ParameterKey %q)", strings.Join(kv, ", "), m.ParameterKey)
	case *soap.SetParameterValuesResponse:
		return fmt.Sprintf("SetParameterValuesResponse Status %d", m.Status)
	case *soap.AddObject:
		return fmt.Sprintf("AddObject %s (ParameterKey %q)", m.ObjectName, m.ParameterKey)
	case *soap.AddObjectResponse:
		return fmt.Sprintf("AddObjectResponse InstanceNumber %d, Status %d", m.InstanceNumber, m.Status)
	case *soap.Fault:
		return fmt.Sprintf("Fault %d %s", m.Code, m.String)
	}
	return env.Body.Method()
}
