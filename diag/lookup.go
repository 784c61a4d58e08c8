package diag

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ResolvConf is where the system's DNS servers are listed.
var ResolvConf = "/etc/resolv.conf"

// NSLookup asks the DNS server (DNSServer, or the system's first) for the
// host's A and AAAA records, NumberOfRepetitions times; each answer is one
// Result entry (TR-181 NSLookupDiagnostics).
func (p *Real) NSLookup(ctx context.Context, q LookupRequest) (LookupResult, error) {
	server := q.Server
	if server == "" {
		cc, err := dns.ClientConfigFromFile(ResolvConf)
		if err != nil || len(cc.Servers) == 0 {
			return LookupResult{}, fail(ErrDNSServerNotFound, errors.New("no DNSServer given and none in "+ResolvConf))
		}
		server = cc.Servers[0]
	}
	sip := net.ParseIP(server)
	if sip == nil {
		ip, err := p.resolve(ctx, server, "Any")
		if err != nil {
			return LookupResult{}, fail(ErrDNSServerNotFound, err)
		}
		sip = ip
	}
	c := &dns.Client{Net: "udp", Timeout: q.Timeout}
	if q.Source != nil {
		c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: q.Source}, Timeout: q.Timeout}
	}
	port := "53"
	if p.DNSPort != 0 {
		port = strconv.Itoa(p.DNSPort)
	}
	addr := net.JoinHostPort(sip.String(), port)
	name := dns.Fqdn(q.HostName)
	var res LookupResult
	for range q.Count {
		l := Lookup{Server: sip}
		start := time.Now()
		var answered, aa, refused bool
		status := "Success"
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			m := new(dns.Msg)
			m.SetQuestion(name, qt)
			m.RecursionDesired = true
			qctx, cancel := context.WithTimeout(ctx, q.Timeout)
			r, _, err := c.ExchangeContext(qctx, m, addr)
			cancel()
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
			aa = aa || r.Authoritative
			if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
				refused = true // a server may refuse one type and answer the other
			}
			for _, rr := range r.Answer {
				switch a := rr.(type) {
				case *dns.A:
					l.Addresses = append(l.Addresses, a.A)
					l.HostName = strings.TrimSuffix(a.Hdr.Name, ".")
				case *dns.AAAA:
					l.Addresses = append(l.Addresses, a.AAAA)
					if l.HostName == "" {
						l.HostName = strings.TrimSuffix(a.Hdr.Name, ".")
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
