package netlab

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Chain is a line of network namespaces joined by veth links: a CPE, the
// routers, and a server at the far end, each link its own /24
// (10.77.<link>.0/24, the left end .1, the right end .2). Routers forward;
// nothing is translated, so every hop answers with its own address.
type Chain struct {
	t       testing.TB
	CPE     string   // namespace of the device under test
	Routers []string // namespaces of the routers, nearest the CPE first
	Server  string   // namespace of the far end
	links   [][2]string
}

// NewChain builds a chain with the given number of routers (at least one);
// it is torn down when the test ends.
func NewChain(t testing.TB, routers int) *Chain {
	t.Helper()
	Require(t)
	if _, err := exec.LookPath("tc"); err != nil {
		t.Skip("netlab: tc not installed (apt-get install iproute2)")
	}
	n := counter.Add(1)
	id := fmt.Sprintf("nc%d%d", os.Getpid()%10000, n)
	c := &Chain{t: t, CPE: id + "c", Server: id + "s"}
	for i := 1; i <= routers; i++ {
		c.Routers = append(c.Routers, fmt.Sprintf("%sr%d", id, i))
	}
	all := c.Namespaces()
	t.Cleanup(func() {
		for _, ns := range all {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, ns := range all {
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	for i := 0; i+1 < len(all); i++ {
		left, right := fmt.Sprintf("%sl%d", id, i), fmt.Sprintf("%sr%d", id, i)
		run(t, "ip", "link", "add", left, "type", "veth", "peer", "name", right)
		run(t, "ip", "link", "set", left, "netns", all[i])
		run(t, "ip", "link", "set", right, "netns", all[i+1])
		run(t, "ip", "-n", all[i], "addr", "add", fmt.Sprintf("10.77.%d.1/24", i), "dev", left)
		run(t, "ip", "-n", all[i+1], "addr", "add", fmt.Sprintf("10.77.%d.2/24", i), "dev", right)
		run(t, "ip", "-n", all[i], "link", "set", left, "up")
		run(t, "ip", "-n", all[i+1], "link", "set", right, "up")
		c.links = append(c.links, [2]string{left, right})
	}
	// Routes: everything beyond a node's right link goes right, the rest
	// left.
	for i, ns := range all {
		if i+1 < len(all) {
			for j := i + 1; j < len(all)-1; j++ {
				run(t, "ip", "-n", ns, "route", "add", fmt.Sprintf("10.77.%d.0/24", j), "via", fmt.Sprintf("10.77.%d.2", i))
			}
		}
		if i > 0 {
			for j := 0; j < i-1; j++ {
				run(t, "ip", "-n", ns, "route", "add", fmt.Sprintf("10.77.%d.0/24", j), "via", fmt.Sprintf("10.77.%d.1", i-1))
			}
		}
		if i > 0 && i+1 < len(all) {
			run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		}
	}
	return c
}

// Namespaces lists the chain's namespaces from the CPE to the server.
func (c *Chain) Namespaces() []string {
	return append(append([]string{c.CPE}, c.Routers...), c.Server)
}

// CPEAddr is the CPE's address; ServerAddr the server's; HopAddr(i) the
// address by which the i-th router (from 1) answers the CPE.
func (c *Chain) CPEAddr() string    { return "10.77.0.1" }
func (c *Chain) ServerAddr() string { return fmt.Sprintf("10.77.%d.2", len(c.Routers)) }
func (c *Chain) HopAddr(i int) string {
	return fmt.Sprintf("10.77.%d.2", i-1)
}

// CPEIf is the CPE's interface (its only link).
func (c *Chain) CPEIf() string { return c.links[0][0] }

// Qdisc puts a tc qdisc on the egress of link i (0: CPE to the first
// router) at its left end (toward the server) or right end (toward the
// CPE): "netem delay 20ms", "tbf rate 20mbit burst 32kbit latency 400ms".
func (c *Chain) Qdisc(link int, towardServer bool, qdisc string) {
	c.t.Helper()
	all := c.Namespaces()
	ns, dev := all[link+1], c.links[link][1]
	if towardServer {
		ns, dev = all[link], c.links[link][0]
	}
	run(c.t, append([]string{"ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root"}, strings.Fields(qdisc)...)...)
}

// Nft loads nftables rules into a namespace.
func (c *Chain) Nft(ns, rules string) {
	c.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("netlab: nft: %v\n%s", err, out)
	}
}
