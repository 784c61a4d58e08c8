package cwmp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cwmp-agent/cwmp-agent/internal/digest"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// Transfer states (TR-069 A.4.1.1 QueuedTransferStruct State).
const (
	TransferNotStarted = 1
	TransferInProgress = 2
	TransferCompleted  = 3
)

// maxTransfers is the TransferList capacity (cwmp XSD: at most 16).
const maxTransfers = 16

// Transfer is a Download, Upload or ScheduleDownload from its request to the
// TransferCompleteResponse. It persists in agent.json, so a TransferComplete
// survives a restart.
type Transfer struct {
	ID             uint64           `json:"id"`
	Method         string           `json:"method"` // "Download", "Upload", "ScheduleDownload"
	CommandKey     string           `json:"key"`
	FileType       string           `json:"file_type"`
	URL            string           `json:"url"`
	Username       string           `json:"username,omitempty"`
	Password       string           `json:"password,omitempty"`
	FileSize       uint32           `json:"file_size,omitempty"`
	TargetFileName string           `json:"target,omitempty"`
	StartAt        time.Time        `json:"start_at"`
	Deadline       time.Time        `json:"deadline,omitempty"` // ScheduleDownload window end
	Version        soap.Version     `json:"version"`
	State          int              `json:"state"`
	Fault          soap.FaultStruct `json:"fault"`
	StartTime      time.Time        `json:"start_time"`
	CompleteTime   time.Time        `json:"complete_time"`
	File           string           `json:"file,omitempty"`
}

func (t *Transfer) isDownload() bool { return t.Method != "Upload" }

func (t *Transfer) event() EventCode {
	switch t.Method {
	case "Upload":
		return EventMUpload
	case "ScheduleDownload":
		return EventMScheduleDownload
	}
	return EventMDownload
}

func (t *Transfer) finish(now time.Time, f soap.FaultStruct) {
	t.State = TransferCompleted
	t.Fault = f
	if t.StartTime.IsZero() && f.FaultCode == 0 {
		t.StartTime = now
	}
	t.CompleteTime = now
	if f.FaultCode != 0 && t.StartTime.IsZero() {
		t.CompleteTime = time.Time{} // Unknown Time: it never started
	}
}

// addTransferEvents queues 7 TRANSFER COMPLETE and the M event.
func (a *Agent) addTransferEvents(t *Transfer) {
	a.addEvent(EventTransferComplete, "", a.inflight())
	a.addEvent(t.event(), t.CommandKey, a.inflight())
}

// transferDelivered drops a transfer after its TransferCompleteResponse, with
// its M event, and 7 TRANSFER COMPLETE once no TransferComplete is left.
func (a *Agent) transferDelivered(id uint64) {
	var done *Transfer
	kept := a.st.Transfers[:0]
	for _, t := range a.st.Transfers {
		if t.ID == id {
			done = t
			continue
		}
		kept = append(kept, t)
	}
	a.st.Transfers = kept
	if done == nil {
		return
	}
	left := false
	for _, t := range a.st.Transfers {
		if t.State == TransferCompleted {
			left = true
		}
	}
	a.dropEvents(func(e Event) bool {
		return e.Code == done.event() && e.CommandKey == done.CommandKey || e.Code == EventTransferComplete && !left
	})
	if done.File != "" && done.Method == "Upload" {
		os.Remove(done.File)
	}
	a.save()
}

// checkTransferURL refuses what the agent cannot fetch (9013) and
// credentials embedded in the URL's userinfo are used like Username/Password.
func checkTransferURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, faultf(faultInvalidArguments, "URL %q is not valid", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, faultf(faultUnsupportedProtocol, "%s", u.Scheme)
	}
	return u, nil
}

var downloadTypes = []string{"1 Firmware Upgrade Image", "2 Web Content", "3 Vendor Configuration File", "4 Tone File", "5 Ringer File"}

func validDownloadType(ft string) bool {
	for _, t := range downloadTypes {
		if ft == t {
			return true
		}
	}
	return strings.HasPrefix(ft, "X ")
}

func validUploadType(ft string) bool {
	switch {
	case ft == "1 Vendor Configuration File", ft == "2 Vendor Log File":
		return true
	case strings.HasPrefix(ft, "3 Vendor Configuration File "), strings.HasPrefix(ft, "4 Vendor Log File "):
		return true
	}
	return false
}

func (a *Agent) queueTransfer(t *Transfer) error {
	if len(a.st.Transfers) >= maxTransfers {
		return faultf(faultResources, "the transfer queue is full")
	}
	t.ID = a.st.NextTransfer
	a.st.NextTransfer++
	t.State = TransferNotStarted
	a.st.Transfers = append(a.st.Transfers, t)
	if err := a.save(); err != nil {
		// Not on disk, not promised: the ACS would wait for a
		// TransferComplete that a restart forgets.
		a.st.Transfers = a.st.Transfers[:len(a.st.Transfers)-1]
		a.st.NextTransfer--
		return errNotSaved(err)
	}
	return nil
}

// download accepts a Download: it is queued and runs after the session and
// DelaySeconds, and a TransferComplete reports how it went (Status 1).
func (a *Agent) download(_ context.Context, s *session, m *soap.Download) (soap.Message, error) {
	if len(m.CommandKey) > maxKey {
		return nil, faultf(faultInvalidArguments, "CommandKey longer than %d", maxKey)
	}
	if !validDownloadType(m.FileType) {
		return nil, faultf(faultInvalidArguments, "FileType %q", m.FileType)
	}
	if _, err := checkTransferURL(m.URL); err != nil {
		return nil, err
	}
	if a.cfg.MaxTransferSize > 0 && int64(m.FileSize) > a.cfg.MaxTransferSize {
		return nil, faultf(faultResources, "file of %d bytes is larger than the %d allowed", m.FileSize, a.cfg.MaxTransferSize)
	}
	t := &Transfer{Method: "Download", CommandKey: m.CommandKey, FileType: m.FileType, URL: m.URL, Username: m.Username,
		Password: m.Password, FileSize: m.FileSize, TargetFileName: m.TargetFileName, Version: s.version,
		StartAt: a.clock.Now().Add(time.Duration(m.DelaySeconds) * time.Second)}
	if err := a.queueTransfer(t); err != nil {
		return nil, err
	}
	return &soap.DownloadResponse{TransferResponse: soap.TransferResponse{Status: 1}}, nil
}

func (a *Agent) upload(_ context.Context, s *session, m *soap.Upload) (soap.Message, error) {
	if len(m.CommandKey) > maxKey {
		return nil, faultf(faultInvalidArguments, "CommandKey longer than %d", maxKey)
	}
	if !validUploadType(m.FileType) || a.cfg.UploadSource == nil {
		return nil, faultf(faultInvalidArguments, "FileType %q", m.FileType)
	}
	if _, err := checkTransferURL(m.URL); err != nil {
		return nil, err
	}
	t := &Transfer{Method: "Upload", CommandKey: m.CommandKey, FileType: m.FileType, URL: m.URL, Username: m.Username,
		Password: m.Password, Version: s.version, StartAt: a.clock.Now().Add(time.Duration(m.DelaySeconds) * time.Second)}
	if err := a.queueTransfer(t); err != nil {
		return nil, err
	}
	return &soap.UploadResponse{TransferResponse: soap.TransferResponse{Status: 1}}, nil
}

// scheduleDownload (CWMP 1.2) runs the download in the first time window;
// "4 Confirmation Needed" cannot be honoured by an agent with no user
// interface and is refused.
func (a *Agent) scheduleDownload(_ context.Context, s *session, m *soap.ScheduleDownload) (soap.Message, error) {
	if len(m.CommandKey) > maxKey {
		return nil, faultf(faultInvalidArguments, "CommandKey longer than %d", maxKey)
	}
	if !validDownloadType(m.FileType) {
		return nil, faultf(faultInvalidArguments, "FileType %q", m.FileType)
	}
	if _, err := checkTransferURL(m.URL); err != nil {
		return nil, err
	}
	if len(m.TimeWindowList) < 1 || len(m.TimeWindowList) > 2 {
		return nil, faultf(faultInvalidArguments, "TimeWindowList needs one or two windows")
	}
	now := a.clock.Now()
	var start, end time.Time
	for i, w := range m.TimeWindowList {
		if w.WindowEnd < w.WindowStart {
			return nil, faultf(faultInvalidArguments, "window %d ends before it starts", i+1)
		}
		switch w.WindowMode {
		case "1 At Any Time", "2 Immediately", "3 When Idle":
		default:
			return nil, faultf(faultInvalidArguments, "WindowMode %q is not supported", w.WindowMode)
		}
		if i == 0 {
			start = now.Add(time.Duration(w.WindowStart) * time.Second)
		}
		end = now.Add(time.Duration(w.WindowEnd) * time.Second)
	}
	t := &Transfer{Method: "ScheduleDownload", CommandKey: m.CommandKey, FileType: m.FileType, URL: m.URL, Username: m.Username,
		Password: m.Password, FileSize: m.FileSize, TargetFileName: m.TargetFileName, Version: s.version, StartAt: start, Deadline: end}
	if err := a.queueTransfer(t); err != nil {
		return nil, err
	}
	return &soap.ScheduleDownloadResponse{}, nil
}

func (a *Agent) cancelTransfer(_ context.Context, _ *session, m *soap.CancelTransfer) (soap.Message, error) {
	found := false
	kept := make([]*Transfer, 0, len(a.st.Transfers))
	var err error
	for _, t := range a.st.Transfers {
		if t.CommandKey != m.CommandKey {
			kept = append(kept, t)
			continue
		}
		found = true
		if t.State != TransferNotStarted {
			err = faultf(faultCancelNotPermitted, "transfer %q is %s", t.CommandKey, map[int]string{2: "in progress", 3: "completed"}[t.State])
			kept = append(kept, t)
		}
	}
	if !found {
		return nil, faultf(faultInvalidArguments, "no transfer with CommandKey %q", m.CommandKey)
	}
	if err != nil {
		return nil, err
	}
	old := a.st.Transfers
	a.st.Transfers = kept
	if err := a.save(); err != nil {
		a.st.Transfers = old
		return nil, errNotSaved(err)
	}
	return &soap.CancelTransferResponse{}, nil
}

func (a *Agent) getQueuedTransfers(_ context.Context, _ *session, _ *soap.GetQueuedTransfers) (soap.Message, error) {
	r := &soap.GetQueuedTransfersResponse{TransferList: []soap.QueuedTransfer{}}
	for _, t := range a.st.Transfers {
		r.TransferList = append(r.TransferList, soap.QueuedTransfer{CommandKey: t.CommandKey, State: t.State})
	}
	return r, nil
}

func (a *Agent) getAllQueuedTransfers(_ context.Context, _ *session, _ *soap.GetAllQueuedTransfers) (soap.Message, error) {
	r := &soap.GetAllQueuedTransfersResponse{TransferList: []soap.AllQueuedTransfer{}}
	for _, t := range a.st.Transfers {
		r.TransferList = append(r.TransferList, soap.AllQueuedTransfer{CommandKey: t.CommandKey, State: t.State,
			IsDownload: t.isDownload(), FileType: t.FileType, FileSize: t.FileSize, TargetFileName: t.TargetFileName})
	}
	return r, nil
}

// runTransfers runs queued transfers one at a time, never during a session
// (TR-069: the CWMP session is not blocked by a transfer), on its own
// goroutine: it asks the agent's goroutine, which owns the transfers, for
// the next one, runs a copy of it, and posts the outcome back.
//
// The goroutine exists only while a transfer waits or runs: it ends, on
// the agent's goroutine, when no transfer is left to start, and
// kickTransfers starts it again when a session queued one.
func (a *Agent) runTransfers(ctx context.Context) {
	for ctx.Err() == nil {
		var work *Transfer
		wait := 24 * time.Hour
		idle := true
		// Answered between sessions only: the owner runs tasks then.
		err := a.tasks.do(ctx, func() {
			now := a.clock.Now()
			defer func() {
				if idle && work == nil {
					a.transfers.running = false
				}
			}()
			for _, t := range a.st.Transfers {
				if t.State != TransferNotStarted {
					continue
				}
				if !now.Before(t.StartAt) {
					t.State = TransferInProgress
					t.StartTime = now
					a.save()
					cp := *t
					work = &cp
					return
				}
				idle = false
				if d := t.StartAt.Sub(now); d < wait {
					wait = d
				}
			}
		})
		if err != nil {
			return
		}
		if idle && work == nil {
			return // a.transfers.running is false: the next kick starts another
		}
		if work != nil {
			a.execute(ctx, work)
			continue
		}
		t := a.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-a.transferWake:
		case <-t.C():
		}
		t.Stop()
	}
}

// kickTransfers wakes the transfer runner, starting it when a transfer
// waits and none runs. It runs on the agent's goroutine, which owns
// a.transfers.
func (a *Agent) kickTransfers() {
	if a.transfers.running {
		select {
		case a.transferWake <- struct{}{}:
		default:
		}
		return
	}
	waiting := false
	for _, t := range a.st.Transfers {
		if t.State == TransferNotStarted {
			waiting = true
			break
		}
	}
	if !waiting || a.transfers.ctx == nil {
		return
	}
	a.transfers.running = true
	a.transfers.wg.Add(1)
	ctx := a.transfers.ctx
	go func() { defer a.transfers.wg.Done(); a.runTransfers(ctx) }()
}

// transfer finds a queued transfer by ID; nil when it is gone (the ACS
// URL changed, a factory reset) while it ran.
func (a *Agent) transfer(id uint64) *Transfer {
	for _, t := range a.st.Transfers {
		if t.ID == id {
			return t
		}
	}
	return nil
}

// transferError carries the fault code of a failed transfer.
type transferError struct {
	code   int
	detail string
}

func (e *transferError) Error() string { return fmt.Sprintf("transfer fault %d: %s", e.code, e.detail) }

func (a *Agent) execute(ctx context.Context, t *Transfer) {
	log := a.log.With("rpc", t.Method, "file_type", t.FileType)
	var err error
	reboot := false
	if t.Method == "Upload" {
		err = a.doUpload(ctx, t)
	} else if !t.Deadline.IsZero() && a.clock.Now().After(t.Deadline) {
		err = &transferError{faultWindow, "the time window has passed"}
	} else {
		err = a.doDownload(ctx, t)
		if err == nil {
			reboot, err = a.apply(ctx, t)
		}
	}
	now := a.clock.Now()
	f := soap.FaultStruct{}
	if err != nil {
		var te *transferError
		code := faultDownload
		if t.Method == "Upload" {
			code = faultUpload
		}
		if errors.As(err, &te) {
			code = te.code
		}
		f = faultStructFor(t.Version, code, err.Error())
		log.Warn("transfer failed", "err", err, "fault", f.FaultCode)
	} else {
		log.Info("transfer done", "file", t.File)
	}
	t.finish(now, f)
	a.tasks.post(func() {
		if cur := a.transfer(t.ID); cur != nil {
			*cur = *t
			a.addTransferEvents(cur)
			if reboot && a.rebootReq == nil {
				a.rebootReq = &rebootRequest{cause: "firmware upgrade"}
			}
			a.save()
		}
	})
}

// fileClient returns an HTTP client for file servers: the agent's TLS
// settings, redirects followed, no overall timeout (large files), and a
// per-stage timeout through the context.
func (a *Agent) fileClient() *http.Client {
	a.fileOnce.Do(func() {
		var tr http.RoundTripper = a.cfg.Virtual.Transport
		if tr == nil {
			tr = NewHTTPTransport(a.tls)
		}
		a.fileHTTP = &http.Client{Transport: tr}
	})
	return a.fileHTTP
}

// fetch performs a request with Basic or Digest authentication on a 401.
func (a *Agent) fetch(ctx context.Context, method, rawURL, user, pass string, body []byte) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, &transferError{faultInvalidArguments, err.Error()}
	}
	if u.User != nil && user == "" {
		user = u.User.Username()
		pass, _ = u.User.Password()
		u.User = nil
	}
	var auth digest.Client
	auth.Username, auth.Password = user, pass
	client := a.fileClient()
	for attempt := 0; attempt < 2; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
		if err != nil {
			return nil, &transferError{faultInvalidArguments, err.Error()}
		}
		if body == nil {
			req.Body = nil
		} else {
			req.ContentLength = int64(len(body))
		}
		req.Header.Set("User-Agent", a.cfg.UserAgent)
		if h := auth.Authorization(method, u.RequestURI()); h != "" {
			req.Header.Set("Authorization", h)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt == 1 || (user == "" && pass == "") {
			return resp, nil
		}
		resp.Body.Close()
		if err := auth.Accept(digest.ParseChallenges(resp.Header.Values("WWW-Authenticate"))); err != nil {
			return nil, &transferError{faultTransferAuth, err.Error()}
		}
	}
	return nil, &transferError{faultTransferAuth, "authentication failed"}
}

func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}

func (a *Agent) downloadDir() string {
	if a.cfg.StateDir == "" {
		return filepath.Join(os.TempDir(), "cwmp-agent-downloads")
	}
	return filepath.Join(a.cfg.StateDir, "downloads")
}

// doDownload fetches the file into the download directory.
func (a *Agent) doDownload(ctx context.Context, t *Transfer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	resp, err := a.fetch(ctx, http.MethodGet, t.URL, t.Username, t.Password, nil)
	if err != nil {
		var te *transferError
		if errors.As(err, &te) {
			return err
		}
		return &transferError{faultServerUnreachable, err.Error()}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden && t.Username != "":
		return &transferError{faultTransferAuth, resp.Status}
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusGone:
		return &transferError{faultFileAccess, resp.Status}
	case resp.StatusCode/100 != 2:
		return &transferError{faultDownload, resp.Status}
	}
	dir := a.downloadDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return &transferError{faultInternal, err.Error()}
	}
	name := filepath.Base(strings.ReplaceAll(t.TargetFileName, "\\", "/"))
	if name == "." || name == "/" || name == "" || strings.HasPrefix(name, ".") {
		name = "transfer-" + strconv.FormatUint(t.ID, 10)
	}
	tmp, err := os.CreateTemp(dir, ".download-*")
	if err != nil {
		return &transferError{faultInternal, err.Error()}
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(tmp, io.LimitReader(resp.Body, a.cfg.MaxTransferSize+1))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if isNetError(err) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &transferError{faultIncomplete, err.Error()}
		}
		return &transferError{faultDownload, err.Error()}
	}
	if n > a.cfg.MaxTransferSize {
		return &transferError{faultDownload, "file larger than the configured maximum"}
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return &transferError{faultIncomplete, fmt.Sprintf("got %d of %d bytes", n, resp.ContentLength)}
	}
	if t.FileSize > 0 && n != int64(t.FileSize) {
		return &transferError{faultCorrupted, fmt.Sprintf("got %d bytes, FileSize says %d", n, t.FileSize)}
	}
	final := filepath.Join(dir, name)
	if err := os.Rename(tmp.Name(), final); err != nil {
		return &transferError{faultInternal, err.Error()}
	}
	t.File = final
	return nil
}

// apply installs a downloaded file through its hook. A firmware image asks
// for a reboot, after which the Inform carries 1 BOOT with 7 TRANSFER
// COMPLETE (TR-069 A.3.2.8).
func (a *Agent) apply(ctx context.Context, t *Transfer) (reboot bool, err error) {
	switch t.FileType {
	case "1 Firmware Upgrade Image":
		if h := a.cfg.Hooks.Firmware; h != "" {
			if err := a.runHook(ctx, h, t.File, t.CommandKey); err != nil {
				return false, &transferError{faultDownload, "firmware hook: " + err.Error()}
			}
		}
		return true, nil
	case "3 Vendor Configuration File":
		if h := a.cfg.Hooks.ConfigFile; h != "" {
			if err := a.runHook(ctx, h, t.File, t.CommandKey); err != nil {
				return false, &transferError{faultDownload, "configuration hook: " + err.Error()}
			}
		}
	}
	return false, nil
}

func (a *Agent) doUpload(ctx context.Context, t *Transfer) error {
	data, err := a.cfg.UploadSource(t.FileType)
	if err != nil {
		return &transferError{faultUpload, err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	resp, err := a.fetch(ctx, http.MethodPut, t.URL, t.Username, t.Password, data)
	if err != nil {
		var te *transferError
		if errors.As(err, &te) {
			te.code = faultUpload
			if strings.Contains(te.detail, "auth") {
				te.code = faultTransferAuth
			}
			return te
		}
		return &transferError{faultUpload, err.Error()}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return &transferError{faultTransferAuth, resp.Status}
	case resp.StatusCode/100 != 2:
		return &transferError{faultUpload, resp.Status}
	}
	return nil
}

// runHook runs a configured command with arguments, bounded by the hook
// timeout. Its output goes to the debug log.
func (a *Agent) runHook(ctx context.Context, command string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Hooks.Timeout)
	defer cancel()
	fields := strings.Fields(command)
	if len(fields) == 0 {
		return nil
	}
	cmd := exec.CommandContext(ctx, fields[0], append(fields[1:], args...)...)
	out, err := cmd.CombinedOutput()
	a.log.Debug("hook ran", "cmd", fields[0], "output", string(out), "err", err)
	if err != nil {
		return fmt.Errorf("%s: %w", fields[0], err)
	}
	return nil
}
