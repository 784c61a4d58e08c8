// Package netconf configures an IPv4 address and a default route on a Linux
// interface over rtnetlink, for the built-in DHCP client: what a DHCP client
// does with its lease, without forking ip(8).
package netconf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// rtprotDHCP marks routes installed by a DHCP client (linux/rtnetlink.h),
// so that `ip route` shows "proto dhcp".
const rtprotDHCP = 16

// AddAddress puts addr/prefix on the interface (replacing an existing
// entry of the same address) with its broadcast address.
func AddAddress(ifname string, addr net.IP, mask net.IPMask) error {
	return addrOp(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, ifname, addr, mask)
}

// DelAddress removes addr/prefix from the interface; an address that is not
// there is not an error.
func DelAddress(ifname string, addr net.IP, mask net.IPMask) error {
	err := addrOp(unix.RTM_DELADDR, 0, ifname, addr, mask)
	if errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return nil
	}
	return err
}

// ReplaceDefaultRoute makes gw on ifname the default route of the main
// table.
func ReplaceDefaultRoute(ifname string, gw net.IP) error {
	return routeOp(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE, ifname, gw)
}

// DelDefaultRoute removes the default route through gw on ifname; a route
// that is not there is not an error.
func DelDefaultRoute(ifname string, gw net.IP) error {
	err := routeOp(unix.RTM_DELROUTE, 0, ifname, gw)
	if errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

func addrOp(typ uint16, flags uint16, ifname string, addr net.IP, mask net.IPMask) error {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return err
	}
	ip4 := addr.To4()
	if ip4 == nil {
		return fmt.Errorf("netconf: %v is not an IPv4 address", addr)
	}
	ones, bits := mask.Size()
	if bits != 32 {
		return fmt.Errorf("netconf: bad IPv4 mask %v", mask)
	}
	body := make([]byte, unix.SizeofIfAddrmsg)
	body[0] = unix.AF_INET
	body[1] = byte(ones)
	body[3] = unix.RT_SCOPE_UNIVERSE
	binary.NativeEndian.PutUint32(body[4:], uint32(ifc.Index))
	body = appendAttr(body, unix.IFA_LOCAL, ip4)
	body = appendAttr(body, unix.IFA_ADDRESS, ip4)
	if ones < 31 {
		bc := make(net.IP, 4)
		for i := range bc {
			bc[i] = ip4[i] | ^mask[len(mask)-4+i]
		}
		body = appendAttr(body, unix.IFA_BROADCAST, bc)
	}
	return request(typ, flags, body)
}

func routeOp(typ uint16, flags uint16, ifname string, gw net.IP) error {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return err
	}
	g := gw.To4()
	if g == nil {
		return fmt.Errorf("netconf: %v is not an IPv4 gateway", gw)
	}
	body := make([]byte, unix.SizeofRtMsg)
	body[0] = unix.AF_INET
	// body[1] dst_len 0: the default route.
	body[4] = unix.RT_TABLE_MAIN
	body[5] = rtprotDHCP
	body[6] = unix.RT_SCOPE_UNIVERSE
	body[7] = unix.RTN_UNICAST
	body = appendAttr(body, unix.RTA_GATEWAY, g)
	idx := make([]byte, 4)
	binary.NativeEndian.PutUint32(idx, uint32(ifc.Index))
	body = appendAttr(body, unix.RTA_OIF, idx)
	return request(typ, flags, body)
}

func appendAttr(b []byte, typ uint16, data []byte) []byte {
	l := unix.SizeofRtAttr + len(data)
	h := make([]byte, unix.SizeofRtAttr)
	binary.NativeEndian.PutUint16(h[0:], uint16(l))
	binary.NativeEndian.PutUint16(h[2:], typ)
	b = append(b, h...)
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// request sends one rtnetlink request and waits for its acknowledgement.
func request(typ, flags uint16, body []byte) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return os.NewSyscallError("bind", err)
	}
	const seq = 1
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(msg[4:], typ)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|flags)
	binary.NativeEndian.PutUint32(msg[8:], seq)
	msg = append(msg, body...)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return os.NewSyscallError("sendto", err)
	}
	buf := make([]byte, 8192)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return os.NewSyscallError("recvfrom", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			if m.Header.Type == unix.NLMSG_ERROR {
				if len(m.Data) < 4 {
					return errors.New("netconf: short netlink error")
				}
				if code := int32(binary.NativeEndian.Uint32(m.Data)); code != 0 {
					return syscall.Errno(-code)
				}
				return nil
			}
		}
	}
}
