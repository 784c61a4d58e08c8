package tr111

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/memnet"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
)

// changeLog records the BINDING-CHANGE requests a server acknowledged, by
// the source address (the NAT mapping) they came from.
type changeLog struct {
	mu    sync.Mutex
	acked map[string]map[TxID]bool
}

func (l *changeLog) observe(i RequestInfo) {
	if !i.BindingChange || i.Code != 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.acked[i.From.String()] == nil {
		l.acked[i.From.String()] = map[TxID]bool{}
	}
	l.acked[i.From.String()][i.ID] = true
}

func (l *changeLog) counts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for m, ids := range l.acked {
		out[m] = len(ids)
	}
	return out
}

// TestRestartsAnnounceEachBindingOnce restarts discovery many times
// (SetParameterValues of the keep-alive period, the server the same),
// interleaved with new NAT mappings, and checks what the STUN server saw:
// every binding the CPE ended up with was announced with exactly one
// acknowledged BINDING-CHANGE, and none twice. (One agent start in five
// once never sent it: overlapping restarts left the announcement behind.)
func TestRestartsAnnounceEachBindingOnce(t *testing.T) {
	synctest.Test(t, testRestartsAnnounceEachBindingOnce)
}

func testRestartsAnnounceEachBindingOnce(t *testing.T) {
	mn := memnet.New()
	log := &changeLog{acked: map[string]map[TxID]bool{}}
	creds := map[string]Credential{"cpe-1": {STUNUsername: "cpe-1", STUNPassword: "stun-pw", CRUsername: "cr-user", CRPassword: "cr-pass"}}
	srv, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", OnRequest: log.observe, ListenPacket: mn.ListenPacket})
	require.NoError(t, err)
	srv.SetCredentials(creds)
	testrun.Go(t, srv.Run)
	nat := newFakeNATOn(t, mn.ListenPacket, srv.Addr(), time.Minute)
	r := newClientRigOn(t, mn, srv, map[string]string{"STUNEnable": "true", "STUNServerAddress": "127.0.0.1",
		"STUNServerPort": fmt.Sprint(nat.Addr().Port), "STUNUsername": "cpe-1", "STUNPassword": "stun-pw",
		"STUNMinimumKeepAlivePeriod": "1", "STUNMaximumKeepAlivePeriod": "1"})
	// Wired as package cpe wires it: one restart per committed transaction.
	r.tree.OnCommit(func(evs []datamodel.Event) {
		for _, e := range evs {
			if e.Kind == datamodel.ValueSet && e.Value != e.Old && IsClientParam("Device", e.Path) {
				r.client.Reload()
				return
			}
		}
	})
	r.waitPhase("fixed", 10*time.Second)
	periods := []string{"2", "1"} // another keep-alive period: a restart, no new binding
	for i := 0; i < 40; i++ {
		if i%8 == 7 {
			nat.Flush()
		} else {
			p := periods[i%2]
			require.NoError(t, r.tree.SetValues([]datamodel.Change{{Path: ms + "STUNMinimumKeepAlivePeriod", Value: p},
				{Path: ms + "STUNMaximumKeepAlivePeriod", Value: p}}, datamodel.SetOptions{Origin: datamodel.OriginACS}))
		}
		time.Sleep(time.Duration(rand.IntN(60)) * time.Millisecond)
	}
	// Settled: the binding in use was announced, once.
	require.Eventually(t, func() bool {
		st := r.client.State()
		return st.Phase == "fixed" && log.counts()[st.Mapped] > 0
	}, 15*time.Second, 20*time.Millisecond, "the binding in use is never announced: %+v %v", r.client.State(), log.counts())
	time.Sleep(300 * time.Millisecond)
	for m, n := range log.counts() {
		assert.Equal(t, 1, n, "binding %s announced %d times", m, n)
	}
	assert.Equal(t, len(log.counts()), r.client.State().BindingChanges, "each acknowledged BINDING-CHANGE is one new binding")
	assert.GreaterOrEqual(t, nat.Created(), 2, "the NAT gave new bindings")
}

// TestNewServerOrCredentialsAnnounceAgain: a binding announced to one
// server, or under other credentials, is new to the server now in use, even
// when the mapping is the same (no NAT, or one NAT in front of both): the
// CPE sends BINDING-CHANGE again, once. It once compared only the mapping
// and the username, so a new STUNServerAddress or STUNPassword left the
// server in use without the binding.
func TestNewServerOrCredentialsAnnounceAgain(t *testing.T) {
	synctest.Test(t, testNewServerOrCredentialsAnnounceAgain)
}

func testNewServerOrCredentialsAnnounceAgain(t *testing.T) {
	mn := memnet.New()
	creds := map[string]Credential{"cpe-1": {STUNUsername: "cpe-1", STUNPassword: "pw-2", CRUsername: "cr-user", CRPassword: "cr-pass"}}
	start := func(l *changeLog) *Server {
		s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", OnRequest: l.observe, ListenPacket: mn.ListenPacket})
		require.NoError(t, err)
		s.SetCredentials(creds)
		testrun.Go(t, s.Run)
		return s
	}
	la, lb := &changeLog{acked: map[string]map[TxID]bool{}}, &changeLog{acked: map[string]map[TxID]bool{}}
	a, b := start(la), start(lb)
	r := newClientRigOn(t, mn, a, map[string]string{"STUNEnable": "true", "STUNServerAddress": "127.0.0.1",
		"STUNServerPort": fmt.Sprint(a.Addr().Port), "STUNUsername": "cpe-1", "STUNPassword": "pw-1",
		"STUNMinimumKeepAlivePeriod": "1", "STUNMaximumKeepAlivePeriod": "1"})
	r.tree.OnCommit(func(evs []datamodel.Event) {
		if e := evs[0]; e.Kind == datamodel.ValueSet && IsClientParam("Device", e.Path) {
			r.client.Reload()
		}
	})
	set := func(name, value string) {
		require.NoError(t, r.tree.SetValues([]datamodel.Change{{Path: ms + name, Value: value}}, datamodel.SetOptions{Origin: datamodel.OriginACS}))
	}
	mapped := func() string { return r.client.LocalAddr().String() }
	// The wrong password: binding discovery itself is refused (the server
	// challenges a request from an address it has no binding for).
	r.waitPhase("unreachable", 5*time.Second)
	assert.Zero(t, la.counts()[mapped()])

	set("STUNPassword", "pw-2") // the right one: discovery, and the announcement
	require.Eventually(t, func() bool { return la.counts()[mapped()] == 1 }, 5*time.Second, 10*time.Millisecond,
		"the binding is announced under the new password")

	set("STUNServerPort", fmt.Sprint(b.Addr().Port)) // another server, the same mapping
	require.Eventually(t, func() bool { return lb.counts()[mapped()] == 1 }, 5*time.Second, 10*time.Millisecond,
		"the new server hears of the binding")
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, 1, la.counts()[mapped()])
	assert.Equal(t, 1, lb.counts()[mapped()])
}
