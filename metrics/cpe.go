package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cwmp-agent/cwmp-agent/cpe"
)

// stunPhases are the values of cwmp_stun_binding_state's phase label
// (tr111.State.Phase): each is exported, 1 for the current one, so that a
// dashboard sees a CPE leave one.
var stunPhases = []string{"disabled", "binding", "discovery", "monitoring", "fixed", "no-nat", "unreachable"}

// leaseStates are those of the device's DHCP client (assoc.ClientState).
var leaseStates = []string{"init", "rebooting", "bound", "renewing", "rebinding", "informing"}

var (
	descPending   = prometheus.NewDesc(Namespace+"_pending_events", "Events queued for the next Inform.", nil, nil)
	descRetry     = prometheus.NewDesc(Namespace+"_session_retries", "Consecutive failed sessions: the next Inform's RetryCount (TR-069 3.2.1.1).", nil, nil)
	descSTUNState = prometheus.NewDesc(Namespace+"_stun_binding_state", "The TR-111 STUN client's phase: 1 for the current one.", []string{"phase"}, nil)
	descNAT       = prometheus.NewDesc(Namespace+"_stun_nat_detected", "1 when the STUN client found a NAT (ManagementServer.NATDetected).", nil, nil)
	descKeepAlive = prometheus.NewDesc(Namespace+"_stun_keepalive_period_seconds", "The keep-alive period in use (TR-111 2.2.1.2): discovered, or the minimum.", nil, nil)
	descBindChg   = prometheus.NewDesc(Namespace+"_stun_binding_changes_total", "BINDING-CHANGE requests the STUN server acknowledged.", nil, nil)
	descLease     = prometheus.NewDesc(Namespace+"_dhcp_lease_state", "The device's DHCP client state (TR-111 Part 1): 1 for the current one.", []string{"state"}, nil)
	descLeaseEnd  = prometheus.NewDesc(Namespace+"_dhcp_lease_expiry_timestamp_seconds", "When the device's DHCP lease expires (Unix time; 0: none).", nil, nil)
	descGateway   = prometheus.NewDesc(Namespace+"_dhcp_gateway_known", "1 when the DHCP server gave a Gateway Identity (GatewayInfo filled in).", nil, nil)
	descManaged   = prometheus.NewDesc(Namespace+"_manageable_devices", "Entries of the gateway's ManageableDevice table (TR-111 1.2.1).", nil, nil)
)

// cpeCollector reads a CPE's state when Prometheus scrapes.
type cpeCollector struct{ c *cpe.CPE }

// RegisterCPE registers the gauges of one CPE (the device agent).
func RegisterCPE(reg prometheus.Registerer, c *cpe.CPE) {
	reg.MustRegister(cpeCollector{c})
}

func (cc cpeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPending, descRetry, descSTUNState, descNAT, descKeepAlive, descBindChg,
		descLease, descLeaseEnd, descGateway, descManaged} {
		ch <- d
	}
}

func (cc cpeCollector) Collect(ch chan<- prometheus.Metric) {
	c := cc.c
	gauge := func(d *prometheus.Desc, v float64, labels ...string) { Gauge(ch, d, v, labels...) }
	_, _, retry := c.Agent.Stats()
	gauge(descPending, float64(c.Agent.PendingEvents()))
	gauge(descRetry, float64(retry))
	if c.STUN != nil {
		st := c.STUN.State()
		stateSet(ch, descSTUNState, stunPhases, st.Phase)
		gauge(descNAT, b2f(st.NAT))
		gauge(descKeepAlive, st.Period.Seconds())
		ch <- prometheus.MustNewConstMetric(descBindChg, prometheus.CounterValue, float64(st.BindingChanges))
	}
	if c.DHCPClient != nil {
		st := c.DHCPClient.State()
		stateSet(ch, descLease, leaseStates, st.State)
		end := 0.0
		if !st.Expires.IsZero() {
			end = float64(st.Expires.Unix())
		}
		gauge(descLeaseEnd, end)
		gauge(descGateway, b2f(st.HasGW))
	}
	if c.Table != nil {
		gauge(descManaged, float64(c.Table.Len()))
	}
}

// Gauge sends a gauge's value as read at a scrape (a collector's Collect).
func Gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

// stateSet exports one series per known state, 1 for the current one.
func stateSet(ch chan<- prometheus.Metric, d *prometheus.Desc, states []string, cur string) {
	for _, s := range states {
		Gauge(ch, d, b2f(s == cur), s)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
