package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// STUNServer counts what the ACS side's STUN server (TR-111 2.2.2) does.
// Its hooks go into tr111.ServerConfig (OnRequest, OnDropped,
// OnConnectionRequestSent); Bindings is read at each scrape.
type STUNServer struct {
	requests *prometheus.CounterVec
	dropped  prometheus.Counter
	authFail prometheus.Counter
	crs      *prometheus.CounterVec
}

// NewSTUNServer registers the STUN server's metrics; bindings is read at
// each scrape (tr111.Server.BindingCount).
func NewSTUNServer(reg prometheus.Registerer, bindings func() int) *STUNServer {
	const ns = Namespace + "_stun_server"
	m := &STUNServer{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "_requests_total",
			Help: "Binding Requests answered, by kind (binding, binding_change: with BINDING-CHANGE, TR-111 2.2.1.3) and answer (success, or the STUN error code)."},
			[]string{"kind", "answer"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "_dropped_total",
			Help: "Datagrams left unanswered: not a Binding Request, or malformed."}),
		authFail: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "_authentication_failures_total",
			Help: "Binding Requests whose MESSAGE-INTEGRITY failed or came without USERNAME (answered 431 or 432; a 401 is the challenge that asks for it)."}),
		crs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "_udp_connection_requests_total",
			Help: "UDP Connection Requests sent to CPEs (TR-111 2.2.2.3), by result (sent, failed); each is sent in several copies."},
			[]string{"result"}),
	}
	held := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: ns + "_bindings",
		Help: "CPE bindings held (the last address each STUNUsername was seen at)."}, func() float64 { return float64(bindings()) })
	reg.MustRegister(m.requests, m.dropped, m.authFail, m.crs, held)
	return m
}

// Request is tr111.ServerConfig.OnRequest.
func (m *STUNServer) Request(i tr111.RequestInfo) {
	kind := "binding"
	if i.BindingChange {
		kind = "binding_change"
	}
	answer := "success"
	if i.Code != 0 {
		answer = strconv.Itoa(i.Code)
		if i.Code < 300 || i.Code > 699 {
			answer = "other"
		}
	}
	m.requests.WithLabelValues(kind, answer).Inc()
	switch i.Code {
	case 431, 432:
		m.authFail.Inc()
	}
}

// Dropped is tr111.ServerConfig.OnDropped.
func (m *STUNServer) Dropped() { m.dropped.Inc() }

// ConnectionRequestSent is tr111.ServerConfig.OnConnectionRequestSent.
func (m *STUNServer) ConnectionRequestSent(err error) {
	if err != nil {
		m.crs.WithLabelValues("failed").Inc()
		return
	}
	m.crs.WithLabelValues("sent").Inc()
}
