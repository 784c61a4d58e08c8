package netlab

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Pair is two network namespaces joined by one veth link: a LAN segment
// with a gateway side (GW) and a device side (Dev), for DHCP tests.
type Pair struct {
	GW, Dev     string // namespace names
	GWIf, DevIf string // the veth ends, one in each namespace
}

// PairOptions address the two ends; an empty address leaves that end
// unconfigured (a DHCP client configures it).
type PairOptions struct {
	GWAddr, DevAddr string // CIDR, e.g. "192.168.88.1/24"
}

// NewPair builds a pair; it is torn down when the test ends.
func NewPair(t testing.TB, o PairOptions) *Pair {
	t.Helper()
	Require(t)
	n := counter.Add(1)
	id := fmt.Sprintf("np%d%d", os.Getpid()%10000, n)
	p := &Pair{GW: id + "g", Dev: id + "d", GWIf: id + "vg", DevIf: id + "vd"}
	t.Cleanup(func() {
		for _, ns := range []string{p.GW, p.Dev} {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, ns := range []string{p.GW, p.Dev} {
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", p.GWIf, "type", "veth", "peer", "name", p.DevIf)
	run(t, "ip", "link", "set", p.GWIf, "netns", p.GW)
	run(t, "ip", "link", "set", p.DevIf, "netns", p.Dev)
	if o.GWAddr != "" {
		run(t, "ip", "-n", p.GW, "addr", "add", o.GWAddr, "dev", p.GWIf)
	}
	if o.DevAddr != "" {
		run(t, "ip", "-n", p.Dev, "addr", "add", o.DevAddr, "dev", p.DevIf)
	}
	run(t, "ip", "-n", p.GW, "link", "set", p.GWIf, "up")
	run(t, "ip", "-n", p.Dev, "link", "set", p.DevIf, "up")
	return p
}
