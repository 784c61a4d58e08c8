package cwmp

import (
	"slices"
	"time"

	"github.com/cwmp-agent/cwmp-agent/soap"
)

// The CPE's own requests that the device asks for (through the control
// socket): RequestDownload (TR-069 A.4.2.2) and AutonomousTransferComplete
// (A.4.2.3, CWMP 1.1). Each is kept in agent.json with its event
// ("9 REQUEST DOWNLOAD", "10 AUTONOMOUS TRANSFER COMPLETE") until the ACS
// answers it, across failed sessions and restarts; a fault other than 8005
// (retry) drops it, so an ACS that does not know the method (GenieACS
// answers 8000) is not asked again and again.

// Event codes of the CPE's own requests.
const (
	EventRequestDownload            EventCode = "9 REQUEST DOWNLOAD"
	EventAutonomousTransferComplete EventCode = "10 AUTONOMOUS TRANSFER COMPLETE"
)

// OwnRequest is one request of the device's waiting for the ACS.
type OwnRequest struct {
	ID uint64 `json:"id"`
	// Attempts counts the sessions it was sent in; one that fails each
	// time (an ACS that drops the connection on it) is given up after
	// maxOwnAttempts.
	Attempts           int                              `json:"attempts,omitempty"`
	RequestDownload    *soap.RequestDownload            `json:"request_download,omitempty"`
	AutonomousTransfer *soap.AutonomousTransferComplete `json:"autonomous_transfer,omitempty"`
}

// maxOwnRequests bounds the queue; the oldest goes first.
const maxOwnRequests = 16

const maxOwnAttempts = 3

func (r *OwnRequest) event() EventCode {
	if r.RequestDownload != nil {
		return EventRequestDownload
	}
	return EventAutonomousTransferComplete
}

func (r *OwnRequest) msg() soap.Message {
	if r.RequestDownload != nil {
		return r.RequestDownload
	}
	return r.AutonomousTransfer
}

// RequestDownload asks the ACS for a file of the given FileType ("1
// Firmware Upgrade Image", "3 Vendor Configuration File"...) with the
// arguments it describes: the next session calls RequestDownload.
func (a *Agent) RequestDownload(fileType string, args []soap.Arg) {
	a.addOwnRequest(&OwnRequest{RequestDownload: &soap.RequestDownload{FileType: fileType, FileTypeArg: args}})
}

// AutonomousTransferComplete tells the ACS of a transfer the device made
// on its own.
func (a *Agent) AutonomousTransferComplete(m soap.AutonomousTransferComplete) {
	a.addOwnRequest(&OwnRequest{AutonomousTransfer: &m})
}

func (a *Agent) addOwnRequest(r *OwnRequest) {
	a.tasks.post(func() {
		a.st.NextOwn++
		r.ID = a.st.NextOwn
		a.st.OwnRequests = append(a.st.OwnRequests, r)
		if len(a.st.OwnRequests) > maxOwnRequests {
			a.log.Warn("dropping the oldest undelivered request of the device", "rpc", a.st.OwnRequests[0].msg().Method())
			a.st.OwnRequests = a.st.OwnRequests[1:]
		}
		a.addEvent(r.event(), "", noInflight)
		a.retryAt = time.Time{} // a new event cuts a retry wait short
		a.save()
	})
}

// ownRequests are the requests the session sends: those queued before its
// Inform.
func (a *Agent) ownRequests() []cpeRequest {
	var out []cpeRequest
	for _, r := range a.st.OwnRequests {
		if !a.sessionOwn[r.ID] {
			continue
		}
		id, code, req := r.ID, r.event(), r
		method := r.msg().Method()
		out = append(out, cpeRequest{msg: r.msg(), skip: func() bool {
			if req.Attempts >= maxOwnAttempts {
				a.log.Warn("giving up a request of the device the ACS never answered", "rpc", method, "attempts", req.Attempts)
				return true
			}
			if a.st.RPCMethods != nil && !slices.Contains(a.st.RPCMethods, method) {
				a.log.Warn("the ACS does not take this request of the device (GetRPCMethods): dropped", "rpc", method)
				return true
			}
			return false
		}, sent: func() {
			req.Attempts++
			a.save()
		}, done: func(soap.Message) {
			kept := a.st.OwnRequests[:0]
			left := false
			for _, x := range a.st.OwnRequests {
				if x.ID == id {
					continue
				}
				kept = append(kept, x)
				left = left || x.event() == code
			}
			a.st.OwnRequests = kept
			if !left {
				a.dropEvents(func(e Event) bool { return e.Code == code })
			}
			a.save()
		}})
	}
	return out
}
