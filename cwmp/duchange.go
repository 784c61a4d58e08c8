package cwmp

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/cwmp-agent/cwmp-agent/soap"
)

// SoftwareModules carries out ChangeDUState (TR-069 A.4.1.10, CWMP 1.2):
// it takes the operations and answers later, through the agent's
// DUStateChangeComplete, once they ran (after the session). *swmod.Manager
// implements it. An error refuses the request with its fault.
type SoftwareModules interface {
	ChangeDUState(ops []soap.DUOperation, commandKey string) error
}

// DUCompletion is one DUStateChangeComplete or
// AutonomousDUStateChangeComplete waiting for its response (agent.json).
type DUCompletion struct {
	ID         uint64          `json:"id"`
	Autonomous bool            `json:"autonomous,omitempty"`
	CommandKey string          `json:"key,omitempty"`
	Results    []soap.OpResult `json:"results"`
}

// maxDUCompletions bounds the completions kept for an ACS that never
// takes them; the oldest autonomous one goes first.
const maxDUCompletions = 32

func (a *Agent) changeDUState(_ context.Context, _ *session, m *soap.ChangeDUState) (soap.Message, error) {
	if a.cfg.SoftwareModules == nil {
		return nil, faultf(faultMethodNotSupported, "ChangeDUState")
	}
	if len(m.CommandKey) > maxKey {
		return nil, faultf(faultInvalidArguments, "CommandKey longer than %d", maxKey)
	}
	pending := 0
	for _, c := range a.st.DUCompletions {
		if !c.Autonomous {
			pending++
		}
	}
	if pending >= maxDUCompletions/2 {
		return nil, faultf(faultResources, "%d DUStateChangeComplete not yet delivered", pending)
	}
	if err := a.cfg.SoftwareModules.ChangeDUState(m.Operations, m.CommandKey); err != nil {
		return nil, err
	}
	return &soap.ChangeDUStateResponse{}, nil
}

// DUStateChangeComplete hands the agent the results of a ChangeDUState: it
// queues "11 DU STATE CHANGE COMPLETE" and "M ChangeDUState" and sends the
// DUStateChangeComplete in the next session, until the ACS answers it
// (kept across failed sessions and restarts).
func (a *Agent) DUStateChangeComplete(results []soap.OpResult, commandKey string) {
	a.addDUCompletion(DUCompletion{CommandKey: commandKey, Results: results})
}

// AutonomousDUStateChangeComplete reports changes the device made on its
// own ("12 AUTONOMOUS DU STATE CHANGE COMPLETE").
func (a *Agent) AutonomousDUStateChangeComplete(results []soap.OpResult) {
	a.addDUCompletion(DUCompletion{Autonomous: true, Results: results})
}

func (a *Agent) addDUCompletion(c DUCompletion) {
	a.tasks.post(func() {
		a.st.NextDU++
		c.ID = a.st.NextDU
		a.st.DUCompletions = append(a.st.DUCompletions, &c)
		for len(a.st.DUCompletions) > maxDUCompletions {
			drop := 0
			for i, x := range a.st.DUCompletions {
				if x.Autonomous {
					drop = i
					break
				}
			}
			a.log.Warn("dropping an undelivered DU state change report", "command_key", a.st.DUCompletions[drop].CommandKey)
			a.st.DUCompletions = append(a.st.DUCompletions[:drop], a.st.DUCompletions[drop+1:]...)
		}
		if c.Autonomous {
			a.addEvent(EventAutonomousDUStateChangeComplete, "", noInflight)
		} else {
			a.addEvent(EventDUStateChangeComplete, "", noInflight)
			a.addEvent(EventMChangeDUState, c.CommandKey, noInflight)
		}
		a.retryAt = time.Time{} // a new event cuts a retry wait short, as Trigger's do
		a.save()
	})
}

// duDelivered drops a completion the ACS answered, and its events when no
// other completion needs them.
func (a *Agent) duDelivered(id uint64) {
	var done *DUCompletion
	kept := a.st.DUCompletions[:0]
	for _, c := range a.st.DUCompletions {
		if c.ID == id {
			done = c
			continue
		}
		kept = append(kept, c)
	}
	a.st.DUCompletions = kept
	if done == nil {
		return
	}
	left, leftAuton := false, false
	for _, c := range a.st.DUCompletions {
		if c.Autonomous {
			leftAuton = true
		} else {
			left = true
		}
	}
	a.dropEvents(func(e Event) bool {
		switch e.Code {
		case EventMChangeDUState:
			return !done.Autonomous && e.CommandKey == done.CommandKey && !a.duKeyPending(e.CommandKey)
		case EventDUStateChangeComplete:
			return !left
		case EventAutonomousDUStateChangeComplete:
			return !leftAuton
		}
		return false
	})
	a.save()
}

func (a *Agent) duKeyPending(key string) bool {
	for _, c := range a.st.DUCompletions {
		if !c.Autonomous && c.CommandKey == key {
			return true
		}
	}
	return false
}

// duRequests are the DU state change reports the session sends after the
// InformResponse: those queued before its Inform (their events are in it).
func (a *Agent) duRequests(ids map[uint64]bool) []cpeRequest {
	var out []cpeRequest
	for _, c := range a.st.DUCompletions {
		if !ids[c.ID] {
			continue
		}
		id := c.ID
		var msg soap.Message = &soap.DUStateChangeComplete{Results: c.Results, CommandKey: c.CommandKey}
		if c.Autonomous {
			msg = &soap.AutonomousDUStateChangeComplete{Results: c.Results}
		}
		out = append(out, cpeRequest{msg: msg, done: func(soap.Message) { a.duDelivered(id) }})
	}
	return out
}

var fetchSeq atomic.Uint64

// FetchFile downloads a file as Download does (the agent's TLS settings,
// Basic or Digest authentication, MaxTransferSize) into the download
// directory, for the software modules' packages. An error carries the
// TR-069 fault code of the failure (FaultOf).
func (a *Agent) FetchFile(ctx context.Context, rawURL, user, pass string) (string, error) {
	if _, err := checkTransferURL(rawURL); err != nil {
		return "", err
	}
	// Far above the transfers' own numbers, so the names never meet.
	t := &Transfer{ID: 1<<48 + fetchSeq.Add(1), URL: rawURL, Username: user, Password: pass}
	if err := a.doDownload(ctx, t); err != nil {
		return "", err
	}
	return t.File, nil
}

// FaultOf returns the TR-069 fault code and text an error of the agent's
// carries, 0 when it carries none.
func FaultOf(err error) (int, string) {
	var fe *faultError
	if errors.As(err, &fe) {
		return fe.code, fe.msg
	}
	var te *transferError
	if errors.As(err, &te) {
		return te.code, te.detail
	}
	return 0, ""
}
