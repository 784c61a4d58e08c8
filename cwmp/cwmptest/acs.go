// Package cwmptest is an in-repository ACS for tests, the demo and fleet
// benchmarks, in the spirit of net/http/httptest: it runs on loopback,
// records every message, and can be scripted to queue any RPC for a device,
// challenge with Basic or Digest, set cookies, redirect, fault, drop the
// connection or answer slowly. It follows what GenieACS does on the wire:
// a session cookie, InformResponse in the CPE's namespace, 204 with
// Connection: close at the end.
package cwmptest

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cwmp-agent/cwmp-agent/internal/digest"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// Auth is how the ACS authenticates CPEs.
type Auth int

const (
	AuthNone Auth = iota
	AuthBasic
	AuthDigest
)

// Call is an RPC queued for a device, and later its answer.
type Call struct {
	Request  soap.Message
	Response soap.Message // the CPE's answer (a *soap.Fault for a fault)
	done     chan struct{}
}

// Wait blocks until the CPE answered the call or ctx ends.
func (c *Call) Wait(ctx context.Context) (soap.Message, error) {
	select {
	case <-c.done:
		if f, ok := c.Response.(*soap.Fault); ok {
			return f, f
		}
		return c.Response, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Exchange is one HTTP round trip as the ACS saw it.
type Exchange struct {
	Time    time.Time
	Session string
	Device  string
	In      []byte         // the POST body (nil: empty POST)
	InEnv   *soap.Envelope // decoded, when it was an envelope
	Out     []byte         // the response body
	Status  int
	Header  http.Header // the request headers
}

// Device is what the ACS knows of one CPE.
type Device struct {
	ID        string // OUI-ProductClass-SerialNumber (OUI-SerialNumber without class)
	Informs   []*soap.Inform
	Sessions  int // completed sessions (ended with 204)
	Transfers []*soap.TransferComplete
	// DUChanges are the DUStateChangeComplete and
	// AutonomousDUStateChangeComplete messages received.
	DUChanges []soap.Message
	// Requests are the RequestDownload and AutonomousTransferComplete
	// messages received.
	Requests []soap.Message
	Params   map[string]string // latest values seen in Informs and answers
	// Bootstrapped: an Inform carried 0 BOOTSTRAP (kept in lean mode too).
	Bootstrapped bool
	queue        []*Call
	lastInform   time.Time
}

// Summary is what the ACS saw of each device, for a test ACS run as a
// program (cwmp-fleet test-acs --summary).
type Summary struct {
	Devices  int             `json:"devices"`
	Sessions int             `json:"sessions"`
	CPEs     []DeviceSummary `json:"cpes"`
}

// DeviceSummary is one device in a Summary.
type DeviceSummary struct {
	ID                   string `json:"id"`
	Sessions             int    `json:"sessions"`
	Bootstrapped         bool   `json:"bootstrapped"`
	ConnectionRequestURL string `json:"connection_request_url,omitempty"`
}

// Summary lists the devices seen, by ID.
func (a *ACS) Summary() Summary {
	a.mu.Lock()
	defer a.mu.Unlock()
	var s Summary
	for _, d := range a.devices {
		url := ""
		for k, v := range d.Params {
			if strings.HasSuffix(k, ".ManagementServer.ConnectionRequestURL") {
				url = v
			}
		}
		s.CPEs = append(s.CPEs, DeviceSummary{ID: d.ID, Sessions: d.Sessions, Bootstrapped: d.Bootstrapped, ConnectionRequestURL: url})
		s.Sessions += d.Sessions
	}
	s.Devices = len(s.CPEs)
	sort.Slice(s.CPEs, func(i, j int) bool { return s.CPEs[i].ID < s.CPEs[j].ID })
	return s
}

// LastInform returns the device's latest Inform.
func (d *Device) LastInform() *soap.Inform {
	if len(d.Informs) == 0 {
		return nil
	}
	return d.Informs[len(d.Informs)-1]
}

type session struct {
	id      string
	dev     *Device
	ns      string
	authed  bool
	pending *Call
	nextID  int
}

// ACS is the test ACS. Its exported fields may be changed between sessions;
// use the methods while sessions run.
type ACS struct {
	URL  string // the ACS URL to give CPEs
	Path string

	srv *http.Server
	ln  net.Listener

	// Compression (guarded by mu).
	refuseCompressed, gzipResponses bool
	compressedIn                    int
	faultRequests                   map[string]int // CPE request method -> ACS fault code
	methods                         []string       // GetRPCMethods answer; nil: the default

	mu       sync.Mutex // guards everything below
	auth     Auth
	user     string
	pass     string
	dig      digest.Server
	sessions map[string]*session
	devices  map[string]*Device
	log      []Exchange
	record   bool
	lean     bool
	changed  chan struct{}
	// scripted behaviour
	failInforms  int
	failStatus   int
	retryAfter   string // Retry-After of the failed Informs' answers
	faultInforms int
	faultCode    int
	dropNext     int
	delay        time.Duration
	redirectNext int
	hold         bool
	answerNS     string
	useVersion   string
	extraCookies []*http.Cookie
	cookieSeen   map[string]bool
	anyQueue     []*Call
	onInform     func(*Device, *soap.Inform)
	badHeaders   []string
}

// New starts an ACS on a loopback port; stop it with Close.
func New() (*ACS, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return Serve(ln), nil
}

// Serve runs an ACS on a listener.
func Serve(ln net.Listener) *ACS {
	a := &ACS{
		Path:       "/acs",
		ln:         ln,
		sessions:   map[string]*session{},
		devices:    map[string]*Device{},
		record:     true,
		changed:    make(chan struct{}),
		cookieSeen: map[string]bool{},
	}
	a.dig.Realm = "cwmptest"
	a.URL = "http://" + ln.Addr().String() + a.Path
	mux := http.NewServeMux()
	mux.HandleFunc("/", a.serve)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go a.srv.Serve(ln)
	return a
}

// Close stops the ACS.
func (a *ACS) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return a.srv.Shutdown(ctx)
}

// SetAuth makes the ACS challenge CPEs.
func (a *ACS) SetAuth(auth Auth, user, pass string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.auth, a.user, a.pass = auth, user, pass
}

// FailInforms answers the next n Informs with an HTTP status.
func (a *ACS) FailInforms(n, status int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failInforms, a.failStatus, a.retryAfter = n, status, ""
}

// BusyInforms answers the next n Informs with 503 and a Retry-After of
// that many seconds, as GenieACS does above its concurrency limit.
func (a *ACS) BusyInforms(n int, retryAfter int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failInforms, a.failStatus, a.retryAfter = n, http.StatusServiceUnavailable, strconv.Itoa(retryAfter)
}

// FaultInforms answers the next n Informs with a SOAP Fault (e.g. 8002).
func (a *ACS) FaultInforms(n, code int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.faultInforms, a.faultCode = n, code
}

// DropNext closes the connection instead of answering the next n POSTs.
func (a *ACS) DropNext(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dropNext = n
}

// Delay makes every answer wait d.
func (a *ACS) Delay(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.delay = d
}

// RedirectNext answers the next n POSTs to the main path with a 307 to
// Path + "/moved" (where the ACS serves too).
func (a *ACS) RedirectNext(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.redirectNext = n
}

// HoldRequests sets HoldRequests in InformResponses.
func (a *ACS) HoldRequests(on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.hold = on
}

// AnswerIn makes InformResponses use namespace ns ("" follows the CPE) and
// carry UseCWMPVersion v ("" none).
func (a *ACS) AnswerIn(ns, v string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.answerNS, a.useVersion = ns, v
}

// SetCookie adds a cookie the ACS sets at the start of each session and
// expects back on every later POST.
func (a *ACS) SetCookie(c *http.Cookie) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.extraCookies = append(a.extraCookies, c)
}

// CookieReturned reports whether the named extra cookie came back.
func (a *ACS) CookieReturned(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cookieSeen[name]
}

// Record turns the message log on or off (fleet benchmarks turn it off).
func (a *ACS) Record(on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.record = on
}

// Lean keeps only each device's last Inform and records no exchanges: an
// ACS for load tests that must not grow.
func (a *ACS) Lean(on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lean = on
	a.record = !on
}

// OnInform runs fn (under the ACS's lock) for every Inform: it may Enqueue.
func (a *ACS) OnInform(fn func(*Device, *soap.Inform)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.onInform = fn
}

// Enqueue queues an RPC for a device (id "" means whichever device opens
// the next session). It is sent in the device's current session if one is
// open and has not ended, else in the next.
func (a *ACS) Enqueue(id string, m soap.Message) *Call {
	c := &Call{Request: m, done: make(chan struct{})}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.enqueueLocked(id, c)
	return c
}

func (a *ACS) enqueueLocked(id string, c *Call) {
	if id == "" {
		a.anyQueue = append(a.anyQueue, c)
		return
	}
	d := a.deviceLocked(id)
	d.queue = append(d.queue, c)
}

// EnqueueFor is Enqueue for use inside OnInform (the lock is held there).
func (a *ACS) EnqueueFor(d *Device, m soap.Message) *Call {
	c := &Call{Request: m, done: make(chan struct{})}
	d.queue = append(d.queue, c)
	return c
}

func (a *ACS) deviceLocked(id string) *Device {
	d := a.devices[id]
	if d == nil {
		d = &Device{ID: id, Params: map[string]string{}}
		a.devices[id] = d
	}
	return d
}

// Device returns a copy of what the ACS knows of a device, or nil.
func (a *ACS) Device(id string) *Device {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.devices[id]
	if d == nil {
		return nil
	}
	cp := *d
	cp.Informs = append([]*soap.Inform(nil), d.Informs...)
	cp.Transfers = append([]*soap.TransferComplete(nil), d.Transfers...)
	cp.DUChanges = append([]soap.Message(nil), d.DUChanges...)
	cp.Requests = append([]soap.Message(nil), d.Requests...)
	cp.Params = make(map[string]string, len(d.Params))
	for k, v := range d.Params {
		cp.Params[k] = v
	}
	cp.queue = nil
	return &cp
}

// Devices lists the device IDs seen.
func (a *ACS) Devices() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.devices))
	for id := range a.devices {
		out = append(out, id)
	}
	return out
}

// Exchanges returns the recorded exchanges.
func (a *ACS) Exchanges() []Exchange {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]Exchange(nil), a.log...)
}

// BadHeaders lists requests whose headers broke the CWMP rules the ACS
// checks (Content-Type and SOAPAction on envelopes).
func (a *ACS) BadHeaders() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.badHeaders...)
}

// WaitFor blocks until cond (called under the ACS's lock) holds or ctx ends.
func (a *ACS) WaitFor(ctx context.Context, cond func(a *ACS) bool) error {
	for {
		a.mu.Lock()
		ok := cond(a)
		ch := a.changed
		a.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("cwmptest: condition not met: %w", ctx.Err())
		}
	}
}

// Devs exposes the device map to WaitFor conditions (which run under the
// ACS's lock; do not call it elsewhere).
func (a *ACS) Devs() map[string]*Device { return a.devices }

// Logged exposes the exchange log to WaitFor conditions (which run under
// the ACS's lock; elsewhere use Exchanges).
func (a *ACS) Logged() []Exchange { return a.log }

// WaitInform waits for the n-th Inform (1-based) of a device and returns it.
func (a *ACS) WaitInform(ctx context.Context, id string, n int) (*soap.Inform, error) {
	var inf *soap.Inform
	err := a.WaitFor(ctx, func(a *ACS) bool {
		d := a.devices[id]
		if d != nil && len(d.Informs) >= n {
			inf = d.Informs[n-1]
			return true
		}
		return false
	})
	return inf, err
}

// WaitEvent waits for an Inform of the device carrying the event code and
// returns it.
func (a *ACS) WaitEvent(ctx context.Context, id, code string) (*soap.Inform, error) {
	return a.WaitEventAfter(ctx, id, code, 0)
}

// WaitEventAfter is WaitEvent for the Informs after the first seen ones
// (len(Device(id).Informs) taken before the action that should cause it).
func (a *ACS) WaitEventAfter(ctx context.Context, id, code string, seen int) (*soap.Inform, error) {
	var inf *soap.Inform
	err := a.WaitFor(ctx, func(a *ACS) bool {
		d := a.devices[id]
		if d == nil {
			return false
		}
		if len(d.Informs) < seen {
			return false
		}
		for _, in := range d.Informs[seen:] {
			for _, e := range in.Event {
				if e.EventCode == code {
					inf = in
					return true
				}
			}
		}
		return false
	})
	return inf, err
}

// WaitSessions waits until the device completed n sessions.
func (a *ACS) WaitSessions(ctx context.Context, id string, n int) error {
	return a.WaitFor(ctx, func(a *ACS) bool { d := a.devices[id]; return d != nil && d.Sessions >= n })
}

func (a *ACS) notifyLocked() {
	close(a.changed)
	a.changed = make(chan struct{})
}

// DeviceID names a device the way GenieACS does.
func DeviceID(d soap.DeviceID) string {
	if d.ProductClass == "" {
		return d.OUI + "-" + d.SerialNumber
	}
	return d.OUI + "-" + d.ProductClass + "-" + d.SerialNumber
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (a *ACS) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != a.Path && r.URL.Path != a.Path+"/moved" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, soap.MaxMessageSize+1))
	if err != nil {
		return
	}
	a.mu.Lock()
	refuse, gzipOut := a.refuseCompressed, a.gzipResponses
	if ce := r.Header.Get("Content-Encoding"); ce != "" {
		a.compressedIn++
	}
	a.mu.Unlock()
	if ce := r.Header.Get("Content-Encoding"); ce != "" {
		if refuse {
			http.Error(w, "no compressed requests", http.StatusUnsupportedMediaType)
			return
		}
		if body, err = inflate(ce, body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = nil
	}
	// Decoding needs no state: it is done before taking the lock, which
	// every exchange of every device shares (a fleet sends thousands a
	// second; decoding under the lock made them queue behind each other).
	var env *soap.Envelope
	var derr error
	if body != nil {
		env, derr = soap.DecodeBytes(body)
	}
	a.mu.Lock()
	delay := a.delay
	if a.dropNext > 0 {
		a.dropNext--
		a.finish(&Exchange{Time: time.Now(), In: body, Header: r.Header.Clone()}, 0, nil)
		a.mu.Unlock()
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
			}
		}
		return
	}
	if a.redirectNext > 0 && r.URL.Path == a.Path {
		a.redirectNext--
		a.finish(&Exchange{Time: time.Now(), In: body, Header: r.Header.Clone()}, http.StatusTemporaryRedirect, nil)
		a.mu.Unlock()
		w.Header().Set("Location", a.Path+"/moved")
		w.WriteHeader(http.StatusTemporaryRedirect)
		return
	}
	status, out, hdr := a.handle(r, body, env, derr)
	a.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if out != nil && gzipOut && strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(out)
		zw.Close()
		out = b.Bytes()
		w.Header().Set("Content-Encoding", "gzip")
	}
	if out != nil {
		w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
		w.Header().Set("Content-Length", fmt.Sprint(len(out)))
	}
	w.WriteHeader(status)
	w.Write(out)
}

// handle runs the ACS session logic with a.mu held, on the body and what
// it decoded to.
func (a *ACS) handle(r *http.Request, body []byte, e *soap.Envelope, derr error) (int, []byte, http.Header) {
	hdr := http.Header{}
	ex := Exchange{Time: time.Now(), In: body, Header: r.Header.Clone()}
	var env *soap.Envelope
	if body != nil {
		if derr != nil && e == nil {
			return a.finish(&ex, http.StatusBadRequest, []byte("cwmptest: "+derr.Error()))
		}
		env = e
		ex.InEnv = e
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
			a.badHeaders = append(a.badHeaders, "Content-Type: "+ct)
		}
		if _, ok := r.Header["Soapaction"]; !ok {
			a.badHeaders = append(a.badHeaders, "no SOAPAction header")
		}
	}
	for _, c := range a.extraCookies {
		if ck, err := r.Cookie(c.Name); err == nil && ck.Value == c.Value {
			a.cookieSeen[c.Name] = true
		}
	}
	var s *session
	if ck, err := r.Cookie("session"); err == nil {
		s = a.sessions[ck.Value]
	}
	if s == nil {
		inf, ok := bodyAs[*soap.Inform](env)
		if !ok {
			return a.finish(&ex, http.StatusBadRequest, []byte("cwmptest: bad session state: the first message must be an Inform"))
		}
		if st, ok := a.authenticate(r, hdr); !ok {
			return a.finish(&ex, st, nil, hdr)
		}
		if a.failInforms > 0 {
			a.failInforms--
			if a.retryAfter != "" {
				return a.finish(&ex, a.failStatus, nil, http.Header{"Retry-After": {a.retryAfter}})
			}
			return a.finish(&ex, a.failStatus, nil)
		}
		if a.faultInforms > 0 {
			a.faultInforms--
			f := &soap.Fault{FaultCode: "Server", Code: a.faultCode, String: "cwmptest fault"}
			return a.finish(&ex, http.StatusOK, (&soap.Envelope{NS: env.NS, ID: env.ID, Body: f}).Encode())
		}
		s = &session{id: newID(), authed: true}
		s.dev = a.deviceLocked(DeviceID(inf.DeviceId))
		s.ns = env.NS
		a.sessions[s.id] = s
		hdr.Add("Set-Cookie", (&http.Cookie{Name: "session", Value: s.id, Path: "/"}).String())
		for _, c := range a.extraCookies {
			hdr.Add("Set-Cookie", c.String())
		}
	}
	ex.Session, ex.Device = s.id, s.dev.ID
	d := s.dev
	if env == nil {
		return a.next(&ex, s, hdr)
	}
	switch m := env.Body.(type) {
	case *soap.Inform:
		if a.lean {
			d.Informs = append(d.Informs[:0], m)
		} else {
			d.Informs = append(d.Informs, m)
		}
		d.lastInform = time.Now()
		for _, e := range m.Event {
			if e.EventCode == "0 BOOTSTRAP" {
				d.Bootstrapped = true
			}
		}
		for _, p := range m.ParameterList {
			d.Params[p.Name] = p.Value
		}
		d.queue = append(d.queue, a.anyQueue...)
		a.anyQueue = nil
		if a.onInform != nil {
			a.onInform(d, m)
		}
		ns := s.ns
		if a.answerNS != "" {
			ns = a.answerNS
			s.ns = ns
		}
		out := &soap.Envelope{NS: ns, ID: env.ID, HoldRequests: a.hold, Body: &soap.InformResponse{MaxEnvelopes: 1}}
		if a.useVersion != "" || env.SupportedCWMPVersions != "" {
			out.UseCWMPVersion = a.useVersion
		}
		return a.finish(&ex, http.StatusOK, out.Encode(), hdr)
	case *soap.TransferComplete:
		d.Transfers = append(d.Transfers, m)
		return a.finish(&ex, http.StatusOK, (&soap.Envelope{NS: s.ns, ID: env.ID, Body: &soap.TransferCompleteResponse{}}).Encode(), hdr)
	case *soap.AutonomousTransferComplete:
		d.Requests = append(d.Requests, m)
		return a.finish(&ex, http.StatusOK, (&soap.Envelope{NS: s.ns, ID: env.ID, Body: &soap.AutonomousTransferCompleteResponse{}}).Encode(), hdr)
	case *soap.DUStateChangeComplete:
		d.DUChanges = append(d.DUChanges, m)
		return a.finish(&ex, http.StatusOK, (&soap.Envelope{NS: s.ns, ID: env.ID, Body: &soap.DUStateChangeCompleteResponse{}}).Encode(), hdr)
	case *soap.AutonomousDUStateChangeComplete:
		d.DUChanges = append(d.DUChanges, m)
		return a.finish(&ex, http.StatusOK, (&soap.Envelope{NS: s.ns, ID: env.ID, Body: &soap.AutonomousDUStateChangeCompleteResponse{}}).Encode(), hdr)
	case *soap.GetRPCMethods:
		return a.finish(&ex, http.StatusOK, (&soap.Envelope{NS: s.ns, ID: env.ID, Body: &soap.GetRPCMethodsResponse{
			MethodList: a.methodList()}}).Encode(), hdr)
	case *soap.RequestDownload:
		d.Requests = append(d.Requests, m)
		if code := a.faultRequests[m.Method()]; code != 0 {
			return a.finish(&ex, http.StatusOK, (&soap.Envelope{NS: s.ns, ID: env.ID, Body: &soap.Fault{Code: code, String: "Method not supported"}}).Encode(), hdr)
		}
		return a.finish(&ex, http.StatusOK, (&soap.Envelope{NS: s.ns, ID: env.ID, Body: &soap.RequestDownloadResponse{}}).Encode(), hdr)
	}
	if s.pending != nil && (strings.HasSuffix(env.Body.Method(), "Response") || env.Body.Method() == "Fault") {
		c := s.pending
		s.pending = nil
		c.Response = env.Body
		if gpv, ok := env.Body.(*soap.GetParameterValuesResponse); ok {
			for _, p := range gpv.ParameterList {
				d.Params[p.Name] = p.Value
			}
		}
		close(c.done)
		return a.next(&ex, s, hdr)
	}
	// Anything else from a CPE is a method the ACS does not support.
	return a.finish(&ex, http.StatusOK, (&soap.Envelope{NS: s.ns, ID: env.ID, Body: &soap.Fault{Code: 8000, String: "Method not supported"}}).Encode(), hdr)
}

// next sends the device's next queued call, or ends the session with 204.
func (a *ACS) next(ex *Exchange, s *session, hdr http.Header) (int, []byte, http.Header) {
	d := s.dev
	if len(d.queue) > 0 {
		c := d.queue[0]
		d.queue = d.queue[1:]
		s.pending = c
		s.nextID++
		out := (&soap.Envelope{NS: s.ns, ID: fmt.Sprintf("acs-%d", s.nextID), Body: c.Request}).Encode()
		return a.finish(ex, http.StatusOK, out, hdr)
	}
	delete(a.sessions, s.id)
	d.Sessions++
	hdr.Set("Connection", "close")
	return a.finish(ex, http.StatusNoContent, nil, hdr)
}

func (a *ACS) authenticate(r *http.Request, hdr http.Header) (int, bool) {
	switch a.auth {
	case AuthBasic:
		if digest.CheckBasic(r.Header.Get("Authorization"), a.user, a.pass) {
			return 0, true
		}
		hdr.Set("WWW-Authenticate", `Basic realm="cwmptest"`)
		return http.StatusUnauthorized, false
	case AuthDigest:
		res := a.dig.Check(r.Header.Get("Authorization"), r.Method, r.RequestURI, a.user, a.pass)
		if res == digest.OK {
			return 0, true
		}
		hdr.Set("WWW-Authenticate", a.dig.Challenge(res == digest.Stale))
		return http.StatusUnauthorized, false
	}
	return 0, true
}

func (a *ACS) finish(ex *Exchange, status int, out []byte, hdr ...http.Header) (int, []byte, http.Header) {
	ex.Status, ex.Out = status, out
	if a.record {
		a.log = append(a.log, *ex)
	}
	a.notifyLocked()
	var h http.Header
	if len(hdr) > 0 {
		h = hdr[0]
	}
	return status, out, h
}

func bodyAs[T soap.Message](env *soap.Envelope) (T, bool) {
	var zero T
	if env == nil {
		return zero, false
	}
	m, ok := env.Body.(T)
	return m, ok
}

// ConnectionRequest sends an HTTP Connection Request the way GenieACS does:
// a GET, answered 401, then the same GET with Digest credentials. It
// returns the final status.
func ConnectionRequest(ctx context.Context, url, user, pass string) (int, error) {
	return ConnectionRequestFrom(ctx, nil, url, user, pass)
}

// ConnectionRequestFrom is ConnectionRequest from a given source address
// (nil: the kernel's choice), on a connection of its own.
func ConnectionRequestFrom(ctx context.Context, from net.IP, url, user, pass string) (int, error) {
	client := http.DefaultClient
	if from != nil {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: 5 * time.Second}
		tr := &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		client = &http.Client{Transport: tr}
	}
	return ConnectionRequestVia(ctx, client, url, user, pass)
}

// ConnectionRequestVia is ConnectionRequest through a given client (one
// that dials from a network namespace).
func ConnectionRequestVia(ctx context.Context, client *http.Client, url, user, pass string) (int, error) {
	var c digest.Client
	c.Username, c.Password = user, pass
	for attempt := 0; attempt < 2; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		if h := c.Authorization(http.MethodGet, req.URL.RequestURI()); h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || attempt == 1 {
			return resp.StatusCode, nil
		}
		if err := c.Accept(digest.ParseChallenges(resp.Header.Values("WWW-Authenticate"))); err != nil {
			return resp.StatusCode, err
		}
	}
	return 0, errors.New("cwmptest: unreachable")
}

// inflate undoes a request's Content-Encoding (gzip or deflate).
func inflate(coding string, body []byte) ([]byte, error) {
	var r io.Reader
	switch coding {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		r = zr
	case "deflate":
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		r = zr
	default:
		return nil, fmt.Errorf("cwmptest: Content-Encoding %q", coding)
	}
	return io.ReadAll(io.LimitReader(r, soap.MaxMessageSize+1))
}

// RefuseCompressed makes the ACS answer compressed requests with 415.
func (a *ACS) RefuseCompressed(on bool) {
	a.mu.Lock()
	a.refuseCompressed = on
	a.mu.Unlock()
}

// GzipResponses makes the ACS gzip its answers to CPEs that accept it.
func (a *ACS) GzipResponses(on bool) {
	a.mu.Lock()
	a.gzipResponses = on
	a.mu.Unlock()
}

// CompressedRequests counts the POSTs that came with a Content-Encoding.
func (a *ACS) CompressedRequests() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.compressedIn
}

// FaultRequests makes the ACS answer a CPE request method with an ACS
// fault (GenieACS answers RequestDownload with 8000); 0 answers it again.
func (a *ACS) FaultRequests(method string, code int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.faultRequests == nil {
		a.faultRequests = map[string]int{}
	}
	a.faultRequests[method] = code
}

// methodList is what the ACS answers GetRPCMethods with (a.mu held).
func (a *ACS) methodList() []string {
	if a.methods != nil {
		return a.methods
	}
	return []string{"Inform", "GetRPCMethods", "TransferComplete", "AutonomousTransferComplete", "RequestDownload",
		"DUStateChangeComplete", "AutonomousDUStateChangeComplete"}
}

// Methods sets the ACS's GetRPCMethods answer (GenieACS 1.2 lists Inform,
// GetRPCMethods and TransferComplete); nil: every method it takes.
func (a *ACS) Methods(list []string) {
	a.mu.Lock()
	a.methods = list
	a.mu.Unlock()
}
