//go:build nometrics

package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/cwmp-agent/cwmp-agent/cpe"
)

// agentMetrics is absent from a binary built with -tags nometrics.
type agentMetrics struct{}

func newMetrics(addr string, _ *cpe.Config) (*agentMetrics, error) {
	if addr != "" {
		return nil, errors.New("this cwmp-agent was built without metrics (-tags nometrics)")
	}
	return nil, nil
}

func (*agentMetrics) listen(*cpe.CPE, func() error, *slog.Logger) error { return nil }

func (*agentMetrics) run(context.Context, *slog.Logger) {}
