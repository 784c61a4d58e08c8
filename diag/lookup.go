package diag

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// ResolvConf is where the system's DNS servers are listed.
var ResolvConf = "/etc/resolv.conf"

// maxDNSAnswer bounds one answer read over UDP: without EDNS0 a server
// sends at most 512 bytes (RFC 1035 4.2.1); the margin covers servers that
// ignore that.
const maxDNSAnswer = 4096

// NSLookup asks the DNS server (DNSServer, or the system's first) for the
// host's A and AAAA records, NumberOfRepetitions times; each answer is one
// Result entry (TR-181 NSLookupDiagnostics). Messages are built and parsed
// with golang.org/x/net/dns/dnsmessage, the codec the standard library's
// resolver is built on: the agent needs two question types and the header
// bits, not a whole DNS toolkit, and this one costs a tenth of the bytes in
// the device binary.
func (p *Real) NSLookup(ctx context.Context, q LookupRequest) (LookupResult, error) {
	server := q.Server
	if server == "" {
		server = firstNameserver(ResolvConf)
		if server == "" {
			return LookupResult{}, fail(ErrDNSServerNotFound, errors.New("no DNSServer given and none in "+ResolvConf))
		}
	}
	sip := net.ParseIP(server)
	if sip == nil {
		ip, err := p.resolve(ctx, server, "Any")
		if err != nil {
			return LookupResult{}, fail(ErrDNSServerNotFound, err)
		}
		sip = ip
	}
	port := 53
	if p.DNSPort != 0 {
		port = p.DNSPort
	}
	raddr := &net.UDPAddr{IP: sip, Port: port}
	fqdn := q.HostName
	if !strings.HasSuffix(fqdn, ".") {
		fqdn += "."
	}
	name, err := dnsmessage.NewName(fqdn)
	if err != nil {
		return LookupResult{}, fail(ErrOther, err)
	}
	var res LookupResult
	for range q.Count {
		l := Lookup{Server: sip}
		start := time.Now()
		var answered, aa, refused bool
		status := "Success"
		for _, qt := range []dnsmessage.Type{dnsmessage.TypeA, dnsmessage.TypeAAAA} {
			r, err := exchange(ctx, q, raddr, name, qt)
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					status = "Error_Timeout"
				} else {
					status = "Error_DNSServerNotAvailable"
				}
				break
			}
			answered = true
			aa = aa || r.Header.Authoritative
			if r.Header.RCode != dnsmessage.RCodeSuccess && r.Header.RCode != dnsmessage.RCodeNameError {
				refused = true // a server may refuse one type and answer the other
			}
			for _, rr := range r.Answers {
				switch a := rr.Body.(type) {
				case *dnsmessage.AResource:
					l.Addresses = append(l.Addresses, net.IP(a.A[:]))
					l.HostName = strings.TrimSuffix(rr.Header.Name.String(), ".")
				case *dnsmessage.AAAAResource:
					l.Addresses = append(l.Addresses, net.IP(a.AAAA[:]))
					if l.HostName == "" {
						l.HostName = strings.TrimSuffix(rr.Header.Name.String(), ".")
					}
				}
			}
		}
		l.RTT = time.Since(start)
		switch {
		case len(l.Addresses) > 0:
			status = "Success"
		case status == "Success" && refused:
			status = "Error_Other"
		case status == "Success":
			status = "Error_HostNameNotResolved"
		}
		l.Status, l.Answered, l.Authoritative = status, answered, aa
		res.Results = append(res.Results, l)
	}
	return res, nil
}

// exchange sends one recursive query over UDP and returns the answer whose
// ID and question match it (RFC 1035 7.3: anything else on the socket is
// ignored), or the timeout.
func exchange(ctx context.Context, q LookupRequest, raddr *net.UDPAddr, name dnsmessage.Name, qt dnsmessage.Type) (*dnsmessage.Message, error) {
	d := net.Dialer{Timeout: q.Timeout}
	if q.Source != nil {
		d.LocalAddr = &net.UDPAddr{IP: q.Source}
	}
	qctx, cancel := context.WithTimeout(ctx, q.Timeout)
	defer cancel()
	c, err := d.DialContext(qctx, "udp", raddr.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if dl, ok := qctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	question := dnsmessage.Question{Name: name, Type: qt, Class: dnsmessage.ClassINET}
	query := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{question},
	}
	wire, err := query.Pack()
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(wire); err != nil {
		return nil, err
	}
	buf := make([]byte, maxDNSAnswer)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		var m dnsmessage.Message
		if m.Unpack(buf[:n]) != nil || !m.Header.Response || m.Header.ID != id ||
			len(m.Questions) != 1 || m.Questions[0] != question {
			continue
		}
		return &m, nil
	}
}

// firstNameserver is the address of the first "nameserver" line of a
// resolv.conf(5) file, or "" when there is none.
func firstNameserver(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			return fields[1]
		}
	}
	return ""
}
