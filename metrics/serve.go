package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cwmp-agent/cwmp-agent/internal/netguard"
)

// Limits of the metrics listener: Prometheus and a probe or two are its
// clients, so a handful of connections and short timeouts are plenty.
const (
	maxConns          = 16
	maxConnsPerSource = 8
	readTimeout       = 5 * time.Second
	writeTimeout      = 30 * time.Second // a fleet's scrape walks every CPE
	maxHeaderBytes    = 8 << 10
	maxScrapesAtOnce  = 2
)

// NewRegistry is a registry holding the process's own metrics (CPU,
// resident memory, descriptors) and the Go runtime's, beside which the
// program registers its own.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return reg
}

// Server serves /metrics, /healthz and /readyz.
//
// /healthz answers 200 while the process serves at all (a liveness
// probe); /readyz answers 200 when Ready returns nil and 503 with its
// reason otherwise (a readiness probe).
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen opens the listener on addr (host:port; port 0 picks one).
// ready may be nil (always ready).
func Listen(addr string, reg prometheus.Gatherer, ready func() error, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		MaxRequestsInFlight: maxScrapesAtOnce, Timeout: writeTimeout - time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ready != nil {
			if err := ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, "not ready:", err)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
	s := &Server{ln: netguard.Limit(ln, netguard.Limits{Max: maxConns, PerSource: maxConnsPerSource}),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: readTimeout, ReadTimeout: readTimeout, WriteTimeout: writeTimeout,
			IdleTimeout: time.Minute, MaxHeaderBytes: maxHeaderBytes, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}}
	return s, nil
}

// Addr is the listening address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.srv.Shutdown(sctx)
	}()
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Endpoint is a program's metrics from start to end: the registry that
// its parts register with, then the listener. Its methods do nothing on a
// nil Endpoint (metrics off).
type Endpoint struct {
	Registry *prometheus.Registry
	addr     string
	srv      *Server
}

// NewEndpoint is the metrics of a program listening on addr; nil when
// addr is empty.
func NewEndpoint(addr string) *Endpoint {
	if addr == "" {
		return nil
	}
	return &Endpoint{Registry: NewRegistry(), addr: addr}
}

// Open opens the listener (see Listen for ready).
func (e *Endpoint) Open(ready func() error, log *slog.Logger) error {
	if e == nil {
		return nil
	}
	srv, err := Listen(e.addr, e.Registry, ready, log)
	if err != nil {
		return err
	}
	e.srv = srv
	return nil
}

// Addr is the listening address (nil before Open).
func (e *Endpoint) Addr() net.Addr {
	if e == nil || e.srv == nil {
		return nil
	}
	return e.srv.Addr()
}

// Run serves until ctx ends.
func (e *Endpoint) Run(ctx context.Context, log *slog.Logger) {
	if e == nil || e.srv == nil {
		return
	}
	if err := e.srv.Run(ctx); err != nil && log != nil {
		log.Error("metrics listener stopped", "err", err)
	}
}
