package cwmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/cwmp-agent/cwmp-agent/soap"
)

// session is one CWMP session (TR-069 3.7.1). It lives on the agent's
// goroutine, which owns the agent's state.
type session struct {
	a       *Agent
	x       *exchanger
	ns      string
	version soap.Version
	hold    bool
	idBase  uint32
	idSeq   uint32
	// buf holds the message being sent: each is encoded once the last is
	// written, into the same bytes (released when the session ends).
	buf *[]byte
}

// encodeBuffers are the sessions' message buffers, reused: a fleet encodes
// thousands of messages a second. Buffers grown past a big message are
// dropped rather than kept.
var encodeBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxPooledBuffer = 64 << 10

func (s *session) release() {
	if s.buf != nil && cap(*s.buf) <= maxPooledBuffer {
		encodeBuffers.Put(s.buf)
	}
	s.buf = nil
}

func (s *session) nextID() string {
	s.idSeq++
	return strconv.FormatUint(uint64(s.idBase)<<8+uint64(s.idSeq), 10)
}

// cpeRequest is a request of the CPE to the ACS with what to do on success.
type cpeRequest struct {
	msg  soap.Message
	done func(resp soap.Message)
	// skip, when set, is asked just before sending: true drops the
	// request unsent (done(nil)). sent is told that it goes out.
	skip func() bool
	sent func()
}

// session runs one session and records its outcome.
func (a *Agent) session(ctx context.Context) {
	start := a.clock.Now()
	acsURL := a.param("ManagementServer.URL")
	if acsURL != "" {
		a.ensureBootstrap(acsURL)
	}
	var n notified
	if a.cfg.Notifier != nil {
		n.names, n.token = a.cfg.Notifier.Collect()
	}
	if len(n.names) == 0 && a.dropValueChange() {
		return // it was all: nothing changed that is not reported already
	}
	events, covered := informEvents(a.st.Events)
	bootstrap := false
	for _, e := range events {
		if e.EventCode == string(EventBootstrap) {
			bootstrap = true
		}
	}
	a.curInflight = covered
	retries := a.retryCount
	// Only transfers finished before the Inform carry their TransferComplete
	// in this session: their 7 TRANSFER COMPLETE is in its events.
	finished := map[uint64]bool{}
	for _, t := range a.st.Transfers {
		if t.State == TransferCompleted {
			finished[t.ID] = true
		}
	}

	// The same for DU state change reports.
	a.sessionDU = map[uint64]bool{}
	for _, c := range a.st.DUCompletions {
		a.sessionDU[c.ID] = true
	}
	a.sessionOwn = map[uint64]bool{}
	for _, r := range a.st.OwnRequests {
		a.sessionOwn[r.ID] = true
	}

	err := a.runSession(ctx, acsURL, events, covered, finished, bootstrap, uint32(retries), n)

	a.curInflight = nil
	a.sessions.Add(1)
	now := a.clock.Now()
	// A session cut short because the agent stops is no failure: its
	// events stay queued for the next start, and no back-off is counted.
	interrupted := err != nil && stopping(ctx)
	if interrupted {
		a.log.Info("session interrupted: the agent is stopping", "err", err)
	} else if err != nil {
		a.failures.Add(1)
		// 6 CONNECTION REQUEST is not retried: the ACS asks again if it
		// still wants the session.
		kept := a.st.Events[:0]
		for _, e := range a.st.Events {
			if covered[e.Seq] && ruleOf(e.Code).dropOnFailure {
				continue
			}
			kept = append(kept, e)
		}
		a.st.Events = kept
		n := a.retryCount + 1
		wait := retryWait(n, a.cfg.RetryMinimumWait, a.cfg.RetryIntervalMultiplier, a.rand())
		var he *HTTPError
		if errors.As(err, &he) && he.RetryAfter > wait {
			// Not before the ACS's Retry-After, and then spread over
			// the back-off window: CPEs an overloaded ACS turned away
			// together must not all come back in the same second (an
			// ACS answering 503 with a fixed Retry-After, as GenieACS
			// does, would turn them away again).
			wait = he.RetryAfter + time.Duration(float64(wait)*a.rand())
		}
		a.setRetry(n, now.Add(wait))
		a.log.Warn("session failed", "err", err, "retry_count", n, "retry_in", wait.Round(time.Millisecond))
	} else {
		a.setRetry(0, time.Time{})
	}
	a.save()
	a.kickTransfers()
	if a.cfg.AfterSession != nil {
		a.cfg.AfterSession()
	}
	if a.cfg.OnSession != nil && !interrupted {
		names := make([]string, len(events))
		for i, e := range events {
			names[i] = e.EventCode
		}
		a.cfg.OnSession(SessionResult{Start: start, Duration: a.clock.Now().Sub(start), Events: names, Err: err})
	}
}

// notified is what the notifier gave the session to report.
type notified struct {
	names []string
	token uint64
}

// dropValueChange removes queued "4 VALUE CHANGE" events when the notifier
// has nothing to report (TR-069 3.7.1.5: the event says that parameters
// changed; an Inform that already reported the change, or a change undone,
// leaves nothing to say). It reports whether the queue is empty then, so
// that no session starts for nothing.
func (a *Agent) dropValueChange() bool {
	kept := a.st.Events[:0]
	dropped := false
	for _, e := range a.st.Events {
		if e.Code == EventValueChange {
			dropped = true
			continue
		}
		kept = append(kept, e)
	}
	a.st.Events = kept
	if dropped {
		a.save()
	}
	return len(a.st.Events) == 0
}

func (a *Agent) runSession(ctx context.Context, acsURL string, events []soap.EventStruct, covered, finished map[uint64]bool, bootstrap bool, retries uint32, n notified) error {
	if acsURL == "" {
		return ErrNoACSURL
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.SessionTimeout)
	defer cancel()
	// One connection for the session, closed with it: nothing is kept open
	// between sessions (an idle CPE holds no socket, a fleet of them none).
	sc := &sessionConn{tls: a.tls, timeout: 15 * time.Second, local: a.cfg.Virtual.LocalAddr}
	defer sc.close()
	x, err := newExchanger(sc, acsURL, a.param("ManagementServer.Username"), a.param("ManagementServer.Password"), a.cfg.ResponseTimeout)
	if err != nil {
		return err
	}
	x.userAgent = a.cfg.UserAgent
	if coding := contentCoding(a.param("ManagementServer.HTTPCompression")); coding != "" && !a.noCompression[acsURL] {
		x.compress = coding
		x.refused = func() {
			a.log.Warn("the ACS refused a compressed request (415): compression off for this ACS", "coding", coding)
			if a.noCompression == nil {
				a.noCompression = map[string]bool{}
			}
			a.noCompression[acsURL] = true
		}
	}
	if a.cfg.ConnReq != nil {
		a.cfg.ConnReq.Refresh(acsURL)
	}
	s := &session{a: a, x: x, ns: a.cfg.Version.Namespace(), version: a.cfg.Version, idBase: rand.Uint32() >> 8}
	reports, token := n.names, n.token
	inform := a.buildInform(events, reports, retries)
	a.log.Info("session", "session", "start", "url", x.url.Redacted(), "event", eventList(inform.Event))

	env := &soap.Envelope{NS: s.ns, ID: s.nextID(), Body: inform}
	if s.version >= soap.V13 {
		env.SessionTimeout = uint32(a.cfg.ResponseTimeout / time.Second)
	}
	if s.version >= soap.V14 {
		env.SupportedCWMPVersions = soap.SupportedVersions
	}
	defer s.release()
	resp, err := x.post(ctx, s.encodeEnvelope(env))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(resp)) == 0 {
		return fmt.Errorf("%w: empty answer to the Inform", errProtocol)
	}
	renv, err := soap.DecodeBytes(resp)
	if err != nil {
		return fmt.Errorf("%w: answer to the Inform: %w", errProtocol, err)
	}
	switch b := renv.Body.(type) {
	case *soap.InformResponse:
	case *soap.Fault:
		return fmt.Errorf("cwmp: ACS refused the Inform: %w", b)
	default:
		return fmt.Errorf("%w: %s in answer to the Inform", errProtocol, renv.Body.Method())
	}
	s.adoptVersion(renv)
	s.hold = renv.HoldRequests
	a.informAccepted(covered, len(reports) > 0, token, bootstrap, acsURL)
	return s.loop(ctx, a.cpeRequests(finished))
}

// adoptVersion follows the ACS: its namespace if it answered in another, and
// its UseCWMPVersion (CWMP 1.4 negotiation).
func (s *session) adoptVersion(env *soap.Envelope) {
	if v, ok := soap.VersionOf(env.NS); ok && env.NS != s.ns {
		s.ns, s.version = env.NS, v
	}
	if env.UseCWMPVersion != "" {
		if v, err := soap.ParseVersion(env.UseCWMPVersion); err == nil && v <= s.a.cfg.Version {
			s.version = v
		}
	}
}

// loop runs the session after the InformResponse: the CPE's own requests
// while HoldRequests is not set, then the empty POST and the ACS's requests,
// until the ACS answers with an empty body and nothing is left to send
// (TR-069 3.7.1.4).
func (s *session) loop(ctx context.Context, pending []cpeRequest) error {
	var out []byte // our answer to the ACS's last request
	for {
		var body []byte
		var req *cpeRequest
		var reqID string
		switch {
		case out != nil:
			body, out = out, nil
		case !s.hold && len(pending) > 0 && pending[0].skip != nil && pending[0].skip():
			pending[0].done(nil) // not for this ACS
			pending = pending[1:]
			continue
		case !s.hold && len(pending) > 0:
			req = &pending[0]
			if req.sent != nil {
				req.sent()
			}
			reqID = s.nextID()
			body = s.encode(reqID, req.msg)
		}
		resp, err := s.x.post(ctx, body)
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(resp)) == 0 {
			if req != nil {
				return fmt.Errorf("%w: empty answer to %s", errProtocol, req.msg.Method())
			}
			s.hold = false
			if len(pending) == 0 {
				return nil // both sides are done
			}
			continue
		}
		env, derr := soap.DecodeBytes(resp)
		if req != nil {
			if derr != nil {
				return fmt.Errorf("%w: answer to %s: %w", errProtocol, req.msg.Method(), derr)
			}
			pending = pending[1:]
			s.hold = env.HoldRequests
			if f, ok := env.Body.(*soap.Fault); ok {
				// 8005 asks to try again: the request stays queued for the
				// next session. Any other fault is the ACS's answer (8000:
				// it does not know the method, as GenieACS says of
				// RequestDownload): asking again would get the same, so the
				// request is done with. The session goes on either way.
				s.a.log.Warn("ACS fault to our request", "rpc", req.msg.Method(), "err", f)
				if f.Code != 8005 {
					req.done(f)
				}
				continue
			}
			if env.Body.Method() != req.msg.Method()+"Response" {
				return fmt.Errorf("%w: %s in answer to %s", errProtocol, env.Body.Method(), req.msg.Method())
			}
			req.done(env.Body)
			continue
		}
		// An ACS request.
		if derr != nil {
			if env == nil {
				return fmt.Errorf("%w: %w", errProtocol, derr)
			}
			if errors.Is(derr, soap.ErrEmptyBody) {
				s.hold = false
				if len(pending) == 0 {
					return nil
				}
				continue
			}
			s.a.log.Warn("cannot decode an ACS request", "err", derr)
			f := faultFor(derr, s.version)
			s.a.observeRPC("", f)
			out = s.encode(env.ID, f)
			continue
		}
		s.hold = env.HoldRequests
		if f, ok := env.Body.(*soap.Fault); ok {
			return fmt.Errorf("%w: ACS sent a fault with no request pending: %v", errProtocol, f)
		}
		msg, herr := s.a.serve(ctx, s, env.Body)
		if herr != nil {
			msg = faultFor(herr, s.version)
			s.a.log.Info("rpc", "rpc", env.Body.Method(), "fault", msg.(*soap.Fault).Code, "err", herr)
		} else {
			s.a.log.Info("rpc", "rpc", env.Body.Method())
		}
		s.a.observeRPC(env.Body.Method(), msg)
		out = s.encode(env.ID, msg)
	}
}

// observeRPC tells OnRPC of an answered ACS request.
func (a *Agent) observeRPC(method string, answer soap.Message) {
	if a.cfg.OnRPC == nil {
		return
	}
	code := 0
	if f, ok := answer.(*soap.Fault); ok {
		code = f.Code
	}
	a.cfg.OnRPC(method, code)
}

func (s *session) encode(id string, m soap.Message) []byte {
	return s.encodeEnvelope(&soap.Envelope{NS: s.ns, ID: id, Body: m})
}

// encodeEnvelope encodes into the session's buffer: the bytes are valid
// until the next message is encoded.
func (s *session) encodeEnvelope(env *soap.Envelope) []byte {
	if s.buf == nil {
		s.buf = encodeBuffers.Get().(*[]byte)
	}
	*s.buf = env.AppendTo((*s.buf)[:0])
	return *s.buf
}

// buildInform assembles the Inform: DeviceId, events, the forced parameters
// of the root in use and every reported change, each name once.
func (a *Agent) buildInform(events []soap.EventStruct, reports []string, retries uint32) *soap.Inform {
	inf := &soap.Inform{
		DeviceId: soap.DeviceID{
			Manufacturer: a.param("DeviceInfo.Manufacturer"),
			OUI:          a.param("DeviceInfo.ManufacturerOUI"),
			ProductClass: a.param("DeviceInfo.ProductClass"),
			SerialNumber: a.param("DeviceInfo.SerialNumber"),
		},
		Event:        events,
		MaxEnvelopes: 1,
		CurrentTime:  a.clock.Now().UTC().Truncate(time.Second),
		RetryCount:   retries,
	}
	nm := a.namer()
	forced, _ := a.dm.ForcedValues() // an unreadable computed value leaves it out
	inf.ParameterList = make([]soap.ParameterValue, 0, len(forced)+len(reports))
	for _, v := range forced {
		inf.ParameterList = append(inf.ParameterList, soap.ParameterValue{Name: nm.name(v.Name), Value: v.Value, Type: v.Type.XSD()})
	}
	var seen map[string]bool // the reported names, beyond the forced ones
	add := func(n string) bool {
		vs, err := a.dm.GetValues([]string{n})
		if err != nil || len(vs) != 1 {
			return false // deleted since it changed
		}
		if seen == nil {
			seen = make(map[string]bool, len(forced)+len(reports))
			for _, v := range forced {
				seen[v.Name] = true
			}
		}
		if !seen[n] {
			seen[n] = true
			inf.ParameterList = append(inf.ParameterList, soap.ParameterValue{Name: nm.name(vs[0].Name), Value: vs[0].Value, Type: vs[0].Type.XSD()})
		}
		return true
	}
	hasChange := false
	for _, r := range reports {
		if add(r) {
			hasChange = true
		}
	}
	if hasChange {
		present := false
		for _, e := range inf.Event {
			if e.EventCode == string(EventValueChange) {
				present = true
			}
		}
		if !present && len(inf.Event) < MaxInformEvents {
			inf.Event = append(inf.Event, soap.EventStruct{EventCode: string(EventValueChange)})
		}
	} else {
		// What changed is gone (deleted since): no 4 VALUE CHANGE.
		kept := make([]soap.EventStruct, 0, len(inf.Event))
		for _, e := range inf.Event {
			if e.EventCode != string(EventValueChange) {
				kept = append(kept, e)
			}
		}
		inf.Event = kept
	}
	return inf
}

// informAccepted applies the InformResponse: the events it delivers are
// gone, the bootstrap marker follows the URL, the notifier forgets what was
// reported.
func (a *Agent) informAccepted(covered map[uint64]bool, reported bool, token uint64, bootstrap bool, acsURL string) {
	kept := a.st.Events[:0]
	for _, e := range a.st.Events {
		if covered[e.Seq] && !ruleOf(e.Code).onTransferComplete {
			continue
		}
		kept = append(kept, e)
	}
	a.st.Events = kept
	if bootstrap {
		a.st.Bootstrapped, a.st.BootstrapURL = true, acsURL
	}
	a.save()
	if a.cfg.Notifier != nil && reported {
		a.cfg.Notifier.Delivered(token)
	}
}

// cpeRequests lists what the CPE asks of the ACS after the InformResponse:
// a TransferComplete for each finished transfer, GetRPCMethods when asked.
func (a *Agent) cpeRequests(finished map[uint64]bool) []cpeRequest {
	if a.heartbeatOnly {
		return nil
	}
	var out []cpeRequest
	for _, t := range a.st.Transfers {
		if t.State != TransferCompleted || !finished[t.ID] {
			continue
		}
		id := t.ID
		out = append(out, cpeRequest{
			msg:  &soap.TransferComplete{CommandKey: t.CommandKey, FaultStruct: t.Fault, StartTime: t.StartTime, CompleteTime: t.CompleteTime},
			done: func(soap.Message) { a.transferDelivered(id) },
		})
	}
	out = append(out, a.duRequests(a.sessionDU)...)
	own := a.ownRequests()
	if len(own) > 0 && a.st.RPCMethods == nil {
		// The ACS's methods first: the device's requests go only to an
		// ACS that lists them (GenieACS 1.2 lists Inform, GetRPCMethods and
		// TransferComplete, and a RequestDownload breaks its session).
		a.askRPC = true
	}
	if a.askRPC {
		out = append(out, cpeRequest{msg: &soap.GetRPCMethods{}, done: func(m soap.Message) {
			a.askRPC = false
			if r, ok := m.(*soap.GetRPCMethodsResponse); ok {
				a.st.RPCMethods = r.MethodList
			} else if a.st.RPCMethods == nil {
				a.st.RPCMethods = []string{} // it would not say: asked, not known
			}
			a.save()
		}})
	}
	out = append(out, own...)
	return out
}

func eventList(evs []soap.EventStruct) string {
	var b bytes.Buffer
	for i, e := range evs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.EventCode)
		if e.CommandKey != "" {
			b.WriteString("(" + e.CommandKey + ")")
		}
	}
	return b.String()
}

// stopping reports whether ctx, the agent's own context, is done or past
// its deadline: a socket deadline taken from that deadline can fire just
// before the context's timer marks it done, and a session cut that way is
// as interrupted as one cut by cancellation.
func stopping(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

// heartbeatSession runs a 14 HEARTBEAT session (TR-069 Amendment 6 Annex
// O): its Inform carries that event alone, and the CPE makes no request of
// its own in it (TransferComplete and the others wait for the next
// session). A failed heartbeat is not retried: the next interval brings
// another, and the events queued stay for their own session.
func (a *Agent) heartbeatSession(ctx context.Context) {
	acsURL := a.param("ManagementServer.URL")
	if acsURL == "" || !a.st.Bootstrapped {
		return // the first contact is the BOOTSTRAP session's
	}
	a.heartbeatOnly = true
	a.sessionDU = nil
	defer func() { a.heartbeatOnly = false }()
	err := a.runSession(ctx, acsURL, []soap.EventStruct{{EventCode: string(EventHeartbeat)}}, map[uint64]bool{}, map[uint64]bool{},
		false, uint32(a.retryCount), notified{})
	a.sessions.Add(1)
	if err != nil && !stopping(ctx) {
		a.failures.Add(1)
		a.log.Warn("heartbeat session failed", "err", err)
	}
	if a.cfg.OnSession != nil {
		a.cfg.OnSession(SessionResult{Start: a.clock.Now(), Events: []string{string(EventHeartbeat)}, Err: err})
	}
	if a.cfg.AfterSession != nil {
		a.cfg.AfterSession()
	}
}
