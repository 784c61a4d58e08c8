//go:build !nometrics

package main

import (
	"context"
	"log/slog"

	"github.com/cwmp-agent/cwmp-agent/cpe"
	"github.com/cwmp-agent/cwmp-agent/metrics"
)

// agentMetrics is the agent's Prometheus listener (metrics.listen). A
// device built with -tags nometrics leaves it out (metrics_off.go): the
// client library and its protobuf runtime are about 2 MB of the binary.
type agentMetrics struct{ *metrics.Endpoint }

// newMetrics prepares the counters for a CPE (nil without an address).
func newMetrics(addr string, cc *cpe.Config) (*agentMetrics, error) {
	e := metrics.NewEndpoint(addr)
	if e == nil {
		return nil, nil
	}
	cc.Observer = metrics.NewCWMP(e.Registry)
	return &agentMetrics{e}, nil
}

func (m *agentMetrics) listen(c *cpe.CPE, ready func() error, log *slog.Logger) error {
	if m == nil {
		return nil
	}
	metrics.RegisterCPE(m.Registry, c)
	if err := m.Open(ready, log); err != nil {
		return err
	}
	log.Info("metrics listening", "address", m.Addr().String())
	return nil
}

func (m *agentMetrics) run(ctx context.Context, log *slog.Logger) {
	if m != nil {
		m.Run(ctx, log)
	}
}
