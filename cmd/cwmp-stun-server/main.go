// Command cwmp-stun-server is the ACS side of TR-111 Part 2: a STUN server
// (RFC 3489, TR-111 2.2.2) that records each CPE's authenticated binding
// and sends UDP Connection Requests from its own socket, with an HTTP API
// for the ACS.
//
//	cwmp-stun-server --listen :3478 --credentials FILE --api 127.0.0.1:7549 --state-dir DIR
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/cli"
	"github.com/cwmp-agent/cwmp-agent/cmd/internal/confkit"
	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
	"github.com/cwmp-agent/cwmp-agent/internal/netguard"
	"github.com/cwmp-agent/cwmp-agent/metrics"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// version is stamped at build time with -X main.version.
var version = "dev"

const program = "cwmp-stun-server"

// File is what cwmp-stun-server reads of a configuration file: the
// stun_server section and log (the agent's keys, if the file holds them
// too, are the agent's).
type File struct {
	StunServer StunConfig `yaml:"stun_server"`
	Log        cli.Log    `yaml:"log"`
}

// StunConfig is the server's configuration.
type StunConfig struct {
	Listen          string `yaml:"listen" help:"primary STUN address"`
	Secondary       string `yaml:"secondary" help:"optional second address:port (CHANGED-ADDRESS, CHANGE-REQUEST)"`
	Credentials     string `yaml:"credentials" help:"file of STUNUsername STUNPassword CRUsername CRPassword lines (reloaded on SIGHUP)"`
	API             string `yaml:"api" help:"HTTP API for the ACS (connection requests, bindings, health)"`
	APITokenFile    string `yaml:"api_token_file" help:"file holding the API's bearer token, generated on first start when absent (default: state_dir/api-token)"`
	AllowAnyAddress bool   `yaml:"api_allow_any_address" help:"let POST /connection-request name an address with no recorded binding"`
	StateDir        string `yaml:"state_dir" help:"where bindings persist"`
	Copies          int    `yaml:"copies" help:"copies of each UDP Connection Request"`
	SharePort       bool   `yaml:"share_port" help:"SO_REUSEADDR on the primary port, so the ACS can send its own UDP Connection Requests from it"`
	MetricsListen   string `yaml:"metrics_listen" help:"host:port of the Prometheus metrics listener (/metrics, /healthz, /readyz); empty: off"`
}

func defaultFile() *File {
	return &File{StunServer: StunConfig{Listen: ":3478", API: "127.0.0.1:7549", StateDir: "/var/lib/cwmp-agent/stun-server", Copies: 3},
		Log: cli.Log{Level: "info", Format: "text"}}
}

// stunFlags are the flags, by name, with the key each sets.
var stunFlags = map[string]string{
	"listen": "stun_server.listen", "secondary": "stun_server.secondary", "credentials": "stun_server.credentials",
	"api": "stun_server.api", "api-token-file": "stun_server.api_token_file", "state-dir": "stun_server.state_dir",
	"metrics-listen": "stun_server.metrics_listen", "log-level": "log.level", "log-format": "log.format",
}

// loadStunConfig reads defaults, the file, CWMP_AGENT_STUN_SERVER_* and the
// flags.
func loadStunConfig(args []string) (*File, error) {
	fs := cli.NewFlags(program, "", "[flags]")
	cfgFile := fs.String("config", "", "YAML configuration file (keys under stun_server.)")
	names := make([]string, 0, len(stunFlags))
	for n := range stunFlags {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fs.String(n, "", "sets "+stunFlags[n])
	}
	fs.Bool("share-port", false, "sets stun_server.share_port")
	fs.Bool("allow-any-address", false, "sets stun_server.api_allow_any_address")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	c := defaultFile()
	var doc *confkit.Doc
	var errs []error
	if *cfgFile != "" {
		d, err := confkit.Read(*cfgFile)
		if err != nil {
			return nil, err
		}
		doc = d
		errs = append(errs, confkit.Decode(doc, c, confkit.Options{Only: []string{"stun_server", "log"}})...)
	}
	errs = append(errs, confkit.ApplyEnv(c, cli.EnvPrefix, os.LookupEnv)...)
	fs.Visit(func(f *pflag.Flag) {
		key := stunFlags[f.Name]
		switch f.Name {
		case "share-port":
			key = "stun_server.share_port"
		case "allow-any-address":
			key = "stun_server.api_allow_any_address"
		}
		if key != "" {
			if err := confkit.Set(c, key, f.Value.String()); err != nil {
				errs = append(errs, err)
			}
		}
	})
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		return c, errors.Join(confkit.Sorted(doc.Locate(errs))...)
	}
	return c, nil
}

func (c *File) validate() []error {
	var errs []error
	s := &c.StunServer
	for k, a := range map[string]string{"stun_server.listen": s.Listen, "stun_server.secondary": s.Secondary, "stun_server.api": s.API,
		"stun_server.metrics_listen": s.MetricsListen} {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, &confkit.Error{Key: k, Err: fmt.Errorf("%q: want host:port or :port", a)})
		}
	}
	if s.Copies < 1 || s.Copies > 10 {
		errs = append(errs, &confkit.Error{Key: "stun_server.copies", Err: errors.New("must be between 1 and 10")})
	}
	return append(errs, c.Log.Validate()...)
}

func main() {
	args := os.Args[1:]
	if len(args) > 0 && (args[0] == "version" || args[0] == "--version") {
		fmt.Println("cwmp-stun-server", version)
		return
	}
	if err := cmdStunServer(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "cwmp-stun-server:", err)
		os.Exit(1)
	}
}

// apiToken reads the API's bearer token from its file, or makes one and
// writes it there (mode 0600) on first start. The token itself is never
// logged; operators and the ACS read the file.
func apiToken(cfg *StunConfig) (token, path string, err error) {
	path = cfg.APITokenFile
	if path == "" {
		if cfg.StateDir == "" {
			return "", "", errors.New("no place to keep the API token: set stun_server.api_token_file, or a usable state_dir (or turn the API off with --api '')")
		}
		path = filepath.Join(cfg.StateDir, "api-token")
	}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		token = strings.TrimSpace(string(b))
		if token == "" {
			return "", path, fmt.Errorf("%s is empty", path)
		}
		return token, path, nil
	case !errors.Is(err, os.ErrNotExist):
		return "", path, err
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	token = hex.EncodeToString(raw)
	if err := atomicfile.Write(path, []byte(token+"\n"), 0o600); err != nil {
		return "", path, err
	}
	return token, path, nil
}

func readCredentials(path string) (map[string]tr111.Credential, error) {
	if path == "" {
		return map[string]tr111.Credential{}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &confkit.Error{Key: "stun_server.credentials", Err: err}
	}
	defer f.Close()
	c, err := tr111.ParseCredentials(f)
	if err != nil {
		return nil, &confkit.Error{Key: "stun_server.credentials", Err: err}
	}
	return c, nil
}

// cmdStunServer runs the TR-111 2.2.2 STUN server with its HTTP API.
func cmdStunServer(args []string) error {
	file, err := loadStunConfig(args)
	if err != nil {
		return err
	}
	cfg := &file.StunServer
	logs := cli.NewLogs(file.Log.Level, file.Log.Format, cli.Stderr)
	log := logs.Logger()
	creds, err := readCredentials(cfg.Credentials)
	if err != nil {
		return err
	}
	if cfg.StateDir != "" {
		if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
			log.Warn("bindings will not persist", "state_dir", cfg.StateDir, "err", err)
			cfg.StateDir = ""
		}
	}
	sc := tr111.ServerConfig{Listen: cfg.Listen, Secondary: cfg.Secondary, StateDir: cfg.StateDir,
		Copies: cfg.Copies, SharePort: cfg.SharePort, Logger: log}
	var srv *tr111.Server
	me := metrics.NewEndpoint(cfg.MetricsListen)
	if me != nil {
		m := metrics.NewSTUNServer(me.Registry, func() int { return srv.BindingCount() })
		sc.OnRequest, sc.OnDropped, sc.OnConnectionRequestSent = m.Request, m.Dropped, m.ConnectionRequestSent
	}
	srv, err = tr111.NewServer(sc)
	if err != nil {
		return err
	}
	srv.SetCredentials(creds)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	var wg sync.WaitGroup
	if me != nil {
		// Ready once the sockets are open, which they are by now.
		if err := me.Open(nil, log); err != nil {
			return &confkit.Error{Key: "stun_server.metrics_listen", Err: err}
		}
		wg.Add(1)
		go func() { defer wg.Done(); me.Run(ctx, log) }()
		log.Info("metrics listening", "address", me.Addr().String())
	}
	var apiSrv *http.Server
	var token, tokenPath string
	if cfg.API != "" {
		var err error
		if token, tokenPath, err = apiToken(cfg); err != nil {
			// The STUN service does not need the API: run without it.
			log.Error("API not started: it needs its token", "err", err)
			cfg.API = ""
		}
	}
	if cfg.API != "" {
		ln, err := net.Listen("tcp", cfg.API)
		if err != nil {
			return &confkit.Error{Key: "stun_server.api", Err: err}
		}
		guarded := netguard.Limit(ln, netguard.Limits{Max: 256, PerSource: 64})
		apiSrv = &http.Server{Handler: srv.Handler(tr111.APIConfig{Token: token, AllowAnyAddress: cfg.AllowAnyAddress}),
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
			IdleTimeout: 30 * time.Second, MaxHeaderBytes: 16 << 10, ErrorLog: stdlog.New(io.Discard, "", 0)}
		wg.Add(1)
		go func() { defer wg.Done(); apiSrv.Serve(guarded) }()
		log.Info("STUN server API", "listen", ln.Addr().String(), "token_file", tokenPath)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				c, err := readCredentials(cfg.Credentials)
				if err != nil {
					log.Error("SIGHUP: credentials not reloaded", "err", err)
					continue
				}
				srv.SetCredentials(c)
				log.Info("SIGHUP: credentials reloaded", "cpes", len(c))
			}
		}
	}()
	log.Info("STUN server", "listen", srv.Addr().String(), "secondary", cfg.Secondary, "cpes", len(creds), "state_dir", cfg.StateDir)
	err = srv.Run(ctx)
	if apiSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		apiSrv.Shutdown(sctx)
		cancel()
	}
	wg.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
