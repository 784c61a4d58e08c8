package diag

import (
	"context"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/cwmp-agent/cwmp-agent/internal/clock"
)

// Simulated answers every test with believable results and sends nothing:
// a fleet's virtual CPEs run the diagnostics life cycle (the parameters,
// the states, "8 DIAGNOSTICS COMPLETE") for an ACS under test without
// probing anything from the fleet's host. The figures follow its fields.
type Simulated struct {
	Latency    time.Duration // round trip to any host; 0 means 20 ms
	Jitter     time.Duration // uniform spread around Latency; 0 means a tenth of it
	Loss       float64       // fraction of probes lost, 0 to 1
	Throughput int64         // bits per second of transfers; 0 means 100 Mbit/s
	Hops       int           // routers before the host; 0 means 4
	FileSize   int64         // bytes of a download without a time limit; 0 means 10 MB
	// Unresolvable names a host no test can resolve (for the ACS's error
	// flows).
	Unresolvable string
	// Wait makes a test take as long as it would (on Clock); false returns
	// at once with the same figures.
	Wait  bool
	Clock clock.Clock
	Seed  uint64
}

func (s *Simulated) rnd(host string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(host))
	return rand.New(rand.NewPCG(s.Seed, h.Sum64()^uint64(time.Now().UnixNano())))
}

func (s *Simulated) now() time.Time {
	if s.Clock == nil {
		return time.Now()
	}
	return s.Clock.Now()
}

func (s *Simulated) latency(r *rand.Rand) time.Duration {
	l := s.Latency
	if l <= 0 {
		l = 20 * time.Millisecond
	}
	j := s.Jitter
	if j <= 0 {
		j = l / 10
	}
	return max(l-j+time.Duration(r.Int64N(int64(2*j)+1)), time.Microsecond)
}

// address makes up the host's address: the host itself when it is one,
// else a TEST-NET-2 address (RFC 5737) derived from its name.
func (s *Simulated) address(host string) (net.IP, error) {
	if host == "" || host == s.Unresolvable {
		return nil, fail(ErrCannotResolve, errors.New("simulated: "+host+" does not resolve"))
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip, nil
	}
	h := fnv.New32a()
	h.Write([]byte(host))
	return net.IPv4(198, 51, 100, byte(1+h.Sum32()%254)), nil
}

func (s *Simulated) wait(ctx context.Context, d time.Duration) error {
	if !s.Wait || d <= 0 {
		return ctx.Err()
	}
	c := s.Clock
	if c == nil {
		c = clock.Real{}
	}
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

func (s *Simulated) Ping(ctx context.Context, q PingRequest) (PingResult, error) {
	addr, err := s.address(q.Host)
	if err != nil {
		return PingResult{}, err
	}
	r := s.rnd(q.Host)
	res := PingResult{Address: addr}
	var spent time.Duration
	for range q.Count {
		if r.Float64() < s.Loss {
			res.Failure++
			spent += q.Timeout
			continue
		}
		d := s.latency(r)
		res.Success++
		res.RTTs = append(res.RTTs, d)
		spent += d
	}
	return res, s.wait(ctx, spent)
}

func (s *Simulated) TraceRoute(ctx context.Context, q TraceRequest) (TraceResult, error) {
	addr, err := s.address(q.Host)
	if err != nil {
		return TraceResult{}, err
	}
	hops := s.Hops
	if hops <= 0 {
		hops = 4
	}
	r := s.rnd(q.Host)
	res := TraceResult{Address: addr}
	full := s.latency(r)
	var spent time.Duration
	for i := 1; i <= min(hops+1, q.MaxHops); i++ {
		h := Hop{Address: net.IPv4(10, 0, byte(i), 1)}
		if i == hops+1 {
			h.Address, res.Reached = addr, true
		}
		for range q.Tries {
			d := full * time.Duration(i) / time.Duration(hops+1)
			h.RTTs = append(h.RTTs, d)
			spent += d
		}
		res.Hops = append(res.Hops, h)
	}
	return res, s.wait(ctx, spent)
}

func (s *Simulated) transfer(ctx context.Context, q TransferRequest, upload bool) (TransferResult, error) {
	addr, err := s.address(q.Host)
	if err != nil {
		return TransferResult{}, fail(ErrCannotResolve, err)
	}
	bps := s.Throughput
	if bps <= 0 {
		bps = 100_000_000
	}
	size := s.FileSize
	if size <= 0 {
		size = 10_000_000
	}
	if upload {
		size = q.Length
	}
	dur := time.Duration(float64(size*8) / float64(bps) * float64(time.Second))
	if q.Duration > 0 {
		dur, size = q.Duration, int64(float64(bps)/8*q.Duration.Seconds())
	}
	r := s.rnd(q.Host)
	lat := s.latency(r)
	if err := s.wait(ctx, lat+dur); err != nil {
		return TransferResult{}, err
	}
	end := s.now()
	bom := end.Add(-dur)
	rom := bom.Add(-lat / 2)
	n := max(q.Connections, 1)
	res := TransferResult{Address: addr}
	for range n {
		c := Connection{TCPOpenRequest: rom.Add(-lat), TCPOpenResponse: rom.Add(-lat / 2), ROM: rom, BOM: bom, EOM: end,
			TestBytes: size / int64(n)}
		res.Connections = append(res.Connections, c)
	}
	res.FullTestBytes = size
	if q.Interface != "" {
		res.TotalRecv, res.TotalSent = size+size/30, size/30
		if upload {
			res.TotalRecv, res.TotalSent = size/30, size+size/30
		}
		res.FullRecv, res.FullSent = res.TotalRecv, res.TotalSent
	}
	if q.Interval > 0 {
		for t := bom.Add(q.Offset); t.Before(end) && len(res.Increments) < maxIncrements; t = t.Add(q.Interval) {
			e := t.Add(q.Interval)
			if e.After(end) {
				e = end
			}
			res.Increments = append(res.Increments, Increment{Start: t, End: e, TestBytes: int64(float64(bps) / 8 * e.Sub(t).Seconds())})
		}
	}
	return res, nil
}

func (s *Simulated) Download(ctx context.Context, q TransferRequest) (TransferResult, error) {
	return s.transfer(ctx, q, false)
}

func (s *Simulated) Upload(ctx context.Context, q TransferRequest) (TransferResult, error) {
	return s.transfer(ctx, q, true)
}

func (s *Simulated) UDPEcho(ctx context.Context, q EchoRequest) (EchoResult, error) {
	addr, err := s.address(q.Host)
	if err != nil {
		return EchoResult{}, err
	}
	r := s.rnd(q.Host)
	res := EchoResult{Address: addr}
	t := s.now()
	var spent time.Duration
	for i := range q.Count {
		p := EchoPacket{GenSN: uint32(i + 1), Sent: t}
		if r.Float64() < s.Loss {
			res.Failure++
		} else {
			d := s.latency(r)
			res.Success++
			res.RTTs = append(res.RTTs, d)
			p.Success, p.Received, p.RespSN = true, t.Add(d), uint32(res.Success)
		}
		if q.Individual && len(res.Packets) < q.MaxResults {
			res.Packets = append(res.Packets, p)
		}
		t = t.Add(q.Interval)
		spent += q.Interval
	}
	return res, s.wait(ctx, spent)
}

func (s *Simulated) NSLookup(ctx context.Context, q LookupRequest) (LookupResult, error) {
	server := net.IPv4(192, 0, 2, 53)
	if q.Server != "" {
		a, err := s.address(q.Server)
		if err != nil {
			return LookupResult{}, fail(ErrDNSServerNotFound, err)
		}
		server = a
	}
	r := s.rnd(q.HostName)
	var res LookupResult
	for range q.Count {
		l := Lookup{Server: server, RTT: s.latency(r)}
		addr, err := s.address(q.HostName)
		switch {
		case err != nil:
			l.Status = "Error_HostNameNotResolved"
		case r.Float64() < s.Loss:
			l.Status = "Error_Timeout"
		default:
			l.Status, l.Answered, l.HostName, l.Addresses = "Success", true, q.HostName, []net.IP{addr}
		}
		res.Results = append(res.Results, l)
	}
	return res, nil
}

// ParseSimulated reads the simulation's figures from configuration values
// (latency and jitter as durations, loss as a fraction or a percentage,
// throughput in bit/s with an optional k, M or G).
func ParseSimulated(latency, jitter, loss, throughput string, hops int) (*Simulated, error) {
	s := &Simulated{Hops: hops}
	var err error
	if latency != "" {
		if s.Latency, err = time.ParseDuration(latency); err != nil {
			return nil, errors.New("latency: " + err.Error())
		}
	}
	if jitter != "" {
		if s.Jitter, err = time.ParseDuration(jitter); err != nil {
			return nil, errors.New("jitter: " + err.Error())
		}
	}
	if loss != "" {
		pct := len(loss) > 0 && loss[len(loss)-1] == '%'
		if pct {
			loss = loss[:len(loss)-1]
		}
		f, err := strconv.ParseFloat(loss, 64)
		if pct {
			f /= 100
		}
		if err != nil || f < 0 || f > 1 {
			return nil, errors.New("loss: want a fraction from 0 to 1 or a percentage")
		}
		s.Loss = f
	}
	if throughput != "" {
		mult := int64(1)
		switch throughput[len(throughput)-1] {
		case 'k', 'K':
			mult = 1_000
		case 'M':
			mult = 1_000_000
		case 'G':
			mult = 1_000_000_000
		}
		num := throughput
		if mult > 1 {
			num = throughput[:len(throughput)-1]
		}
		n, err := strconv.ParseFloat(num, 64)
		if err != nil || n <= 0 {
			return nil, errors.New("throughput: want bits per second such as 50M")
		}
		s.Throughput = int64(n * float64(mult))
	}
	return s, nil
}
