package diag

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sampleEvery is how often a transfer samples its byte counts, for the
// incremental results and the full-loading figures.
const sampleEvery = 20 * time.Millisecond

// countConn counts the bytes of the TCP stream, HTTP headers included
// (TestBytesReceived and TestBytesSent count them), and notes when the
// first and the last byte went by.
type countConn struct {
	net.Conn
	rx, tx  atomic.Int64
	firstRx atomic.Int64 // unix nanoseconds
	lastRx  atomic.Int64
	firstTx atomic.Int64
	lastTx  atomic.Int64
}

func (c *countConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		now := time.Now().UnixNano()
		c.firstRx.CompareAndSwap(0, now)
		c.lastRx.Store(now)
		c.rx.Add(int64(n))
	}
	return n, err
}

func (c *countConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		now := time.Now().UnixNano()
		c.firstTx.CompareAndSwap(0, now)
		c.lastTx.Store(now)
		c.tx.Add(int64(n))
	}
	return n, err
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// counters reads an interface's byte counters.
func (p *Real) counters(ifname string) (int64, int64, bool) {
	if ifname == "" {
		return 0, 0, false
	}
	if p.Counters != nil {
		rx, tx, err := p.Counters(ifname)
		return rx, tx, err == nil
	}
	read := func(name string) (int64, error) {
		b, err := os.ReadFile(filepath.Join("/sys/class/net", ifname, "statistics", name))
		if err != nil {
			return 0, err
		}
		return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	rx, err1 := read("rx_bytes")
	tx, err2 := read("tx_bytes")
	return rx, tx, err1 == nil && err2 == nil
}

type sample struct {
	at             time.Time
	test, rxIf, tx int64
}

// conn is one connection of a transfer test.
type conn struct {
	res Connection
	cc  atomic.Pointer[countConn] // read by the sampler while the connection runs
	err error
}

// transfer runs the connections of a download or upload test.
func (p *Real) transfer(ctx context.Context, q TransferRequest, upload bool) (TransferResult, error) {
	ip, err := p.resolve(ctx, q.Host, q.Version)
	if err != nil {
		return TransferResult{}, err
	}
	if q.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, q.Duration)
		defer cancel()
	}
	n := max(q.Connections, 1)
	conns := make([]*conn, n)
	var wg sync.WaitGroup
	for i := range conns {
		conns[i] = &conn{}
		wg.Add(1)
		go func(c *conn) {
			defer wg.Done()
			c.err = p.oneTransfer(ctx, q, ip, upload, c)
		}(conns[i])
	}
	// Sample the bytes moved and the interface's counters while the
	// connections run.
	var samples []sample
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(sampleEvery)
	snap := func() {
		s := sample{at: time.Now()}
		for _, c := range conns {
			if cc := c.cc.Load(); cc != nil {
				if upload {
					s.test += cc.tx.Load()
				} else {
					s.test += cc.rx.Load()
				}
			}
		}
		s.rxIf, s.tx, _ = p.counters(q.Interface)
		samples = append(samples, s)
	}
	snap()
loop:
	for {
		select {
		case <-done:
			break loop
		case <-tick.C:
			snap()
		}
	}
	tick.Stop()
	snap()
	res := TransferResult{Address: ip}
	for _, c := range conns {
		timeBased := q.Duration > 0 && errors.Is(c.err, context.DeadlineExceeded)
		if c.err != nil && !timeBased {
			if errors.Is(c.err, context.Canceled) {
				return res, c.err
			}
			var f *Failure
			if errors.As(c.err, &f) {
				return res, f
			}
			return res, fail(ErrTransferFailed, c.err)
		}
		res.Connections = append(res.Connections, c.res)
	}
	var bom, eom, fullStart, fullEnd time.Time
	for i, c := range res.Connections {
		if i == 0 || c.BOM.Before(bom) {
			bom = c.BOM
		}
		if c.EOM.After(eom) {
			eom = c.EOM
		}
		if i == 0 || c.BOM.After(fullStart) {
			fullStart = c.BOM
		}
		if i == 0 || c.EOM.Before(fullEnd) {
			fullEnd = c.EOM
		}
	}
	at := func(t time.Time) sample { return interpolate(samples, t) }
	if q.Interface != "" {
		a, b := at(bom), at(eom)
		res.TotalRecv, res.TotalSent = b.rxIf-a.rxIf, b.tx-a.tx
		fa, fb := at(fullStart), at(fullEnd)
		res.FullRecv, res.FullSent = fb.rxIf-fa.rxIf, fb.tx-fa.tx
		for i := range res.Connections {
			c := &res.Connections[i]
			ca, cb := at(c.BOM), at(c.EOM)
			c.TotalRecv, c.TotalSent = cb.rxIf-ca.rxIf, cb.tx-ca.tx
		}
	}
	if fullEnd.After(fullStart) {
		res.FullTestBytes = at(fullEnd).test - at(fullStart).test
	}
	if q.Interval > 0 {
		for t := bom.Add(q.Offset); t.Before(eom) && len(res.Increments) < maxIncrements; t = t.Add(q.Interval) {
			e := t.Add(q.Interval)
			if e.After(eom) {
				e = eom
			}
			a, b := at(t), at(e)
			res.Increments = append(res.Increments, Increment{Start: t, End: e, TestBytes: b.test - a.test,
				TotalRecv: b.rxIf - a.rxIf, TotalSent: b.tx - a.tx})
		}
	}
	return res, nil
}

// interpolate estimates the counts at t from the samples around it.
func interpolate(s []sample, t time.Time) sample {
	if len(s) == 0 {
		return sample{at: t}
	}
	if !t.After(s[0].at) {
		return s[0]
	}
	for i := 1; i < len(s); i++ {
		if !t.After(s[i].at) {
			a, b := s[i-1], s[i]
			span := b.at.Sub(a.at)
			if span <= 0 {
				return b
			}
			f := float64(t.Sub(a.at)) / float64(span)
			lerp := func(x, y int64) int64 { return x + int64(f*float64(y-x)) }
			return sample{at: t, test: lerp(a.test, b.test), rxIf: lerp(a.rxIf, b.rxIf), tx: lerp(a.tx, b.tx)}
		}
	}
	return s[len(s)-1]
}

// zeros is an endless upload body.
type zeros struct {
	left int64
}

func (z *zeros) Read(b []byte) (int, error) {
	if z.left <= 0 {
		return 0, io.EOF
	}
	n := int64(len(b))
	if n > z.left {
		n = z.left
	}
	clear(b[:n])
	z.left -= n
	return int(n), nil
}

// oneTransfer is one connection: a GET read to its end, or a PUT of
// Length bytes, on a connection of its own.
func (p *Real) oneTransfer(ctx context.Context, q TransferRequest, ip net.IP, upload bool, c *conn) error {
	var mu sync.Mutex
	port := ""
	dialer := &net.Dialer{Timeout: 30 * time.Second}
	if q.Source != nil {
		dialer.LocalAddr = &net.TCPAddr{IP: q.Source}
	}
	tr := &http.Transport{
		DisableKeepAlives: true, DisableCompression: true, ForceAttemptHTTP2: false,
		TLSClientConfig:       &tls.Config{},
		ResponseHeaderTimeout: 60 * time.Second,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ = net.SplitHostPort(addr)
			mu.Lock()
			c.res.TCPOpenRequest = time.Now()
			mu.Unlock()
			nc, err := dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
			if err != nil {
				return nil, err
			}
			mu.Lock()
			// The kernel returns from connect() when the SYN-ACK has come
			// and its ACK left: the nearest a socket gets to TR-143's
			// TCPOpenResponseTime.
			c.res.TCPOpenResponse = time.Now()
			cc := &countConn{Conn: nc}
			c.cc.Store(cc)
			mu.Unlock()
			return cc, nil
		},
	}
	defer tr.CloseIdleConnections()
	method, body := http.MethodGet, io.Reader(nil)
	if upload {
		method, body = http.MethodPut, &zeros{left: q.Length}
	}
	trace := &httptrace.ClientTrace{
		// ROMTime: "the time at which the client sends the GET command".
		WroteHeaders: func() {
			mu.Lock()
			c.res.ROM = time.Now()
			mu.Unlock()
		},
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, q.URL, body)
	if err != nil {
		return fail(ErrInitConnection, err)
	}
	if upload {
		req.ContentLength = q.Length
	}
	resp, err := (&http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		if ctx.Err() != nil && !upload {
			return ctx.Err()
		}
		var dnsErr *net.DNSError
		switch {
		case errors.As(err, &dnsErr):
			return fail(ErrCannotResolve, err)
		case isUnreachable(err):
			return fail(ErrNoRoute, err)
		case c.cc.Load() == nil:
			return fail(ErrInitConnection, err)
		case ctx.Err() != nil:
			return ctx.Err()
		}
		return fail(ErrNoResponse, err)
	}
	defer resp.Body.Close()
	if upload {
		// The whole file has been sent and the server has answered: the
		// end of the transmission as the server saw it (the socket's send
		// buffer would make "the last byte written" early).
		mu.Lock()
		c.res.BOM = unixTime(c.cc.Load().firstTx.Load())
		if c.res.BOM.Before(c.res.ROM) || c.res.BOM.IsZero() {
			c.res.BOM = c.res.ROM
		}
		c.res.EOM = time.Now()
		c.res.TestBytes = c.cc.Load().tx.Load()
		mu.Unlock()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode/100 != 2 {
			return fail(ErrTransferFailed, fmt.Errorf("PUT answered %s", resp.Status))
		}
		return nil
	}
	if resp.StatusCode/100 != 2 {
		return fail(ErrTransferFailed, fmt.Errorf("GET answered %s", resp.Status))
	}
	_, err = io.Copy(io.Discard, resp.Body)
	mu.Lock()
	defer mu.Unlock()
	// BOMTime and EOMTime: the first and the last data packet received.
	c.res.BOM = unixTime(c.cc.Load().firstRx.Load())
	c.res.EOM = unixTime(c.cc.Load().lastRx.Load())
	c.res.TestBytes = c.cc.Load().rx.Load()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && q.Duration > 0 {
			return context.DeadlineExceeded // a time-based test ends here
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fail(ErrTransferFailed, err)
	}
	if resp.ContentLength >= 0 && c.res.TestBytes < resp.ContentLength {
		return fail(ErrIncorrectSize, fmt.Errorf("received fewer bytes than Content-Length %d", resp.ContentLength))
	}
	return nil
}

func (p *Real) Download(ctx context.Context, q TransferRequest) (TransferResult, error) {
	return p.transfer(ctx, q, false)
}

func (p *Real) Upload(ctx context.Context, q TransferRequest) (TransferResult, error) {
	if q.Length <= 0 {
		return TransferResult{}, fail(ErrIncorrectSize, errors.New("TestFileLength is 0"))
	}
	return p.transfer(ctx, q, true)
}
