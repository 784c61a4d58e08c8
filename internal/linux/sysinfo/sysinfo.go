// Package sysinfo reads true values of the Linux host the agent runs on:
// the interface used to reach the ACS with its address, mask and MAC, its
// byte and packet counters, the default gateway, the DNS servers, the
// system uptime. Paths are relative to a root directory so that tests can
// use a fake /proc and /sys.
package sysinfo

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Host reads values below Root ("" means "/").
type Host struct {
	Root string
}

func (h Host) path(p string) string {
	if h.Root == "" {
		return p
	}
	return filepath.Join(h.Root, p)
}

// Interface describes one network interface.
type Interface struct {
	Name string
	IP   net.IP
	Mask net.IPMask
	MAC  string
}

// SourceIP returns the address the kernel picks to reach the host of a URL
// (a connected UDP socket sends nothing).
func SourceIP(rawURL string) (net.IP, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("sysinfo: %q has no host", rawURL)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	c, err := net.Dial("udp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, fmt.Errorf("sysinfo: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP, nil
}

// InterfaceFor finds the interface holding ip.
func InterfaceFor(ip net.IP) (Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return Interface{}, err
	}
	for _, ifc := range ifs {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				return Interface{Name: ifc.Name, IP: n.IP, Mask: n.Mask, MAC: ifc.HardwareAddr.String()}, nil
			}
		}
	}
	return Interface{}, fmt.Errorf("sysinfo: no interface holds %s", ip)
}

// Counter reads /sys/class/net/<if>/statistics/<name> (rx_bytes, tx_packets...).
func (h Host) Counter(ifname, name string) (uint64, error) {
	if ifname == "" || ifname == "." || ifname == ".." || strings.Contains(ifname, "/") {
		return 0, fmt.Errorf("sysinfo: bad interface name %q", ifname)
	}
	b, err := os.ReadFile(h.path(filepath.Join("/sys/class/net", ifname, "statistics", name)))
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// Uptime reads /proc/uptime in whole seconds.
func (h Host) Uptime() (uint64, error) {
	b, err := os.ReadFile(h.path("/proc/uptime"))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("sysinfo: empty /proc/uptime")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, err
	}
	return uint64(v), nil
}

// DefaultGateway reads the IPv4 default route of /proc/net/route; ifname
// "" accepts any interface.
func (h Host) DefaultGateway(ifname string) (net.IP, error) {
	f, err := os.Open(h.path("/proc/net/route"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 3 || fl[1] != "00000000" || (ifname != "" && fl[0] != ifname) {
			continue
		}
		b, err := hex.DecodeString(fl[2])
		if err != nil || len(b) != 4 {
			continue
		}
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, binary.LittleEndian.Uint32(b))
		return ip, nil
	}
	return nil, fmt.Errorf("sysinfo: no default route")
}

// DNSServers reads the nameserver lines of /etc/resolv.conf.
func (h Host) DNSServers() ([]string, error) {
	f, err := os.Open(h.path("/etc/resolv.conf"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) >= 2 && fl[0] == "nameserver" && net.ParseIP(fl[1]) != nil {
			out = append(out, fl[1])
		}
	}
	return out, nil
}

// OSRelease reads a key (VERSION_ID, PRETTY_NAME...) of /etc/os-release.
func (h Host) OSRelease(key string) string {
	b, err := os.ReadFile(h.path("/etc/os-release"))
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if ok && k == key {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

// Neighbour is a resolved entry of the kernel's IPv4 neighbour table.
type Neighbour struct {
	IP, MAC, Device string
	Wireless        bool // the device is a wireless interface (/sys/class/net/<dev>/wireless)
}

// Neighbours reads the complete entries of /proc/net/arp (flag 0x2): the
// hosts the kernel currently knows on its links.
func (h Host) Neighbours() ([]Neighbour, error) {
	f, err := os.Open(h.path("/proc/net/arp"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out, err := ParseARP(f)
	for i, n := range out {
		if _, err := os.Stat(h.path("/sys/class/net/" + n.Device + "/wireless")); err == nil {
			out[i].Wireless = true
		}
	}
	return out, err
}

// ParseARP reads a neighbour table in the form of /proc/net/arp ("IP
// address  HW type  Flags  HW address  Mask  Device", one header line) and
// returns its complete entries (flag 0x2, ATF_COM), MACs in lower case.
func ParseARP(r io.Reader) ([]Neighbour, error) {
	var out []Neighbour
	sc := bufio.NewScanner(r)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		fl := strings.Fields(sc.Text())
		if len(fl) < 6 {
			continue
		}
		flags, err := strconv.ParseUint(strings.TrimPrefix(fl[2], "0x"), 16, 32)
		if err != nil || flags&0x2 == 0 || net.ParseIP(fl[0]) == nil {
			continue
		}
		out = append(out, Neighbour{IP: fl[0], MAC: strings.ToLower(fl[3]), Device: fl[5]})
	}
	return out, sc.Err()
}

// OperState reads /sys/class/net/<if>/operstate (up, down, dormant,
// unknown...); "" when it cannot.
func (h Host) OperState(ifname string) string {
	if ifname == "" || ifname == "." || ifname == ".." || strings.Contains(ifname, "/") {
		return ""
	}
	b, err := os.ReadFile(h.path(filepath.Join("/sys/class/net", ifname, "operstate")))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// IPv6Addresses lists an interface's global and unique-local IPv6
// addresses (not link-local ones, which TR-181 leaves out unless asked).
func IPv6Addresses(ifname string) []string {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil
	}
	addrs, _ := ifc.Addrs()
	var out []string
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || n.IP.To4() != nil || n.IP.IsLinkLocalUnicast() || n.IP.IsLoopback() {
			continue
		}
		out = append(out, n.IP.String())
	}
	return out
}
