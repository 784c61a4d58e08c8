package xmppcr

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gosrc.io/xmpp"
	"gosrc.io/xmpp/stanza"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/schemas"
)

const domain = "xmpp.test"

// prosody starts a real XMPP server (Debian's prosody) on a loopback
// port with TLS required and three accounts; it stops with the test.
func prosody(t *testing.T) (addr string, roots *x509.CertPool) {
	t.Helper()
	bin, err := exec.LookPath("prosody")
	if err != nil {
		t.Skip("prosody not installed (apt-get install prosody); CI installs it")
	}
	ctl, err := exec.LookPath("prosodyctl")
	require.NoError(t, err)
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600))
	roots = x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := filepath.Join(dir, "prosody.cfg.lua")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "data"), 0o700))
	conf := fmt.Sprintf(`run_as_root = true
pidfile = %[1]q
data_path = %[2]q
log = { { levels = { min = "info" }, to = "file", filename = %[3]q } }
interfaces = { "127.0.0.1" }
c2s_ports = { %[4]d }
s2s_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping" }
modules_disabled = { "s2s", "offline", "c2s_legacy_ssl" }
authentication = "internal_plain"
c2s_require_encryption = true
ssl = { certificate = %[5]q, key = %[6]q }
VirtualHost %[7]q
`, filepath.Join(dir, "prosody.pid"), filepath.Join(dir, "data"), filepath.Join(dir, "prosody.log"), port,
		filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), domain)
	require.NoError(t, os.WriteFile(cfg, []byte(conf), 0o600))
	for _, u := range [][2]string{{"cpe", "cpe-secret"}, {"acs", "acs-secret"}, {"mallory", "mallory-secret"}} {
		out, err := exec.Command(ctl, "--config", cfg, "register", u[0], domain, u[1]).CombinedOutput()
		require.NoError(t, err, "prosodyctl register: %s", out)
	}
	cmd := exec.Command(bin, "--config", cfg, "-F")
	logf, _ := os.Create(filepath.Join(dir, "stdout.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prosody.log"))
			o, _ := os.ReadFile(filepath.Join(dir, "stdout.log"))
			t.Logf("prosody log:\n%s\n%s", b, o)
		}
	})
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 15*time.Second, 50*time.Millisecond, "prosody listens")
	return addr, roots
}

func selfSigned(t *testing.T) ([]byte, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

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
	addr, roots := prosody(t)
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
