// Package metrics exposes what the agent, a fleet and the STUN server do
// in the Prometheus exposition format, through the official client
// library. Counters are updated where things happen (a few atomic adds per
// session); state (pending events, STUN binding, DHCP lease, CPEs up) is
// read when Prometheus scrapes, so an idle process pays nothing.
//
// Label values come from bounded sets only: RPC methods the agent knows,
// CWMP fault codes, event codes the agent queues, outcome words. Nothing
// an ACS or a network peer sends becomes a label of its own, and a fleet
// never has one series per CPE.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cwmp-agent/cwmp-agent/cwmp"
)

// Namespace prefixes every metric of the agent and the fleet.
const Namespace = "cwmp"

// SessionBuckets are the session duration histogram's bounds in seconds: a
// session on a LAN takes milliseconds, one through a loaded ACS seconds.
var SessionBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// CWMP counts sessions, RPCs, faults and Connection Requests. One serves a
// device; a fleet shares one among all its CPEs (aggregated series). It
// implements cpe.Observer.
type CWMP struct {
	sessions   *prometheus.CounterVec
	events     *prometheus.CounterVec
	duration   prometheus.Histogram
	rpcs       *prometheus.CounterVec
	faults     *prometheus.CounterVec
	connReqs   *prometheus.CounterVec
	sessionsOK prometheus.Counter // sessions{outcome="ok"}, resolved once
}

// NewCWMP registers the counters with reg.
func NewCWMP(reg prometheus.Registerer) *CWMP {
	m := &CWMP{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "sessions_total",
			Help: "CWMP sessions ended, by outcome: ok, or the cause of the failure (http NNN, timeout, connection, authentication, protocol, other)."},
			[]string{"outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "session_events_total",
			Help: "Events informed in sessions that ended, by event code (TR-069 3.7.1.5)."}, []string{"event"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "session_duration_seconds",
			Help: "Duration of successful sessions, from the connection to the ACS to its close.", Buckets: SessionBuckets}),
		rpcs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "rpcs_total",
			Help: "ACS requests answered, by method (other: a request that could not be decoded)."}, []string{"method"}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "faults_sent_total",
			Help: "CWMP faults sent in answer to ACS requests, by fault code (TR-069 A.5.1)."}, []string{"code"}),
		connReqs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: "connection_requests_total",
			Help: "Connection Requests received, by kind (http, udp, xmpp) and outcome (accepted, challenged, auth_failed, blocked, rate_limited, replayed, future_timestamp, invalid)."},
			[]string{"kind", "outcome"}),
	}
	m.sessionsOK = m.sessions.WithLabelValues("ok")
	reg.MustRegister(m.sessions, m.events, m.duration, m.rpcs, m.faults, m.connReqs)
	return m
}

// Session records a session's outcome.
func (m *CWMP) Session(r cwmp.SessionResult) {
	if r.Err != nil {
		m.sessions.WithLabelValues(cwmp.ErrorKind(r.Err)).Inc()
		return
	}
	m.sessionsOK.Inc()
	m.duration.Observe(r.Duration.Seconds())
	for _, e := range r.Events {
		m.events.WithLabelValues(e).Inc()
	}
}

// RPC records an answered ACS request and the fault sent, if any.
func (m *CWMP) RPC(method string, fault int) {
	if !knownMethods[method] {
		method = "other"
	}
	m.rpcs.WithLabelValues(method).Inc()
	if fault != 0 {
		m.faults.WithLabelValues(faultLabel(fault)).Inc()
	}
}

// ConnectionRequest records a Connection Request's outcome.
func (m *CWMP) ConnectionRequest(kind, outcome string) {
	m.connReqs.WithLabelValues(kind, outcome).Inc()
}

// faultLabel is the code as a label; codes outside the CPE's range (TR-069
// A.5.1: 9000-9899) share one.
func faultLabel(code int) string {
	if code < 9000 || code > 9899 {
		return "other"
	}
	return strconv.Itoa(code)
}

// knownMethods are the ACS-to-CPE methods of TR-069 (A.3.2, A.4.2, and
// CWMP 1.4's additions): the only values of the method label.
var knownMethods = map[string]bool{}

func init() {
	for _, m := range []string{"GetRPCMethods", "SetParameterValues", "GetParameterValues", "GetParameterNames",
		"SetParameterAttributes", "GetParameterAttributes", "AddObject", "DeleteObject", "Reboot", "Download",
		"Upload", "FactoryReset", "GetQueuedTransfers", "GetAllQueuedTransfers", "ScheduleInform", "SetVouchers",
		"GetOptions", "ScheduleDownload", "CancelTransfer", "ChangeDUState",
		// Answers to the CPE's own requests are not ACS requests, but a
		// confused ACS may send them as such.
		"InformResponse", "TransferCompleteResponse", "Fault"} {
		knownMethods[m] = true
	}
}
