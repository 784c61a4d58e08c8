package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/cli"
	"github.com/cwmp-agent/cwmp-agent/cmd/internal/config"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/fleet"
	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
	"github.com/cwmp-agent/cwmp-agent/metrics"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

var fleetOut io.Writer = os.Stderr

// cmdFleet runs N virtual CPEs in this process (see package fleet).
func cmdFleet(args []string) error {
	cf := cli.NewCommon(program, "run", "--count N [flags]", config.FlagKeys)
	fs := cf.FS
	count := fs.Int("count", 100, "number of virtual CPEs (of this shard, with --shards)")
	first := fs.Int("first", 1, "index of the first CPE (of shard 0, with --shards)")
	shards := fs.Int("shards", 0, "this process is one of N shards of one fleet: its CPEs, ports and state follow from --shard-index (0: not sharded)")
	shardIndex := fs.String("shard-index", "", "this shard's index, 0 to N-1 (default: $JOB_COMPLETION_INDEX, a Kubernetes Indexed Job's)")
	serial := fs.String("serial-pattern", "SIM%06d", "serial number pattern (one %d)")
	rate := fs.Float64("rate", 50, "CPEs started (first session) per second; 0: all at once")
	template := fs.String("template", "", "a `FILE` of a real device's parameters: a cwmp-agent dump (JSON lines or text), a genieacs-sim or SimulaTR69 CSV model, or a GenieACS device document")
	sourceIPs := fs.String("source-ips", "", "network (CIDR) giving each CPE its own source address, e.g. 127.1.0.0/16 on loopback")
	crHost := fs.String("cr-host", "", "host announced in ConnectionRequestURL (default: the address that reaches the ACS)")
	crUser := fs.String("cr-username", "{serial}", "ConnectionRequestUsername pattern")
	crPass := fs.String("cr-password", "cr-{serial}", "ConnectionRequestPassword pattern")
	persist := fs.Bool("persist", false, "keep each CPE's state under state_dir/<serial> (default: memory only)")
	periodic := fs.Int("periodic", 0, "PeriodicInformInterval in seconds for every CPE (0: the configuration's)")
	duration := fs.Duration("duration", 0, "stop after this long (0: at SIGINT or SIGTERM)")
	report := fs.String("report", "", "write the final JSON report to this file (\"-\": standard output) and the HTML report beside it (.html)")
	htmlOut := fs.String("html", "", "write the HTML report to this file (default: beside --report's file)")
	quiet := fs.Bool("quiet", false, "no live summary line")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	memprofile := fs.String("memprofile", "", "write an allocation profile at the end to this file (go tool pprof)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	cfg, err := config.Load(config.Source{File: *cf.Config, Flags: cf.Set(config.FlagKeys), Defaults: fleetDefaults})
	if err != nil {
		return err
	}
	shard, err := shardOf(*shards, *shardIndex, os.Getenv)
	if err != nil {
		return err
	}
	if shard.count > 0 {
		if err := shard.apply(cfg, first, *count); err != nil {
			return err
		}
	}
	var sources *net.IPNet
	if *sourceIPs != "" {
		ip, n, err := net.ParseCIDR(*sourceIPs)
		if err != nil || ip.To4() == nil {
			return &config.Error{Key: "--source-ips", Err: fmt.Errorf("%q: want an IPv4 network such as 127.1.0.0/16", *sourceIPs)}
		}
		sources = n
	}
	if cfg.Diagnostics.Mode == "real" && *count > 1 {
		return fmt.Errorf("diagnostics.mode real sends real probes from this host for every CPE: only with --count 1")
	}
	logs := cli.NewLogs(cfg.Log.Level, cfg.Log.Format, cli.Stderr)
	base := cfg.CPE(logs.Logger(), logs.Ring)
	base.Agent.UserAgent = "cwmp-fleet/" + version
	base.Host = nil // virtual CPEs have no interface of their own
	factory, tp, err := fleetFactory(cfg, *template, *periodic)
	if err != nil {
		return err
	}
	if tp != nil {
		for why, n := range tp.Skipped {
			fmt.Fprintf(fleetOut, "template: %d rows skipped: %s\n", n, why)
		}
		// Exactly the device's tree, with what the configuration sets.
		also := make([]string, 0, len(factory))
		for k := range factory {
			also = append(also, k)
		}
		model := cfg.Device.DataModel
		if model == "" {
			s, _ := cfg.Schema()
			model = s.Model
		}
		sch, err := tp.Schema(model, cfg.Device.DataModelFiles, also...)
		if err != nil {
			return fmt.Errorf("%s: %w", *template, err)
		}
		base.Schema = sch
		fmt.Fprintf(fleetOut, "template: %s format, %d parameters (%d of the device's own)\n", tp.Format, len(sch.Params()), len(tp.Own()))
	}
	base.Factory = factory
	if *count > 1000 {
		// A fleet's log at info level would be a line per session.
		if cfg.Log.Level == "info" {
			logs.Apply("warn", cfg.Log.Format)
		}
	}
	built := time.Now()
	stateDir := ""
	if *persist {
		stateDir = cfg.StateDir
	}
	// The shared listeners are the configuration's own:
	// connection_request.listen and udp_connection_request.listen.
	fc := fleet.Config{Count: *count, First: *first, Serial: *serial, Base: base, StateDir: stateDir,
		CRListen: cfg.ConnectionRequest.Listen, CRHost: *crHost, UDPListen: cfg.UDP.Listen, CRUsername: *crUser, CRPassword: *crPass,
		Rate: *rate, SourceIPs: sources, Shard: shard.index, Shards: shard.count, Logger: logs.Logger()}
	// The CPEs' counters are aggregated (one Observer for all of them),
	// the fleet's state read at each scrape; /readyz is ready once the
	// ramp has started every CPE.
	fm := metrics.NewEndpoint(cfg.Metrics.Listen)
	if fm != nil {
		fc.Observer = metrics.NewCWMP(fm.Registry)
	}
	f, err := fleet.New(fc)
	if err != nil {
		return err
	}
	if fm != nil {
		registerFleet(fm.Registry, f)
		if err := fm.Open(f.Ready, logs.Logger()); err != nil {
			return &config.Error{Key: "metrics.listen", Err: err}
		}
	}
	debug.FreeOSMemory()
	fmt.Fprintf(fleetOut, "fleet: %d CPEs built in %s (rss %d MB); Connection Requests on %v, UDP on %v\n",
		*count, time.Since(built).Round(time.Millisecond), fleet.RSS()>>20, f.CRAddr(), f.UDPAddr())
	if shard.count > 0 {
		fmt.Fprintf(fleetOut, "fleet: shard %d of %d: CPEs %d to %d\n", shard.index, shard.count, *first, *first+*count-1)
	}
	if fm != nil {
		fmt.Fprintf(fleetOut, "fleet: metrics on http://%s/metrics\n", fm.Addr())
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	if *cpuprofile != "" {
		stopProfile, err := startCPUProfile(*cpuprofile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		tty := isTerminal(fleetOut)
		for {
			select {
			case <-ctx.Done():
				if tty && !*quiet {
					fmt.Fprintln(fleetOut)
				}
				return
			case <-tick.C:
				if *quiet {
					continue
				}
				line := f.Line(f.Latest())
				if tty {
					fmt.Fprintf(fleetOut, "\r%s ", line)
				} else {
					fmt.Fprintln(fleetOut, line)
				}
			}
		}
	}()
	go fm.Run(ctx, logs.Logger())
	err = f.Run(ctx)
	<-done
	if *memprofile != "" {
		if pf, perr := os.Create(*memprofile); perr == nil {
			runtime.GC()
			pprof.Lookup("allocs").WriteTo(pf, 0)
			pf.Close()
		}
	}
	r := f.Report(time.Now())
	b, _ := json.MarshalIndent(r, "", "  ")
	switch *report {
	case "":
		fmt.Fprintf(fleetOut, "fleet: %d sessions (%.1f/s), %d errors, p99 %.1f ms, %d KB per CPE, %.0f µs CPU per session\n",
			r.Sessions, r.SessionsPerSec, r.Errors, r.LatencyMS["p99"], r.RSSPerCPE>>10, r.CPUPerSession)
	case "-":
		fmt.Println(string(b))
	default:
		if werr := atomicfile.Write(*report, append(b, '\n'), 0o644); werr != nil {
			return werr
		}
		if *htmlOut == "" {
			*htmlOut = htmlBeside(*report)
		}
	}
	if *htmlOut != "" {
		if werr := writeHTML(*htmlOut, &r); werr != nil {
			return werr
		}
	}
	return err
}

// htmlBeside is the HTML page's name for a JSON report's.
func htmlBeside(report string) string {
	return strings.TrimSuffix(report, filepath.Ext(report)) + ".html"
}

// writeHTML writes a report's HTML page atomically.
func writeHTML(path string, r *fleet.Report) error {
	var buf bytes.Buffer
	if err := fleet.WriteHTML(&buf, r); err != nil {
		return err
	}
	return atomicfile.Write(path, buf.Bytes(), 0o644)
}

// fleetFactory is what every CPE of the fleet shares: the template's
// values, the configuration's ACS settings (ManagementServer.* from the
// template yield to them), then `parameters`, which wins over both.
func fleetFactory(cfg *config.Agent, template string, periodic int) (map[string]string, *fleet.Template, error) {
	out := map[string]string{}
	for k, v := range cfg.Factory() {
		if _, explicit := cfg.Parameters[k]; v != "" || explicit {
			out[k] = v
		}
	}
	var tp *fleet.Template
	if template != "" {
		s, err := cfg.Schema()
		if err != nil {
			return nil, nil, err
		}
		fh, err := os.Open(template)
		if err != nil {
			return nil, nil, err
		}
		defer fh.Close()
		tp, err = fleet.ParseTemplate(fh, s)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", template, err)
		}
		ms := cfg.RootName() + ".ManagementServer."
		for k, v := range tp.Values {
			if strings.HasPrefix(k, ms) {
				continue
			}
			if _, explicit := cfg.Parameters[k]; explicit {
				continue
			}
			out[k] = v
		}
	}
	if periodic > 0 {
		out[cfg.RootName()+".ManagementServer.PeriodicInformInterval"] = strconv.Itoa(periodic)
		out[cfg.RootName()+".ManagementServer.PeriodicInformEnable"] = "true"
	}
	return out, tp, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// cmdTestACS serves the in-repository test ACS: the peer of the demo and
// of the fleet's performance figures. It answers every Inform, and with
// --gpv asks each session for those parameters.
func cmdTestACS(args []string) error {
	fs := cli.NewFlags(program, "test-acs", "[--listen ADDR] [--gpv NAMES]")
	listen := fs.String("listen", "127.0.0.1:7557", "address to listen on")
	gpv := fs.String("gpv", "", "comma-separated parameter names to ask every session for (GetParameterValues)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile to this file")
	summary := fs.String("summary", "", "at exit, write what the ACS saw (devices, sessions, BOOTSTRAP, Connection Request URLs) as JSON to this file")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if os.Getenv("GOGC") == "" {
		// A load-test peer trades memory for CPU: a fifth of its time went
		// to collecting garbage at the default, time taken from the fleet
		// it measures when both share the machine. A quarter of the
		// machine's memory bounds the trade (500,000 devices held 6 GB
		// without it, beside the fleet's 10).
		debug.SetGCPercent(400)
		var si syscall.Sysinfo_t
		if os.Getenv("GOMEMLIMIT") == "" && syscall.Sysinfo(&si) == nil {
			debug.SetMemoryLimit(int64(uint64(si.Totalram) * uint64(si.Unit) / 4))
		}
	}
	if *cpuprofile != "" {
		stopProfile, err := startCPUProfile(*cpuprofile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	acs := cwmptest.Serve(ln)
	defer acs.Close()
	acs.Lean(true)
	if *gpv != "" {
		names := strings.Split(*gpv, ",")
		acs.OnInform(func(d *cwmptest.Device, _ *soap.Inform) {
			acs.EnqueueFor(d, &soap.GetParameterValues{ParameterNames: names})
		})
	}
	fmt.Println(acs.URL)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	<-ctx.Done()
	if *summary != "" {
		b, _ := json.MarshalIndent(acs.Summary(), "", "  ")
		return atomicfile.Write(*summary, append(b, '\n'), 0o644)
	}
	return nil
}

// startCPUProfile writes a CPU profile to path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// fleetDefaults are a fleet's own: virtual CPEs need no identity of a
// real device to start, so that "cwmp-fleet --count 10 --acs-url URL" runs
// (the serial numbers come from --serial-pattern; the configuration's own
// is not used).
func fleetDefaults(c *config.Agent) {
	c.Device.OUI, c.Device.ProductClass, c.Device.SerialNumber = "00D09E", "Sim", "FLEET"
	// Virtual CPEs never probe from the fleet's host unless asked to
	// (diagnostics.mode: real, for a fleet of one).
	c.Diagnostics.Mode = "simulated"
}
