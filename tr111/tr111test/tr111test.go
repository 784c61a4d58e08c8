// Package tr111test runs a TR-111 STUN server for tests and records what
// reaches it, so that a test can count the Binding Requests a CPE sends
// (new transactions, BINDING-CHANGE announcements) as the standard's
// timing rules name them.
package tr111test

import (
	"sync"
	"testing"
	"time"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// Request is one Binding Request as the server saw it.
type Request struct {
	At time.Time
	tr111.RequestInfo
}

// Server is the project's STUN server on loopback, recording requests.
type Server struct {
	*tr111.Server

	mu   sync.Mutex
	seen []Request
}

// NewServer starts a server on 127.0.0.1 with the credentials, until the
// test ends.
func NewServer(t testing.TB, creds map[string]tr111.Credential) *Server {
	t.Helper()
	s := &Server{}
	srv, err := tr111.NewServer(tr111.ServerConfig{Listen: "127.0.0.1:0", Spacing: 5 * time.Millisecond,
		OnRequest: func(i tr111.RequestInfo) {
			s.mu.Lock()
			s.seen = append(s.seen, Request{At: time.Now(), RequestInfo: i})
			s.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv.SetCredentials(creds)
	s.Server = srv
	testrun.Go(t, srv.Run)
	return s
}

// Requests returns a copy of every request seen, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.seen...)
}

// Transactions returns the first copy of each transaction ID that keep
// accepts (retransmissions share their ID).
func (s *Server) Transactions(keep func(Request) bool) []Request {
	seen := map[tr111.TxID]bool{}
	var out []Request
	for _, r := range s.Requests() {
		if seen[r.ID] || keep != nil && !keep(r) {
			continue
		}
		seen[r.ID] = true
		out = append(out, r)
	}
	return out
}

// Plain keeps Binding Requests without BINDING-CHANGE that were not the
// authenticated repeat of a challenged one (the requests the minimum
// keep-alive period governs).
func Plain(r Request) bool { return !r.BindingChange && !r.Integrity }

// AcknowledgedChanges keeps the BINDING-CHANGE requests the server
// accepted.
func AcknowledgedChanges(r Request) bool { return r.BindingChange && r.Code == 0 }
