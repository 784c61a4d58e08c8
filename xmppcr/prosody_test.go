package xmppcr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gosrc.io/xmpp"
	"gosrc.io/xmpp/stanza"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/prosody"
	"github.com/cwmp-agent/cwmp-agent/schemas"
)

const domain = "xmpp.test"

// acsClient is the ACS's side: an XMPP client that sends connectionRequest
// IQs and collects the answers.
type acsClient struct {
	cl      *xmpp.Client
	answers chan *stanza.IQ
}

func dialACS(t *testing.T, addr string, roots *x509.CertPool, user, pass string) *acsClient {
	t.Helper()
	a := &acsClient{answers: make(chan *stanza.IQ, 8)}
	router := xmpp.NewRouter()
	router.NewRoute().Packet("iq").HandlerFunc(func(_ xmpp.Sender, p stanza.Packet) {
		if iq, ok := p.(*stanza.IQ); ok && (iq.Type == stanza.IQTypeResult || iq.Type == stanza.IQTypeError) {
			a.answers <- iq
		}
	})
	cl, err := xmpp.NewClient(&xmpp.Config{TransportConfiguration: xmpp.TransportConfiguration{Address: addr, Domain: domain,
		TLSConfig: &tls.Config{RootCAs: roots, ServerName: domain}}, Jid: user + "@" + domain + "/acs", Credential: xmpp.Password(pass)},
		router, func(error) {})
	require.NoError(t, err)
	require.NoError(t, cl.Connect())
	t.Cleanup(func() { cl.Disconnect() })
	a.cl = cl
	return a
}

var iqSeq atomic.Int64

func (a *acsClient) request(t *testing.T, to, user, pass string) *stanza.IQ {
	t.Helper()
	id := fmt.Sprintf("cr%d", iqSeq.Add(1))
	raw := fmt.Sprintf(`<iq type="get" id="%s" to="%s"><connectionRequest xmlns="%s"><username>%s</username><password>%s</password></connectionRequest></iq>`,
		id, to, NS, user, pass)
	require.NoError(t, a.cl.SendRaw(raw))
	select {
	case iq := <-a.answers:
		assert.Equal(t, id, iq.Id)
		return iq
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to the connectionRequest")
	}
	return nil
}

// Against a real prosody: the CPE keeps a TLS, SASL-authenticated XMPP
// connection, publishes its Jabber ID, starts a session for a
// connectionRequest from an allowed JID with the right credentials, and
// refuses a JID not allowed (service-unavailable) and wrong credentials
// (not-authorized) without starting one.
func TestXMPPConnectionRequestsWithProsody(t *testing.T) {
	ps := prosody.Start(t, prosody.Options{Domain: domain, Users: [][2]string{{"cpe", "cpe-secret"}, {"acs", "acs-secret"}, {"mallory", "mallory-secret"}}})
	addr, roots := ps.Addr, ps.Roots
	tree, err := datamodel.New(schemas.Device219(), datamodel.Options{})
	require.NoError(t, err)
	dev := datamodel.SetOptions{Origin: datamodel.OriginDevice}
	host, port, _ := net.SplitHostPort(addr)
	_, err = tree.AddInstance("Device.XMPP.Connection.", map[string]string{"Enable": "true", "Username": "cpe", "Password": "cpe-secret",
		"Domain": domain, "Resource": "cwmp", "UseTLS": "true", "ServerConnectAlgorithm": "ServerTable",
		"ServerRetryInitialInterval": "1"}, dev)
	require.NoError(t, err)
	_, err = tree.AddInstance("Device.XMPP.Connection.1.Server.", map[string]string{"Enable": "true", "ServerAddress": host, "Port": port}, dev)
	require.NoError(t, err)
	require.NoError(t, tree.SetValues([]datamodel.Change{
		{Path: ms + "ConnReqXMPPConnection", Value: "Device.XMPP.Connection.1"},
		{Path: ms + "ConnReqAllowedJabberIDs", Value: "acs@" + domain},
		{Path: ms + "ConnectionRequestUsername", Value: "cr-user"}, {Path: ms + "ConnectionRequestPassword", Value: "cr-pass"}}, dev))

	var triggered atomic.Int32
	c, err := New(Config{Tree: tree, Trigger: func() { triggered.Add(1) }, TLS: &tls.Config{RootCAs: roots}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	assert.NotEqual(t, "Enabled", tree.MustGet("Device.XMPP.Connection.1.Status"))
	require.Eventually(t, func() bool { return tree.MustGet("Device.XMPP.Connection.1.Status") == "Enabled" }, 15*time.Second, 20*time.Millisecond,
		"status %s", tree.MustGet("Device.XMPP.Connection.1.Status"))
	jid := tree.MustGet(ms + "ConnReqJabberID")
	assert.Equal(t, "cpe@"+domain+"/cwmp", jid)
	assert.Equal(t, jid, tree.MustGet("Device.XMPP.Connection.1.JabberID"))
	assert.Equal(t, "true", tree.MustGet("Device.XMPP.Connection.1.TLSEstablished"))

	acs := dialACS(t, addr, roots, "acs", "acs-secret")
	iq := acs.request(t, jid, "cr-user", "cr-pass")
	assert.Equal(t, stanza.IQTypeResult, iq.Type, "%+v", iq.Error)
	require.Eventually(t, func() bool { return triggered.Load() == 1 }, 5*time.Second, 10*time.Millisecond)

	iq = acs.request(t, jid, "cr-user", "wrong")
	assert.Equal(t, stanza.IQTypeError, iq.Type)
	require.NotNil(t, iq.Error)
	assert.Equal(t, "not-authorized", iq.Error.Reason)

	mallory := dialACS(t, addr, roots, "mallory", "mallory-secret")
	iq = mallory.request(t, jid, "cr-user", "cr-pass")
	assert.Equal(t, stanza.IQTypeError, iq.Type, "a Jabber ID not in ConnReqAllowedJabberIDs")
	require.NotNil(t, iq.Error)
	assert.Equal(t, "service-unavailable", iq.Error.Reason)
	assert.Equal(t, int32(1), triggered.Load(), "no session for the refused ones")
	ok, refused := c.Counts()
	assert.Equal(t, 1, ok)
	assert.Equal(t, 2, refused)

	// Disabled: the connection goes, ConnReqJabberID empties.
	require.NoError(t, tree.SetValues([]datamodel.Change{{Path: "Device.XMPP.Connection.1.Enable", Value: "false"}}, datamodel.SetOptions{Origin: datamodel.OriginACS}))
	require.Eventually(t, func() bool { return tree.MustGet("Device.XMPP.Connection.1.Status") == "Disabled" }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, "", tree.MustGet(ms+"ConnReqJabberID"))
}
