// Package netlab builds small networks out of Linux network namespaces for
// tests: a LAN host behind a NAT gateway (nftables masquerade with stateful
// forwarding) and a WAN side with two addresses. Tests need root, iproute2
// and nftables; Require skips with a message otherwise. Everything a lab
// creates is removed when the test ends, even when it fails.
package netlab

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Addresses of a lab.
const (
	LANAddr  = "192.168.77.2"
	GWLAN    = "192.168.77.1"
	GWWAN    = "203.0.113.1"
	WANAddr  = "203.0.113.2"
	WANAddr2 = "203.0.113.3"
)

// Lab is one NAT laboratory: namespaces LAN, GW and WAN.
type Lab struct {
	t             testing.TB
	LAN, GW, WAN  string
	lanIf, wanIf  string
	gwLan, gwWan  string
	cleanupFailed bool
}

var counter atomic.Int32

// Require skips the test unless it can build labs.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("netlab: network labs take real time (kernel timeouts); skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("netlab: needs root to create network namespaces (CI runs these tests as root)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("netlab: %s not installed (apt-get install iproute2 nftables)", tool)
		}
	}
}

func run(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("netlab: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Options of a lab.
type Options struct {
	// UDPTimeout and UDPStreamTimeout set nf_conntrack_udp_timeout and
	// nf_conntrack_udp_timeout_stream in the gateway (seconds; 0 keeps the
	// kernel's default).
	UDPTimeout, UDPStreamTimeout int
	// RandomPorts makes the NAT pick a random public port for each new
	// mapping, so that a flushed binding comes back different.
	RandomPorts bool
}

// New builds a lab; it is torn down when the test ends.
func New(t testing.TB, o Options) *Lab {
	t.Helper()
	Require(t)
	n := counter.Add(1)
	id := fmt.Sprintf("nl%d%d", os.Getpid()%10000, n)
	l := &Lab{t: t, LAN: id + "lan", GW: id + "gw", WAN: id + "wan",
		lanIf: id + "vl", gwLan: id + "vgl", wanIf: id + "vw", gwWan: id + "vgw"}
	t.Cleanup(l.destroy)
	for _, ns := range []string{l.LAN, l.GW, l.WAN} {
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", l.lanIf, "type", "veth", "peer", "name", l.gwLan)
	run(t, "ip", "link", "set", l.lanIf, "netns", l.LAN)
	run(t, "ip", "link", "set", l.gwLan, "netns", l.GW)
	run(t, "ip", "link", "add", l.wanIf, "type", "veth", "peer", "name", l.gwWan)
	run(t, "ip", "link", "set", l.wanIf, "netns", l.WAN)
	run(t, "ip", "link", "set", l.gwWan, "netns", l.GW)

	run(t, "ip", "-n", l.LAN, "addr", "add", LANAddr+"/24", "dev", l.lanIf)
	run(t, "ip", "-n", l.LAN, "link", "set", l.lanIf, "up")
	run(t, "ip", "-n", l.LAN, "route", "add", "default", "via", GWLAN)
	run(t, "ip", "-n", l.GW, "addr", "add", GWLAN+"/24", "dev", l.gwLan)
	run(t, "ip", "-n", l.GW, "addr", "add", GWWAN+"/24", "dev", l.gwWan)
	run(t, "ip", "-n", l.GW, "link", "set", l.gwLan, "up")
	run(t, "ip", "-n", l.GW, "link", "set", l.gwWan, "up")
	run(t, "ip", "-n", l.WAN, "addr", "add", WANAddr+"/24", "dev", l.wanIf)
	run(t, "ip", "-n", l.WAN, "addr", "add", WANAddr2+"/24", "dev", l.wanIf)
	run(t, "ip", "-n", l.WAN, "link", "set", l.wanIf, "up")
	run(t, "ip", "netns", "exec", l.GW, "sysctl", "-qw", "net.ipv4.ip_forward=1")

	masq := "masquerade"
	if o.RandomPorts {
		masq = "masquerade random"
	}
	rules := fmt.Sprintf(`table ip labnat {
	chain postnat { type nat hook postrouting priority 100; oifname "%s" %s; }
}
table ip labfilter {
	chain forwarding {
		type filter hook forward priority 0; policy drop;
		ct state established,related accept
		iifname "%s" oifname "%s" accept
	}
}
`, l.gwWan, masq, l.gwLan, l.gwWan)
	cmd := exec.Command("ip", "netns", "exec", l.GW, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("netlab: nft: %v\n%s", err, out)
	}
	if o.UDPTimeout > 0 {
		run(t, "ip", "netns", "exec", l.GW, "sysctl", "-qw", fmt.Sprintf("net.netfilter.nf_conntrack_udp_timeout=%d", o.UDPTimeout))
	}
	if o.UDPStreamTimeout > 0 {
		run(t, "ip", "netns", "exec", l.GW, "sysctl", "-qw", fmt.Sprintf("net.netfilter.nf_conntrack_udp_timeout_stream=%d", o.UDPStreamTimeout))
	}
	return l
}

func (l *Lab) destroy() {
	for _, ns := range []string{l.LAN, l.GW, l.WAN} {
		// Processes started with Command are killed by their tests; the
		// namespaces go with their veths.
		exec.Command("ip", "netns", "pids", ns).Run()
		exec.Command("ip", "netns", "del", ns).Run()
	}
}

// Command runs a program inside a namespace.
func (l *Lab) Command(ns string, name string, args ...string) *exec.Cmd {
	return Command(ns, name, args...)
}

// Command runs a program inside the named network namespace ("": the
// test's own).
func Command(ns string, name string, args ...string) *exec.Cmd {
	if ns == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// FlushConntrack drops the gateway's connection tracking, so every NAT
// binding is forgotten.
func (l *Lab) FlushConntrack() error {
	if _, err := exec.LookPath("conntrack"); err == nil {
		if out, err := exec.Command("ip", "netns", "exec", l.GW, "conntrack", "-F").CombinedOutput(); err != nil {
			return fmt.Errorf("conntrack -F: %v: %s", err, out)
		}
		return nil
	}
	return fmt.Errorf("netlab: conntrack not installed (apt-get install conntrack)")
}

// In runs fn with the calling goroutine's thread inside the namespace.
// Sockets fn creates belong to the namespace for their whole life.
func (l *Lab) In(ns string, fn func() error) error { return In(ns, fn) }

// In runs fn with the calling goroutine's thread inside the named network
// namespace.
func In(ns string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", syscall.Gettid()))
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := setns(int(target.Fd())); err != nil {
		return fmt.Errorf("netlab: setns %s: %w", ns, err)
	}
	ferr := fn()
	if err := setns(int(orig.Fd())); err != nil {
		// The thread is in the wrong namespace: do not let Go reuse it.
		runtime.Goexit()
	}
	return ferr
}

func setns(fd int) error { return unix.Setns(fd, unix.CLONE_NEWNET) }

// ListenPacket opens a UDP socket inside the namespace.
func (l *Lab) ListenPacket(ns string) func(network, address string) (net.PacketConn, error) {
	return func(network, address string) (c net.PacketConn, err error) {
		err = l.In(ns, func() error { c, err = net.ListenPacket(network, address); return err })
		return
	}
}

// Dial connects a socket inside the namespace.
func (l *Lab) Dial(ns string) func(network, address string) (net.Conn, error) { return Dial(ns) }

// Dial returns a dialer whose sockets belong to the named namespace.
func Dial(ns string) func(network, address string) (net.Conn, error) {
	return func(network, address string) (c net.Conn, err error) {
		err = In(ns, func() error { c, err = net.Dial(network, address); return err })
		return
	}
}

// Listen opens a stream listener inside the namespace.
func (l *Lab) Listen(ns, network, address string) (net.Listener, error) {
	return Listen(ns, network, address)
}

// Listen opens a stream listener inside the named namespace.
func Listen(ns, network, address string) (net.Listener, error) {
	var ln net.Listener
	err := In(ns, func() error {
		var err error
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}

// ListenPacket returns a function opening packet sockets inside the named
// namespace.
func ListenPacket(ns string) func(network, address string) (net.PacketConn, error) {
	return func(network, address string) (c net.PacketConn, err error) {
		err = In(ns, func() error { c, err = net.ListenPacket(network, address); return err })
		return
	}
}
