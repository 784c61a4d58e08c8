package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cwmp-agent/cwmp-agent/fleet"
	"github.com/cwmp-agent/cwmp-agent/metrics"
)

var (
	descFleetCPEs    = prometheus.NewDesc(metrics.Namespace+"_fleet_cpes", "The fleet's CPEs by state: up (last session succeeded), down (started, last session failed or none yet), not_started (the ramp has not reached them).", []string{"state"}, nil)
	descFleetSize    = prometheus.NewDesc(metrics.Namespace+"_fleet_size", "CPEs in this fleet process (its shard).", nil, nil)
	descFleetRamp    = prometheus.NewDesc(metrics.Namespace+"_fleet_ramp_progress_ratio", "Share of the CPEs the ramp has started, 0 to 1.", nil, nil)
	descFleetRetry   = prometheus.NewDesc(metrics.Namespace+"_fleet_cpes_retrying", "CPEs in the session retry back-off (RetryCount above 0).", nil, nil)
	descFleetPending = prometheus.NewDesc(metrics.Namespace+"_pending_events", "Events queued for the next Inform.", nil, nil)
)

// fleetCollector reads a fleet's state when Prometheus scrapes: a few
// aggregated series whatever the number of CPEs.
type fleetCollector struct{ f *fleet.Fleet }

// registerFleet registers the gauges of a fleet; its counters are a CWMP
// given as fleet.Config.Observer.
func registerFleet(reg prometheus.Registerer, f *fleet.Fleet) {
	reg.MustRegister(fleetCollector{f})
}

func (fc fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFleetCPEs, descFleetSize, descFleetRamp, descFleetRetry, descFleetPending} {
		ch <- d
	}
}

func (fc fleetCollector) Collect(ch chan<- prometheus.Metric) {
	st := fc.f.State()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) { metrics.Gauge(ch, d, v, labels...) }
	gauge(descFleetCPEs, float64(st.Up), "up")
	gauge(descFleetCPEs, float64(st.Started-st.Up), "down")
	gauge(descFleetCPEs, float64(st.Count-st.Started), "not_started")
	gauge(descFleetSize, float64(st.Count))
	ramp := 1.0
	if st.Count > 0 {
		ramp = float64(st.Started) / float64(st.Count)
	}
	gauge(descFleetRamp, ramp)
	gauge(descFleetRetry, float64(st.Retrying))
	gauge(descFleetPending, float64(st.Pending))
}
