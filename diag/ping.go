package diag

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Real runs the tests from this host: ICMP through golang.org/x/net/icmp,
// HTTP through net/http, DNS through golang.org/x/net/dns/dnsmessage.
type Real struct {
	Logger *slog.Logger
	// Resolver resolves host names; nil is net.DefaultResolver.
	Resolver *net.Resolver
	// Counters reads an interface's IP-layer byte counters (received,
	// sent); nil reads /sys/class/net.
	Counters func(ifname string) (rx, tx int64, err error)
	// DNSPort is the DNS servers' port; 0 is 53 (tests use another).
	DNSPort int
}

func (p *Real) resolver() *net.Resolver {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

// resolve picks the host's address of the asked IP version (ProtocolVersion
// Any: the first the resolver gives, IPv4 first).
func (p *Real) resolve(ctx context.Context, host, version string) (net.IP, error) {
	if host == "" {
		return nil, fail(ErrCannotResolve, errors.New("no host given"))
	}
	if ip := net.ParseIP(host); ip != nil {
		if (version == "IPv4" && ip.To4() == nil) || (version == "IPv6" && ip.To4() != nil) {
			return nil, fail(ErrCannotResolve, fmt.Errorf("%s is not an %s address", host, version))
		}
		return ip, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	addrs, err := p.resolver().LookupIPAddr(ctx, host)
	if err != nil {
		return nil, fail(ErrCannotResolve, err)
	}
	var v4, v6 net.IP
	for _, a := range addrs {
		if a.IP.To4() != nil && v4 == nil {
			v4 = a.IP
		} else if a.IP.To4() == nil && v6 == nil {
			v6 = a.IP
		}
	}
	switch {
	case version == "IPv6" && v6 != nil:
		return v6, nil
	case version != "IPv6" && v4 != nil:
		return v4, nil
	case version == "Any" && v6 != nil:
		return v6, nil
	}
	return nil, fail(ErrCannotResolve, fmt.Errorf("%s has no %s address", host, version))
}

// icmpConn is an ICMP socket for one test.
type icmpConn struct {
	c     *icmp.PacketConn
	v6    bool
	raw   bool // a raw socket sees every ICMP message of the host; ping sockets only their own
	proto int
}

// listenICMP opens an unprivileged ping socket where the kernel allows it
// (net.ipv4.ping_group_range), else a raw one (CAP_NET_RAW). raw forces
// the raw socket (traceroute reads the routers' Time Exceeded messages,
// which ping sockets do not deliver).
func listenICMP(dst, src net.IP, raw bool) (*icmpConn, error) {
	v6 := dst.To4() == nil
	laddr := ""
	if src != nil {
		laddr = src.String()
	}
	type try struct {
		network string
		raw     bool
	}
	tries := []try{{"udp4", false}, {"ip4:icmp", true}}
	proto := 1
	if v6 {
		tries, proto = []try{{"udp6", false}, {"ip6:ipv6-icmp", true}}, 58
	}
	if raw {
		tries = tries[1:]
	}
	var last error
	for _, t := range tries {
		c, err := icmp.ListenPacket(t.network, laddr)
		if err == nil {
			return &icmpConn{c: c, v6: v6, raw: t.raw, proto: proto}, nil
		}
		last = err
	}
	if errors.Is(last, os.ErrPermission) || errors.Is(last, syscall.EPERM) || errors.Is(last, syscall.EACCES) {
		return nil, fmt.Errorf("no ICMP socket: this needs CAP_NET_RAW or net.ipv4.ping_group_range: %w", last)
	}
	return nil, last
}

func (c *icmpConn) dst(ip net.IP) net.Addr {
	if c.raw {
		return &net.IPAddr{IP: ip}
	}
	return &net.UDPAddr{IP: ip}
}

func (c *icmpConn) setTOS(dscp int) {
	if dscp <= 0 {
		return
	}
	if c.v6 {
		_ = c.c.IPv6PacketConn().SetTrafficClass(dscp << 2)
	} else {
		_ = c.c.IPv4PacketConn().SetTOS(dscp << 2)
	}
}

func (c *icmpConn) setTTL(ttl int) error {
	if c.v6 {
		return c.c.IPv6PacketConn().SetHopLimit(ttl)
	}
	return c.c.IPv4PacketConn().SetTTL(ttl)
}

func (c *icmpConn) echo(id, seq, size int) []byte {
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if c.v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i)
	}
	b, _ := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}).Marshal(nil)
	return b
}

// reply is an ICMP message that answers one of our echo requests.
type reply struct {
	from     net.IP
	seq      int
	echo     bool // an Echo Reply (else Time Exceeded or Destination Unreachable)
	unreach  bool
	code     int
	received time.Time
}

// read waits until deadline for an answer to an echo of ours (id; ping
// sockets rewrite the id, and see only their own answers).
func (c *icmpConn) read(id int, deadline time.Time) (reply, error) {
	buf := make([]byte, 1500)
	_ = c.c.SetReadDeadline(deadline)
	for {
		n, peer, err := c.c.ReadFrom(buf)
		if err != nil {
			return reply{}, err
		}
		now := time.Now()
		m, err := icmp.ParseMessage(c.proto, buf[:n])
		if err != nil {
			continue
		}
		r := reply{received: now, code: m.Code}
		switch a := peer.(type) {
		case *net.IPAddr:
			r.from = a.IP
		case *net.UDPAddr:
			r.from = a.IP
		}
		switch b := m.Body.(type) {
		case *icmp.Echo:
			if m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply {
				continue
			}
			if c.raw && b.ID != id {
				continue
			}
			r.seq, r.echo = b.Seq, true
			return r, nil
		case *icmp.TimeExceeded:
			if s, ok := c.quoted(b.Data, id); ok {
				r.seq = s
				return r, nil
			}
		case *icmp.DstUnreach:
			if s, ok := c.quoted(b.Data, id); ok {
				r.seq, r.unreach = s, true
				return r, nil
			}
		}
	}
}

// quoted finds our echo request in the datagram an ICMP error quotes (its
// IP header and at least 8 bytes of its ICMP message, RFC 792 / RFC 4443).
func (c *icmpConn) quoted(data []byte, id int) (int, bool) {
	var inner []byte
	if c.v6 {
		if len(data) < 48 {
			return 0, false
		}
		inner = data[40:]
		if inner[0] != byte(ipv6.ICMPTypeEchoRequest) {
			return 0, false
		}
	} else {
		if len(data) < 20 {
			return 0, false
		}
		ihl := int(data[0]&0x0f) * 4
		if ihl < 20 || len(data) < ihl+8 {
			return 0, false
		}
		inner = data[ihl:]
		if inner[0] != byte(ipv4.ICMPTypeEcho) {
			return 0, false
		}
	}
	if c.raw && int(binary.BigEndian.Uint16(inner[4:6])) != id {
		return 0, false
	}
	return int(binary.BigEndian.Uint16(inner[6:8])), true
}

func isUnreachable(err error) bool {
	return errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH)
}

// open is what every ICMP test starts with: the host resolved, a socket
// (closed when ctx ends, so that no read outlives the test), the DSCP set,
// and an id for its echo requests.
func (p *Real) open(ctx context.Context, t Target, raw bool) (*icmpConn, net.IP, int, func(), error) {
	ip, err := p.resolve(ctx, t.Host, t.Version)
	if err != nil {
		return nil, nil, 0, nil, err
	}
	c, err := listenICMP(ip, t.Source, raw)
	if err != nil {
		return nil, nil, 0, nil, fail(ErrInternal, err)
	}
	stop := context.AfterFunc(ctx, func() { c.c.Close() })
	c.setTOS(t.DSCP)
	return c, ip, rand.IntN(0xffff), func() { stop(); c.c.Close() }, nil
}

// exchange sends one echo request and waits up to timeout for the first
// answer with its sequence number that match accepts. ok false: none came.
// A write error comes back as err (ErrNoRoute for an unreachable network).
func (c *icmpConn) exchange(ctx context.Context, ip net.IP, id, seq, size int, timeout time.Duration,
	match func(reply) bool) (r reply, rtt time.Duration, ok bool, err error) {
	sent := time.Now()
	if _, err := c.c.WriteTo(c.echo(id, seq, size), c.dst(ip)); err != nil {
		if ctx.Err() != nil {
			return reply{}, 0, false, ctx.Err()
		}
		if isUnreachable(err) {
			return reply{}, 0, false, fail(ErrNoRoute, err)
		}
		return reply{}, 0, false, nil // this one is lost
	}
	for {
		r, err := c.read(id, sent.Add(timeout))
		if err != nil {
			return reply{}, 0, false, ctx.Err()
		}
		if r.seq == seq && match(r) {
			return r, r.received.Sub(sent), true, nil
		}
	}
}

// Ping sends Count echo requests one after the other, each answered or
// timed out before the next (TR-143's IPPing does not space them).
func (p *Real) Ping(ctx context.Context, q PingRequest) (PingResult, error) {
	c, ip, id, closeFn, err := p.open(ctx, q.Target, false)
	if err != nil {
		return PingResult{}, err
	}
	defer closeFn()
	res := PingResult{Address: ip}
	for seq := 1; seq <= q.Count; seq++ {
		r, rtt, ok, err := c.exchange(ctx, ip, id, seq, q.Size, q.Timeout, func(r reply) bool { return r.echo && r.from.Equal(ip) })
		if err != nil {
			return res, err
		}
		if ok {
			res.Success++
			res.RTTs = append(res.RTTs, rtt)
			res.Responder = append(res.Responder, r.from)
		} else {
			res.Failure++
		}
	}
	return res, nil
}

// TraceRoute sends echo requests with growing TTLs and reads who answers
// (routers with Time Exceeded, the host with an Echo Reply).
func (p *Real) TraceRoute(ctx context.Context, q TraceRequest) (TraceResult, error) {
	c, ip, id, closeFn, err := p.open(ctx, q.Target, true)
	if err != nil {
		return TraceResult{}, err
	}
	defer closeFn()
	res := TraceResult{Address: ip}
	for ttl := 1; ttl <= q.MaxHops; ttl++ {
		if err := c.setTTL(ttl); err != nil {
			return res, fail(ErrInternal, err)
		}
		var hop Hop
		reached := false
		for try := 0; try < q.Tries; try++ {
			r, rtt, ok, err := c.exchange(ctx, ip, id, ttl<<2|try, q.Size, q.Timeout, func(reply) bool { return true })
			if err != nil {
				return res, err
			}
			if !ok {
				continue
			}
			hop.Address = r.from
			hop.RTTs = append(hop.RTTs, rtt)
			if r.unreach {
				hop.ErrorCode = r.code
			}
			if r.echo || r.unreach {
				reached = r.echo
			}
		}
		res.Hops = append(res.Hops, hop)
		if reached {
			res.Reached = true
			return res, nil
		}
		if hop.ErrorCode != 0 {
			return res, fail(ErrNoRoute, fmt.Errorf("hop %d: destination unreachable (code %d)", ttl, hop.ErrorCode))
		}
	}
	return res, nil
}
