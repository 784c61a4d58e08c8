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
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
	"github.com/cwmp-agent/cwmp-agent/internal/netguard"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// stunSettings are the keys of `cwmp-agent stun-server`, under stun_server.
var stunSettings = []setting{
	{"stun_server.listen", ":3478", "primary STUN address"},
	{"stun_server.secondary", "", "optional second address:port (CHANGED-ADDRESS, CHANGE-REQUEST)"},
	{"stun_server.credentials", "", "file of STUNUsername STUNPassword CRUsername CRPassword lines (reloaded on SIGHUP)"},
	{"stun_server.api", "127.0.0.1:7549", "HTTP API for the ACS (connection requests, bindings, health)"},
	{"stun_server.api_token_file", "", "file holding the API's bearer token, generated on first start when absent (default: state_dir/api-token)"},
	{"stun_server.api_allow_any_address", false, "let POST /connection-request name an address with no recorded binding"},
	{"stun_server.state_dir", "/var/lib/cwmp-agent/stun-server", "where bindings persist"},
	{"stun_server.copies", 3, "copies of each UDP Connection Request"},
	{"stun_server.share_port", false, "SO_REUSEADDR on the primary port, so the ACS can send its own UDP Connection Requests from it"},
}

type stunConfig struct {
	Listen, Secondary, Credentials, API, StateDir string
	APITokenFile                                  string
	AllowAnyAddress                               bool
	Copies                                        int
	SharePort                                     bool
	LogLevel, LogFormat                           string
}

func loadStunConfig(args []string) (*stunConfig, error) {
	fs := newFlags("stun-server", "[flags]")
	config := fs.String("config", "", "YAML configuration file (keys under stun_server.)")
	for _, name := range []string{"listen", "secondary", "credentials", "api", "api-token-file", "state-dir", "log-level", "log-format"} {
		fs.String(name, "", "sets "+flagFor(name))
	}
	fs.Bool("share-port", false, "sets "+flagFor("share-port"))
	fs.Bool("allow-any-address", false, "sets "+flagFor("allow-any-address"))
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	v := viper.NewWithOptions(viper.KeyDelimiter(delim))
	for _, s := range append(append([]setting(nil), stunSettings...), setting{"log.level", "info", ""}, setting{"log.format", "text", ""}) {
		v.SetDefault(vkey(s.key), s.def)
	}
	v.SetEnvPrefix("CWMP_AGENT")
	v.SetEnvKeyReplacer(strings.NewReplacer(delim, "_"))
	v.AutomaticEnv()
	if *config != "" {
		v.SetConfigFile(*config)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, &ConfigError{Key: "--config " + *config, Err: err}
		}
	}
	fs.Visit(func(f *pflag.Flag) {
		if k := flagFor(f.Name); k != "" {
			v.Set(vkey(k), f.Value.String())
		}
	})
	c := &stunConfig{
		Listen: v.GetString(vkey("stun_server.listen")), Secondary: v.GetString(vkey("stun_server.secondary")),
		Credentials: v.GetString(vkey("stun_server.credentials")), API: v.GetString(vkey("stun_server.api")),
		StateDir: v.GetString(vkey("stun_server.state_dir")), Copies: v.GetInt(vkey("stun_server.copies")),
		SharePort:    v.GetBool(vkey("stun_server.share_port")),
		APITokenFile: v.GetString(vkey("stun_server.api_token_file")), AllowAnyAddress: v.GetBool(vkey("stun_server.api_allow_any_address")),
		LogLevel: v.GetString(vkey("log.level")), LogFormat: v.GetString(vkey("log.format")),
	}
	var errs []error
	for k, a := range map[string]string{"stun_server.listen": c.Listen, "stun_server.secondary": c.Secondary, "stun_server.api": c.API} {
		if a == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, &ConfigError{Key: k, Err: fmt.Errorf("%q: want host:port or :port", a)})
		}
	}
	if c.Copies < 1 || c.Copies > 10 {
		errs = append(errs, &ConfigError{Key: "stun_server.copies", Err: errors.New("must be between 1 and 10")})
	}
	return c, errors.Join(errs...)
}

// flagFor maps a flag name to its key.
func flagFor(name string) string {
	switch name {
	case "listen", "secondary", "credentials", "api":
		return "stun_server." + name
	case "state-dir":
		return "stun_server.state_dir"
	case "share-port":
		return "stun_server.share_port"
	case "api-token-file":
		return "stun_server.api_token_file"
	case "allow-any-address":
		return "stun_server.api_allow_any_address"
	case "log-level":
		return "log.level"
	case "log-format":
		return "log.format"
	}
	return ""
}

// apiToken reads the API's bearer token from its file, or makes one and
// writes it there (mode 0600) on first start. The token itself is never
// logged; operators and the ACS read the file.
func apiToken(cfg *stunConfig) (token, path string, err error) {
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
		return nil, &ConfigError{Key: "stun_server.credentials", Err: err}
	}
	defer f.Close()
	c, err := tr111.ParseCredentials(f)
	if err != nil {
		return nil, &ConfigError{Key: "stun_server.credentials", Err: err}
	}
	return c, nil
}

// cmdStunServer runs the TR-111 2.2.2 STUN server with its HTTP API.
func cmdStunServer(args []string) error {
	cfg, err := loadStunConfig(args)
	if err != nil {
		return err
	}
	logs := newLogSetup(cfg.LogLevel, cfg.LogFormat, stderr)
	log := logs.logger()
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
	srv, err := tr111.NewServer(tr111.ServerConfig{Listen: cfg.Listen, Secondary: cfg.Secondary, StateDir: cfg.StateDir,
		Copies: cfg.Copies, SharePort: cfg.SharePort, Logger: log})
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
			return &ConfigError{Key: "stun_server.api", Err: err}
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
