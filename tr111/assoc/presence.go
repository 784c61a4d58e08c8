package assoc

import (
	"net"
	"os"

	"github.com/cwmp-agent/cwmp-agent/internal/linux/sysinfo"
)

// Presence tells which devices are still connected to the LAN.
type Presence interface {
	// Check returns one answer per lease, in order.
	Check(ls []Lease) []bool
}

// NeighbourPresence is the gateway's "locally defined means of
// connectivity detection" (TR-111 1.2.1): the kernel's IPv4 neighbour
// (ARP) table. A device is present when the entry for its address is
// complete and, when the lease is keyed by a hardware address, carries that
// address. Each check also sends one datagram to the discard port of every
// address, so that the kernel re-verifies stale entries: a device that left
// shows as incomplete or failed by the next check, and two failed checks
// in a row remove it from the table.
type NeighbourPresence struct {
	// ARPFile is the neighbour table to read; "" means /proc/net/arp.
	ARPFile string
	// Poke sends the verification datagram; nil uses a UDP socket.
	Poke func(ip string)
}

// Check implements Presence.
func (n *NeighbourPresence) Check(ls []Lease) []bool {
	file := n.ARPFile
	if file == "" {
		file = "/proc/net/arp"
	}
	// The complete entries by address.
	table := map[string]string{}
	if f, err := os.Open(file); err == nil {
		ns, _ := sysinfo.ParseARP(f)
		f.Close()
		for _, e := range ns {
			table[e.IP] = e.MAC
		}
	}
	poke := n.Poke
	if poke == nil {
		conn, err := net.ListenPacket("udp4", ":0")
		if err == nil {
			defer conn.Close()
			poke = func(ip string) {
				if a := net.ParseIP(ip); a != nil {
					conn.WriteTo([]byte{0}, &net.UDPAddr{IP: a, Port: 9})
				}
			}
		} else {
			poke = func(string) {}
		}
	}
	out := make([]bool, len(ls))
	for i, l := range ls {
		mac, ok := table[l.IP]
		out[i] = ok && (mac == l.Key || !isMAC(l.Key))
		poke(l.IP)
	}
	return out
}

func isMAC(s string) bool {
	_, err := net.ParseMAC(s)
	return err == nil
}
