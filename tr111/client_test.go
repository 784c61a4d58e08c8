package tr111

import (
	"context"
	"fmt"
	"math"
	"net"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/memnet"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/schemas"
)

const ms = "Device.ManagementServer."

type clientRig struct {
	t      *testing.T
	tree   *datamodel.Tree
	client *Client
	server *Server
	crs    atomic.Int32
	saved  atomic.Uint64
}

func newServerT(t testing.TB, creds map[string]Credential) *Server {
	s, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", StateDir: t.TempDir(), Spacing: 5 * time.Millisecond})
	require.NoError(t, err)
	s.SetCredentials(creds)
	testrun.Go(t, s.Run)
	return s
}

// newClientRig starts a client on loopback with the given parameters.
func newClientRig(t *testing.T, server *Server, params map[string]string) *clientRig {
	return newClientRigOn(t, nil, server, params)
}

// newClientRigOn is newClientRig on an in-memory network (nil: loopback).
func newClientRigOn(t *testing.T, mn *memnet.Net, server *Server, params map[string]string) *clientRig {
	f := map[string]string{
		ms + "URL":                       "http://127.0.0.1:9/acs",
		ms + "ConnectionRequestUsername": "cr-user",
		ms + "ConnectionRequestPassword": "cr-pass",
	}
	for k, v := range params {
		f[ms+k] = v
	}
	tree, err := datamodel.New(schemas.Device(), datamodel.Options{Factory: f})
	require.NoError(t, err)
	r := &clientRig{t: t, tree: tree, server: server}
	cc := ClientConfig{Store: tree, Root: "Device", ListenAddr: "127.0.0.1:0", RTO: 10 * time.Millisecond,
		Resolution: 100 * time.Millisecond, AddressPoll: 100 * time.Millisecond,
		OnConnectionRequest: func() { r.crs.Add(1) }, SaveTimestamp: func(ts uint64) { r.saved.Store(ts) }}
	if mn != nil {
		cc.ListenPacket, cc.Dial = mn.ListenPacket, mn.Dial
	}
	c, err := NewClient(cc)
	require.NoError(t, err)
	r.client = c
	testrun.Go(t, c.Run)
	return r
}

func (r *clientRig) waitPhase(phase string, within time.Duration) State {
	r.t.Helper()
	var st State
	require.Eventually(r.t, func() bool { st = r.client.State(); return st.Phase == phase }, within, 5*time.Millisecond,
		"phase %s not reached: %+v", phase, st)
	return st
}

func TestDisabledPublishesLocalAddress(t *testing.T) {
	r := newClientRig(t, nil, map[string]string{"STUNEnable": "false"})
	r.waitPhase("disabled", 2*time.Second)
	assert.Equal(t, "false", r.tree.MustGet(ms+"NATDetected"))
	assert.Equal(t, r.client.LocalAddr().String(), r.tree.MustGet(ms+"UDPConnectionRequestAddress"))

	// UDP Connection Requests are accepted with STUN off too (TR-111 2.2.1.4),
	// and three identical copies start one session.
	conn, err := net.Dial("udp4", r.client.LocalAddr().String())
	require.NoError(t, err)
	defer conn.Close()
	msg := FormatUDPConnRequest(r.client.LocalAddr().String(), uint64(time.Now().Unix()), "77", "cr-user", "cn1", "cr-pass")
	for i := 0; i < 3; i++ {
		conn.Write(msg)
	}
	require.Eventually(t, func() bool { return r.crs.Load() == 1 }, 2*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, int32(1), r.crs.Load(), "the copies are one request")
	assert.NotZero(t, r.saved.Load(), "the timestamp is recorded")
	for _, bad := range [][]byte{
		FormatUDPConnRequest("x:1", uint64(time.Now().Unix())+10, "78", "cr-user", "cn", "wrong-pass"),
		FormatUDPConnRequest("x:1", uint64(time.Now().Unix())+10, "79", "someone", "cn", "cr-pass"),
		FormatUDPConnRequest("x:1", 5, "80", "cr-user", "cn", "cr-pass"),
		[]byte("GARBAGE"),
	} {
		conn.Write(bad)
	}
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, int32(1), r.crs.Load(), "invalid requests are ignored")
}

func TestNoNATBinding(t *testing.T) {
	srv := newServerT(t, nil)
	r := newClientRig(t, srv, map[string]string{"STUNEnable": "true", "STUNServerAddress": "127.0.0.1",
		"STUNServerPort": fmt.Sprint(srv.Addr().Port), "STUNMinimumKeepAlivePeriod": "1", "STUNMaximumKeepAlivePeriod": "2"})
	st := r.waitPhase("no-nat", 3*time.Second)
	assert.False(t, st.NAT)
	assert.Equal(t, "false", r.tree.MustGet(ms+"NATDetected"))
	assert.Equal(t, r.client.LocalAddr().String(), r.tree.MustGet(ms+"UDPConnectionRequestAddress"))
}

// TestDiscoveryThroughFakeNAT runs binding discovery, the authenticated
// BINDING-CHANGE, binding-timeout discovery and a UDP Connection Request
// through the user-space NAT.
//
// It runs in a synctest bubble on an in-memory network: the discovery's
// waits (idle times of up to 3 s, probe after probe) pass in virtual time.
func TestDiscoveryThroughFakeNAT(t *testing.T) { synctest.Test(t, testDiscoveryThroughFakeNAT) }

func testDiscoveryThroughFakeNAT(t *testing.T) {
	mn := memnet.New()
	creds := map[string]Credential{"cpe-1": {STUNUsername: "cpe-1", STUNPassword: "stun-pw", CRUsername: "cr-user", CRPassword: "cr-pass"}}
	srv, err := NewServer(ServerConfig{Listen: "127.0.0.1:0", StateDir: t.TempDir(), Spacing: 5 * time.Millisecond, ListenPacket: mn.ListenPacket})
	require.NoError(t, err)
	srv.SetCredentials(creds)
	testrun.Go(t, srv.Run)
	timeout := 1700 * time.Millisecond
	nat := newFakeNATOn(t, mn.ListenPacket, srv.Addr(), timeout)
	r := newClientRigOn(t, mn, srv, map[string]string{"STUNEnable": "true", "STUNServerAddress": "127.0.0.1",
		"STUNServerPort": fmt.Sprint(nat.Addr().Port), "STUNUsername": "cpe-1", "STUNPassword": "stun-pw",
		"STUNMinimumKeepAlivePeriod": "1", "STUNMaximumKeepAlivePeriod": "3"})

	st := r.waitPhase("monitoring", 30*time.Second)
	assert.True(t, st.NAT)
	assert.Equal(t, "true", r.tree.MustGet(ms+"NATDetected"))
	assert.Equal(t, st.Mapped, r.tree.MustGet(ms+"UDPConnectionRequestAddress"))
	assert.NotEqual(t, r.client.LocalAddr().String(), st.Mapped)
	assert.LessOrEqual(t, st.Period, timeout, "never above the real timeout")
	assert.GreaterOrEqual(t, st.Period, timeout*85/100, "within the last 15%% below it: %v", st.Period)
	maxProbes := int(math.Log2(float64(2*time.Second)/float64(100*time.Millisecond))) + 2
	assert.LessOrEqual(t, st.Probes, maxProbes, "binary search")
	assert.GreaterOrEqual(t, st.BindingChanges, 1)

	// The STUN server authenticated the BINDING-CHANGE and recorded the
	// public binding; a UDP Connection Request from its socket gets through.
	bs := srv.Bindings()
	require.Len(t, bs, 1)
	assert.Equal(t, "cpe-1", bs[0].Username)
	assert.Equal(t, r.client.State().Mapped, bs[0].Address)
	assert.True(t, bs[0].Authenticated)
	to, err := srv.ConnectionRequest(context.Background(), "cpe-1")
	require.NoError(t, err)
	assert.Equal(t, bs[0].Address, to)
	require.Eventually(t, func() bool { return r.crs.Load() == 1 }, 3*time.Second, 5*time.Millisecond)

	// The binding stays up in monitoring: a later request gets through too.
	time.Sleep(2 * timeout)
	_, err = srv.ConnectionRequest(context.Background(), "cpe-1")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return r.crs.Load() == 2 }, 3*time.Second, 5*time.Millisecond)

	// A new mapping (the NAT forgets) gives a BINDING-CHANGE and a new address.
	before := r.tree.MustGet(ms + "UDPConnectionRequestAddress")
	changes := r.client.State().BindingChanges
	nat.Flush()
	require.Eventually(t, func() bool {
		return r.tree.MustGet(ms+"UDPConnectionRequestAddress") != before && r.client.State().BindingChanges > changes
	}, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return srv.Bindings()[0].Address == r.tree.MustGet(ms+"UDPConnectionRequestAddress") },
		5*time.Second, 10*time.Millisecond)
}

func TestReloadTakesEffectAtOnce(t *testing.T) {
	srv := newServerT(t, nil)
	r := newClientRig(t, srv, map[string]string{"STUNEnable": "false", "STUNServerAddress": "127.0.0.1",
		"STUNServerPort": fmt.Sprint(srv.Addr().Port), "STUNMinimumKeepAlivePeriod": "5", "STUNMaximumKeepAlivePeriod": "5"})
	r.waitPhase("disabled", 2*time.Second)
	require.NoError(t, r.tree.OnChange(ms+"STUNEnable", func(datamodel.Event) { r.client.Reload() }))
	require.NoError(t, r.tree.SetValues([]datamodel.Change{{Path: ms + "STUNEnable", Value: "true"}}, datamodel.SetOptions{Origin: datamodel.OriginACS}))
	r.waitPhase("no-nat", 2*time.Second)
}
