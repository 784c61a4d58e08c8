package netlab

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// HasNetem reports whether the kernel has tc's netem qdisc (a kernel
// module that some kernels, VMs' among them, lack).
func HasNetem() bool {
	ns := fmt.Sprintf("nn%d", os.Getpid()%100000)
	if exec.Command("ip", "netns", "add", ns).Run() != nil {
		return false
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	return exec.Command("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms").Run() == nil
}

// Delay delays by d every IPv4 packet router i (from 1) forwards toward
// the server. With netem it is "netem delay" on the router's link toward
// the server; without it, a delay line in user space: the router routes
// those packets into a TUN device, whose reader writes each back after d
// (its TTL given back, since the router forwards it twice) and the router
// forwards it on from there (a policy rule for packets that come from the
// TUN device).
func (c *Chain) Delay(router int, d time.Duration) {
	c.t.Helper()
	if HasNetem() {
		c.Qdisc(router, true, fmt.Sprintf("netem delay %dms", d.Milliseconds()))
		return
	}
	ns := c.Routers[router-1]
	tun := fmt.Sprintf("%sdl", c.links[router][0])
	if len(tun) > 15 {
		tun = tun[len(tun)-15:]
	}
	var fd int
	err := In(ns, func() error {
		var err error
		fd, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(tun)
		if err != nil {
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		return unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	})
	if err != nil {
		c.t.Fatalf("netlab: delay line: %v", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		c.t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "tun")
	run(c.t, "ip", "-n", ns, "link", "set", tun, "up")
	for _, k := range []string{"all", "default", tun} {
		run(c.t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.conf."+k+".rp_filter=0")
	}
	next := fmt.Sprintf("10.77.%d.2", router)
	run(c.t, "ip", "-n", ns, "rule", "add", "iif", tun, "lookup", "100")
	for j := router; j < len(c.links); j++ {
		dst := fmt.Sprintf("10.77.%d.0/24", j)
		run(c.t, "ip", "-n", ns, "route", "replace", dst, "dev", tun)
		if j == router {
			run(c.t, "ip", "-n", ns, "route", "add", dst, "dev", c.links[router][0], "table", "100")
		} else {
			run(c.t, "ip", "-n", ns, "route", "add", dst, "via", next, "table", "100")
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var mu sync.Mutex // orders the writes
		buf := make([]byte, 65536)
		for {
			n, err := f.Read(buf)
			if err != nil {
				return
			}
			if n < 20 || buf[0]>>4 != 4 {
				continue
			}
			p := append([]byte(nil), buf[:n]...)
			// Give back the TTL the router's first forwarding took, and
			// fix the header checksum.
			p[8]++
			ihl := int(p[0]&0x0f) * 4
			binary.BigEndian.PutUint16(p[10:], 0)
			binary.BigEndian.PutUint16(p[10:], ipChecksum(p[:ihl]))
			time.AfterFunc(d, func() {
				mu.Lock()
				defer mu.Unlock()
				_, _ = f.Write(p)
			})
		}
	}()
	c.t.Cleanup(func() {
		f.Close()
		wg.Wait()
	})
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// Tools lists what a lab needs that is missing ("" when nothing is).
func Tools(names ...string) string {
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	return strings.Join(missing, ", ")
}
