package diag

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// echoHeader is the size of the UDP Echo Plus fields (TR-143 A.1.4):
// TestGenSN, TestRespSN, TestRespRecvTimeStamp, TestRespReplyTimeStamp and
// TestRespReplyFailureCount, four bytes each, in network byte order, at
// the start of the UDP payload.
const echoHeader = 20

// EchoPlus is the UDP Echo Plus header.
type EchoPlus struct {
	GenSN, RespSN, RecvTimestamp, ReplyTimestamp, FailureCount uint32
}

// ParseEchoPlus reads the header of a UDP Echo Plus payload.
func ParseEchoPlus(b []byte) (EchoPlus, error) {
	if len(b) < echoHeader {
		return EchoPlus{}, errors.New("udp echo plus: payload shorter than its 20-byte header")
	}
	u := binary.BigEndian.Uint32
	return EchoPlus{u(b[0:]), u(b[4:]), u(b[8:]), u(b[12:]), u(b[16:])}, nil
}

// Put writes the header into b (at least 20 bytes).
func (h EchoPlus) Put(b []byte) {
	p := binary.BigEndian.PutUint32
	p(b[0:], h.GenSN)
	p(b[4:], h.RespSN)
	p(b[8:], h.RecvTimestamp)
	p(b[12:], h.ReplyTimestamp)
	p(b[16:], h.FailureCount)
}

// EchoServerConfig is UDPEchoConfig's writable part.
type EchoServerConfig struct {
	Enable   bool
	Addr     string // the address to listen on (Interface's, or any)
	Port     int
	Source   net.IP // SourceIPAddress: only its packets are answered; nil: any
	EchoPlus bool
}

// EchoServer is the UDP echo server of TR-143 (UDPEchoConfig): it answers
// each datagram with the same payload, with the Echo Plus fields filled in
// when EchoPlusEnabled, and counts what it saw.
type EchoServer struct {
	Logger *slog.Logger

	mu      sync.Mutex // guards conn and cfg
	conn    *net.UDPConn
	cfg     EchoServerConfig
	started time.Time

	received, responded, bytesIn, bytesOut atomic.Int64
	failures                               atomic.Uint32
	first, last                            atomic.Int64 // unix nanoseconds
	wg                                     sync.WaitGroup
}

// Apply starts, restarts or stops the server for cfg. The counters start
// again from zero whenever the server (re)starts.
func (s *EchoServer) Apply(cfg EchoServerConfig) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn != nil && s.cfg.Enable == cfg.Enable && s.cfg.Addr == cfg.Addr && s.cfg.Port == cfg.Port &&
		s.cfg.Source.Equal(cfg.Source) && s.cfg.EchoPlus == cfg.EchoPlus {
		return nil
	}
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
		s.wg.Wait()
	}
	s.cfg = cfg
	if !cfg.Enable || cfg.Port <= 0 || cfg.Port > 65535 {
		return nil
	}
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(cfg.Addr), Port: cfg.Port})
	if err != nil {
		return err
	}
	s.conn, s.started = c, time.Now()
	s.received.Store(0)
	s.responded.Store(0)
	s.bytesIn.Store(0)
	s.bytesOut.Store(0)
	s.failures.Store(0)
	s.first.Store(0)
	s.last.Store(0)
	s.wg.Add(1)
	go s.serve(c, cfg, s.started)
	return nil
}

// Close stops the server.
func (s *EchoServer) Close() { _ = s.Apply(EchoServerConfig{}) }

// LocalAddr is where the server listens (nil when stopped).
func (s *EchoServer) LocalAddr() *net.UDPAddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	return s.conn.LocalAddr().(*net.UDPAddr)
}

func (s *EchoServer) serve(c *net.UDPConn, cfg EchoServerConfig, started time.Time) {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, peer, err := c.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		recv := time.Now()
		if cfg.Source != nil && !peer.IP.Equal(cfg.Source) {
			continue // TR-143: only SourceIPAddress's packets are answered
		}
		s.received.Add(1)
		s.bytesIn.Add(int64(n))
		s.first.CompareAndSwap(0, recv.UnixNano())
		s.last.Store(recv.UnixNano())
		if cfg.EchoPlus && n >= echoHeader {
			h, _ := ParseEchoPlus(buf[:n])
			h.RespSN = uint32(s.responded.Load() + 1)
			h.RecvTimestamp = uint32(recv.Sub(started).Microseconds())
			h.FailureCount = s.failures.Load()
			h.ReplyTimestamp = uint32(time.Since(started).Microseconds())
			h.Put(buf)
		}
		if _, err := c.WriteToUDP(buf[:n], peer); err != nil {
			s.failures.Add(1)
			continue
		}
		s.responded.Add(1)
		s.bytesOut.Add(int64(n))
	}
}

// Stat reads one of the counters by its UDPEchoConfig name.
func (s *EchoServer) Stat(name string) string {
	switch name {
	case "PacketsReceived":
		return strconv.FormatInt(s.received.Load(), 10)
	case "PacketsResponded":
		return strconv.FormatInt(s.responded.Load(), 10)
	case "BytesReceived":
		return strconv.FormatInt(s.bytesIn.Load(), 10)
	case "BytesResponded":
		return strconv.FormatInt(s.bytesOut.Load(), 10)
	case "TimeFirstPacketReceived":
		return stamp(unixTime(s.first.Load()))
	case "TimeLastPacketReceived":
		return stamp(unixTime(s.last.Load()))
	}
	return ""
}

// UDPEcho is the UDP Echo Plus client: Count datagrams Interval apart,
// each waited for up to Timeout.
func (p *Real) UDPEcho(ctx context.Context, q EchoRequest) (EchoResult, error) {
	ip, err := p.resolve(ctx, q.Host, q.Version)
	if err != nil {
		return EchoResult{}, err
	}
	var laddr *net.UDPAddr
	if q.Source != nil {
		laddr = &net.UDPAddr{IP: q.Source}
	}
	c, err := net.DialUDP("udp", laddr, &net.UDPAddr{IP: ip, Port: q.Port})
	if err != nil {
		if isUnreachable(err) {
			return EchoResult{}, fail(ErrOther, err)
		}
		return EchoResult{}, fail(ErrInternal, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	res := EchoResult{Address: ip}
	payload := make([]byte, max(q.Size, echoHeader))
	for i := range payload[echoHeader:] {
		payload[echoHeader+i] = byte(i)
	}
	in := make([]byte, 65535)
	base := rand.Uint32N(1 << 16)
	for i := 0; i < q.Count; i++ {
		if i > 0 && q.Interval > 0 {
			t := time.NewTimer(q.Interval)
			select {
			case <-ctx.Done():
				t.Stop()
				return res, ctx.Err()
			case <-t.C:
			}
		}
		sn := base + uint32(i) + 1
		EchoPlus{GenSN: sn}.Put(payload)
		pk := EchoPacket{GenSN: sn, Sent: time.Now()}
		ok := false
		if _, err := c.Write(payload); err == nil {
			_ = c.SetReadDeadline(pk.Sent.Add(q.Timeout))
			for {
				n, err := c.Read(in)
				if err != nil {
					break
				}
				h, err := ParseEchoPlus(in[:n])
				if err != nil || h.GenSN != sn {
					continue // a late answer to an earlier datagram
				}
				pk.Received = time.Now()
				pk.RespSN, pk.RespRecvTimestamp, pk.RespReplyTime, pk.RespFailureCount = h.RespSN, h.RecvTimestamp, h.ReplyTimestamp, h.FailureCount
				ok = true
				break
			}
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		pk.Success = ok
		if ok {
			res.Success++
			res.RTTs = append(res.RTTs, pk.Received.Sub(pk.Sent))
		} else {
			res.Failure++
		}
		if q.Individual && len(res.Packets) < q.MaxResults {
			res.Packets = append(res.Packets, pk)
		}
	}
	return res, nil
}
