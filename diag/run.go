package diag

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Limits on what one test may ask for, whatever the ACS writes: a test is
// bounded in packets, connections, results and time.
const (
	maxRepetitions = 1000
	maxTimeout     = time.Minute
	maxConnections = 8   // DownloadDiagnosticMaxConnections / UploadDiagnosticsMaxConnections
	maxIncrements  = 100 // ...MaxIncrementalResult
	maxEchoResults = 100 // UDPEchoDiagnosticsMaxResults
	maxUploadBytes = 1 << 30
	maxTestTime    = 15 * time.Minute
)

func (e *Engine) run(ctx context.Context, o *object, in map[string]string) result {
	ctx, cancel := context.WithTimeout(ctx, maxTestTime)
	defer cancel()
	var r result
	var err error
	switch o.kind {
	case kindPing:
		r, err = e.runPing(ctx, in)
	case kindTrace:
		r, err = e.runTrace(ctx, in)
	case kindDownload, kindUpload:
		r, err = e.runTransfer(ctx, in, o.kind == kindUpload)
	case kindEcho:
		r, err = e.runEcho(ctx, in)
	case kindSelect:
		r, err = e.runSelect(ctx, in)
	case kindLookup:
		r, err = e.runLookup(ctx, in)
	}
	if err != nil {
		var f *Failure
		if !errors.As(err, &f) {
			f = &Failure{State: ErrInternal, Err: err}
		}
		r.state, r.err = f.State, err
	}
	if r.state == "" {
		r.state = "Complete"
	}
	return r
}

func clampDur(msText string, def time.Duration) time.Duration {
	d := time.Duration(atoi(msText, int(def/time.Millisecond))) * time.Millisecond
	return min(d, maxTimeout)
}

func (e *Engine) runPing(ctx context.Context, in map[string]string) (result, error) {
	t, err := e.target(in, in["Host"])
	if err != nil {
		return result{}, err
	}
	res, err := e.cfg.Prober.Ping(ctx, PingRequest{Target: t, Count: min(atoi(in["NumberOfRepetitions"], 3), maxRepetitions),
		Timeout: clampDur(in["Timeout"], time.Second), Size: min(atoi(in["DataBlockSize"], 64), 65535)})
	if err != nil {
		return result{}, err
	}
	return result{values: pingValues(res)}, nil
}

func pingValues(res PingResult) map[string]string {
	lo, avg, hi := stats(res.RTTs)
	return map[string]string{
		"IPAddressUsed": ipString(res.Address),
		"SuccessCount":  strconv.Itoa(res.Success), "FailureCount": strconv.Itoa(res.Failure),
		"AverageResponseTime": ms(avg), "MinimumResponseTime": ms(lo), "MaximumResponseTime": ms(hi),
		"AverageResponseTimeDetailed": us(avg), "MinimumResponseTimeDetailed": us(lo), "MaximumResponseTimeDetailed": us(hi),
	}
}

func (e *Engine) runTrace(ctx context.Context, in map[string]string) (result, error) {
	t, err := e.target(in, in["Host"])
	if err != nil {
		return result{}, err
	}
	res, err := e.cfg.Prober.TraceRoute(ctx, TraceRequest{Target: t, Tries: min(atoi(in["NumberOfTries"], 3), 3),
		Timeout: clampDur(in["Timeout"], 5*time.Second), Size: min(atoi(in["DataBlockSize"], 38), 65535),
		MaxHops: min(atoi(in["MaxHopCount"], 30), 64)})
	if err != nil {
		return result{}, err
	}
	rows := make([]map[string]string, 0, len(res.Hops))
	for _, h := range res.Hops {
		rtts := make([]string, 0, len(h.RTTs))
		for _, d := range h.RTTs {
			rtts = append(rtts, ms(d))
		}
		if len(rtts) == 0 {
			rtts = append(rtts, "0") // RTTimes has at least one item
		}
		// Without a reverse DNS name, Host is the hop's address and
		// HostAddress stays empty (TR-181 RouteHops.{i}.HostAddress).
		rows = append(rows, map[string]string{"Host": ipString(h.Address), "HopHost": ipString(h.Address),
			"HostAddress": "", "ErrorCode": strconv.Itoa(h.ErrorCode), "RTTimes": strings.Join(rtts, ",")})
	}
	r := result{values: map[string]string{"IPAddressUsed": ipString(res.Address), "ResponseTime": "0"},
		tables: map[string][]map[string]string{"RouteHops": rows}}
	if res.Reached && len(res.Hops) > 0 {
		_, avg, _ := stats(res.Hops[len(res.Hops)-1].RTTs)
		r.values["ResponseTime"] = ms(avg)
	} else {
		r.state = ErrMaxHopCount
	}
	return r, nil
}

func (e *Engine) runTransfer(ctx context.Context, in map[string]string, upload bool) (result, error) {
	key := "DownloadURL"
	if upload {
		key = "UploadURL"
	}
	u, err := url.Parse(in[key])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// DownloadTransports / UploadTransports say HTTP only.
		return result{}, fail(ErrInitConnection, errors.New(key+": not an http or https URL"))
	}
	t, err := e.target(in, u.Hostname())
	if err != nil {
		return result{}, err
	}
	req := TransferRequest{Target: t, URL: u.String(), Connections: min(atoi(in["NumberOfConnections"], 1), maxConnections),
		Duration: time.Duration(atoi(in["TimeBasedTestDuration"], 0)) * time.Second,
		Interval: time.Duration(atoi(in["TimeBasedTestMeasurementInterval"], 0)) * time.Second,
		Offset:   time.Duration(atoi(in["TimeBasedTestMeasurementOffset"], 0)) * time.Second}
	if upload {
		n, _ := strconv.ParseInt(in["TestFileLength"], 10, 64)
		req.Length = min(max(n, 0), maxUploadBytes)
	}
	var res TransferResult
	if upload {
		res, err = e.cfg.Prober.Upload(ctx, req)
	} else {
		res, err = e.cfg.Prober.Download(ctx, req)
	}
	if err != nil {
		return result{}, err
	}
	return transferResult(res, upload, in["EnablePerConnectionResults"] == "true"), nil
}

func transferResult(res TransferResult, upload, perConn bool) result {
	test := "TestBytesReceived"
	if upload {
		test = "TestBytesSent"
	}
	var rom, bom, eom, tcpReq, tcpResp time.Time
	var bytes int64
	fullStart, fullEnd := time.Time{}, time.Time{}
	rows := make([]map[string]string, 0, len(res.Connections))
	for i, c := range res.Connections {
		if i == 0 || c.ROM.Before(rom) {
			rom = c.ROM
		}
		if i == 0 || c.BOM.Before(bom) {
			bom = c.BOM
		}
		if c.EOM.After(eom) {
			eom = c.EOM
		}
		if i == 0 || c.TCPOpenRequest.Before(tcpReq) {
			tcpReq = c.TCPOpenRequest
		}
		if i == 0 || c.TCPOpenResponse.Before(tcpResp) {
			tcpResp = c.TCPOpenResponse
		}
		// Full loading: every connection transferring at once, from the
		// latest BOM to the earliest EOM.
		if i == 0 || c.BOM.After(fullStart) {
			fullStart = c.BOM
		}
		if i == 0 || c.EOM.Before(fullEnd) {
			fullEnd = c.EOM
		}
		bytes += c.TestBytes
		rows = append(rows, map[string]string{"ROMTime": stamp(c.ROM), "BOMTime": stamp(c.BOM), "EOMTime": stamp(c.EOM),
			test: strconv.FormatInt(c.TestBytes, 10), "TotalBytesReceived": strconv.FormatInt(c.TotalRecv, 10),
			"TotalBytesSent": strconv.FormatInt(c.TotalSent, 10), "TCPOpenRequestTime": stamp(c.TCPOpenRequest),
			"TCPOpenResponseTime": stamp(c.TCPOpenResponse)})
	}
	period := fullEnd.Sub(fullStart)
	if period < 0 {
		period = 0
	}
	full := res.FullTestBytes
	v := map[string]string{
		"IPAddressUsed": ipString(res.Address), "ROMTime": stamp(rom), "BOMTime": stamp(bom), "EOMTime": stamp(eom),
		test: strconv.FormatInt(bytes, 10), "TotalBytesReceived": strconv.FormatInt(max(res.TotalRecv, 0), 10),
		"TotalBytesSent": strconv.FormatInt(max(res.TotalSent, 0), 10), "TCPOpenRequestTime": stamp(tcpReq),
		"TCPOpenResponseTime": stamp(tcpResp), "PeriodOfFullLoading": us(period),
		test + "UnderFullLoading":            strconv.FormatInt(full, 10),
		"TotalBytesReceivedUnderFullLoading": strconv.FormatInt(max(res.FullRecv, 0), 10),
		"TotalBytesSentUnderFullLoading":     strconv.FormatInt(max(res.FullSent, 0), 10),
	}
	inc := make([]map[string]string, 0, len(res.Increments))
	for _, x := range res.Increments {
		inc = append(inc, map[string]string{"StartTime": stamp(x.Start), "EndTime": stamp(x.End), test: strconv.FormatInt(x.TestBytes, 10),
			"TotalBytesReceived": strconv.FormatInt(max(x.TotalRecv, 0), 10), "TotalBytesSent": strconv.FormatInt(max(x.TotalSent, 0), 10)})
	}
	r := result{values: v, tables: map[string][]map[string]string{"IncrementalResult": inc}}
	if perConn {
		r.tables["PerConnectionResult"] = rows
	} else {
		r.tables["PerConnectionResult"] = nil
	}
	return r
}

func (e *Engine) echoRequest(in map[string]string, host string, port int) (EchoRequest, error) {
	t, err := e.target(in, host)
	if err != nil {
		return EchoRequest{}, err
	}
	return EchoRequest{Target: t, Port: port, Count: min(atoi(in["NumberOfRepetitions"], 3), maxRepetitions),
		Timeout: clampDur(in["Timeout"], time.Second), Size: min(max(atoi(in["DataBlockSize"], 24), echoHeader), 65507),
		Interval:   clampDur(in["InterTransmissionTime"], time.Second),
		Individual: in["EnableIndividualPacketResults"] == "true", MaxResults: maxEchoResults}, nil
}

func (e *Engine) runEcho(ctx context.Context, in map[string]string) (result, error) {
	req, err := e.echoRequest(in, in["Host"], atoi(in["Port"], 7))
	if err != nil {
		return result{}, err
	}
	res, err := e.cfg.Prober.UDPEcho(ctx, req)
	if err != nil {
		return result{}, err
	}
	lo, avg, hi := stats(res.RTTs)
	v := map[string]string{"IPAddressUsed": ipString(res.Address), "SuccessCount": strconv.Itoa(res.Success),
		"FailureCount": strconv.Itoa(res.Failure), "AverageResponseTime": us(avg), "MinimumResponseTime": us(lo),
		"MaximumResponseTime": us(hi)}
	rows := make([]map[string]string, 0, len(res.Packets))
	for _, p := range res.Packets {
		rows = append(rows, map[string]string{"PacketSuccess": strconv.FormatBool(p.Success), "PacketSendTime": stamp(p.Sent),
			"PacketReceiveTime": stamp(p.Received), "TestGenSN": u32(p.GenSN), "TestRespSN": u32(p.RespSN),
			"TestRespRcvTimeStamp": u32(p.RespRecvTimestamp), "TestRespReplyTimeStamp": u32(p.RespReplyTime),
			"TestRespReplyFailureCount": u32(p.RespFailureCount)})
	}
	return result{values: v, tables: map[string][]map[string]string{"IndividualPacketResult": rows}}, nil
}

func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

// runSelect measures each host of HostList with ICMP or UDP echo and
// names the fastest (TR-143 ServerSelectionDiagnostics).
func (e *Engine) runSelect(ctx context.Context, in map[string]string) (result, error) {
	var hosts []string
	for _, h := range strings.Split(in["HostList"], ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return result{}, fail(ErrCannotResolve, errors.New("HostList is empty"))
	}
	type score struct {
		host     string
		addr     net.IP
		rtts     []time.Duration
		resolved bool
	}
	var best *score
	resolvedAny := false
	for _, h := range hosts {
		var sc score
		sc.host = h
		if in["Protocol"] == "UDP Echo" {
			host, port := h, 7
			if hh, p, err := net.SplitHostPort(h); err == nil {
				host, port = hh, atoi(p, 7)
			}
			req, err := e.echoRequest(in, host, port)
			if err != nil {
				return result{}, err
			}
			req.Individual, req.Interval = false, 0
			res, err := e.cfg.Prober.UDPEcho(ctx, req)
			if err == nil {
				sc.addr, sc.rtts, sc.resolved = res.Address, res.RTTs, true
			}
		} else {
			t, err := e.target(in, h)
			if err != nil {
				return result{}, err
			}
			res, err := e.cfg.Prober.Ping(ctx, PingRequest{Target: t, Count: min(atoi(in["NumberOfRepetitions"], 3), maxRepetitions),
				Timeout: clampDur(in["Timeout"], time.Second), Size: 64})
			if err == nil {
				sc.addr, sc.rtts, sc.resolved = res.Address, res.RTTs, true
			}
		}
		if ctx.Err() != nil {
			return result{}, ctx.Err()
		}
		resolvedAny = resolvedAny || sc.resolved
		if len(sc.rtts) == 0 {
			continue
		}
		if best == nil {
			best = &sc
			continue
		}
		if _, a, _ := stats(sc.rtts); a < func() time.Duration { _, b, _ := stats(best.rtts); return b }() {
			best = &sc
		}
	}
	if best == nil {
		if !resolvedAny {
			return result{}, fail(ErrCannotResolve, errors.New("no host of HostList resolved"))
		}
		return result{}, fail(ErrOther, errors.New("no host of HostList answered"))
	}
	lo, avg, hi := stats(best.rtts)
	return result{values: map[string]string{"FastestHost": best.host, "MinimumResponseTime": us(lo), "AverageResponseTime": us(avg),
		"MaximumResponseTime": us(hi), "IPAddressUsed": ipString(best.addr)}}, nil
}

func (e *Engine) runLookup(ctx context.Context, in map[string]string) (result, error) {
	req := LookupRequest{HostName: in["HostName"], Server: in["DNSServer"], Timeout: clampDur(in["Timeout"], 5*time.Second),
		Count: min(atoi(in["NumberOfRepetitions"], 1), maxRepetitions)}
	if ref := in["Interface"]; ref != "" {
		t, err := e.target(in, "")
		if err != nil {
			return result{}, err
		}
		req.Interface, req.Source = t.Interface, t.Source
	}
	res, err := e.cfg.Prober.NSLookup(ctx, req)
	if err != nil {
		return result{}, err
	}
	ok := 0
	rows := make([]map[string]string, 0, len(res.Results))
	for _, l := range res.Results {
		if l.Status == "Success" {
			ok++
		}
		answer := "None"
		if l.Answered {
			answer = "NonAuthoritative"
			if l.Authoritative {
				answer = "Authoritative"
			}
		}
		addrs := make([]string, 0, len(l.Addresses))
		for _, a := range l.Addresses {
			if len(addrs) < 10 { // IPAddresses holds at most 10
				addrs = append(addrs, a.String())
			}
		}
		rows = append(rows, map[string]string{"Status": l.Status, "AnswerType": answer, "HostNameReturned": l.HostName,
			"IPAddresses": strings.Join(addrs, ","), "DNSServerIP": ipString(l.Server), "ResponseTime": ms(l.RTT)})
	}
	return result{values: map[string]string{"SuccessCount": strconv.Itoa(ok)},
		tables: map[string][]map[string]string{"Result": rows}}, nil
}
