// Package prosody runs Debian's prosody XMPP server for tests: TLS
// required, a self-signed certificate, the accounts asked for, on a
// loopback port (in a network namespace when given one). Tests skip
// without it; CI installs it.
package prosody

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/netlab"
)

// Server is a running prosody.
type Server struct {
	Addr     string // host:port of its client service
	Roots    *x509.CertPool
	CertFile string // its certificate (PEM), to trust it
}

// Options of a server.
type Options struct {
	Domain string
	Port   int    // 0: a free one
	Netns  string // run inside this namespace ("" the host's)
	Users  [][2]string
}

// Start runs prosody until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin, err := exec.LookPath("prosody")
	if err != nil {
		t.Skip("prosody not installed (apt-get install prosody); CI installs it")
	}
	ctl, err := exec.LookPath("prosodyctl")
	require.NoError(t, err)
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t, o.Domain)
	srv := &Server{CertFile: filepath.Join(dir, "cert.pem"), Roots: x509.NewCertPool()}
	require.NoError(t, os.WriteFile(srv.CertFile, certPEM, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600))
	srv.Roots.AppendCertsFromPEM(certPEM)
	port := o.Port
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
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
		srv.CertFile, filepath.Join(dir, "key.pem"), o.Domain)
	require.NoError(t, os.WriteFile(cfg, []byte(conf), 0o600))
	for _, u := range o.Users {
		out, err := exec.Command(ctl, "--config", cfg, "register", u[0], o.Domain, u[1]).CombinedOutput()
		require.NoError(t, err, "prosodyctl register: %s", out)
	}
	cmd := netlab.Command(o.Netns, bin, "--config", cfg, "-F")
	logf, _ := os.Create(filepath.Join(dir, "stdout.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prosody.log"))
			t.Logf("prosody log:\n%s", b)
		}
	})
	srv.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	dial := func(network, addr string) (net.Conn, error) { return net.Dial(network, addr) }
	if o.Netns != "" {
		dial = netlab.Dial(o.Netns)
	}
	require.Eventually(t, func() bool {
		c, err := dial("tcp", srv.Addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 15*time.Second, 50*time.Millisecond, "prosody listens")
	return srv
}

func selfSigned(t testing.TB, domain string) ([]byte, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if ip := net.ParseIP(domain); ip != nil {
		tmpl.IPAddresses = []net.IP{ip} // an IP-literal domain (no DNS in a test's namespace)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}
