package netlab

import (
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLabTranslates sends a datagram from the LAN to the WAN and checks that
// the WAN sees the gateway's address, that the reply comes back through the
// NAT, and that the conntrack timeout was set inside the gateway only.
func TestLabTranslates(t *testing.T) {
	l := New(t, Options{UDPTimeout: 7, UDPStreamTimeout: 9})
	srv, err := l.ListenPacket(l.WAN)("udp4", WANAddr+":0")
	require.NoError(t, err)
	defer srv.Close()
	go func() {
		buf := make([]byte, 100)
		n, from, err := srv.ReadFrom(buf)
		if err == nil {
			srv.WriteTo([]byte(from.String()+"|"+string(buf[:n])), from)
		}
	}()
	cli, err := l.ListenPacket(l.LAN)("udp4", ":0")
	require.NoError(t, err)
	defer cli.Close()
	_, err = cli.WriteTo([]byte("hi"), srv.LocalAddr())
	require.NoError(t, err)
	cli.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 100)
	n, _, err := cli.ReadFrom(buf)
	require.NoError(t, err)
	seen, _, _ := strings.Cut(string(buf[:n]), "|")
	host, _, _ := net.SplitHostPort(seen)
	assert.Equal(t, GWWAN, host, "the WAN sees the gateway's public address")

	out, err := exec.Command("ip", "netns", "exec", l.GW, "sysctl", "-n", "net.netfilter.nf_conntrack_udp_timeout").Output()
	require.NoError(t, err)
	assert.Equal(t, "7", strings.TrimSpace(string(out)))
	require.NoError(t, l.FlushConntrack())
}
