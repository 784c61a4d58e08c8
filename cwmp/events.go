package cwmp

import (
	"strings"

	"github.com/cwmp-agent/cwmp-agent/soap"
)

// EventCode is an Inform EventCode (TR-069 3.7.1.5 Table 7).
type EventCode string

// Event codes the agent sends.
const (
	EventBootstrap           EventCode = "0 BOOTSTRAP"
	EventBoot                EventCode = "1 BOOT"
	EventPeriodic            EventCode = "2 PERIODIC"
	EventScheduled           EventCode = "3 SCHEDULED"
	EventValueChange         EventCode = "4 VALUE CHANGE"
	EventConnectionRequest   EventCode = "6 CONNECTION REQUEST"
	EventTransferComplete    EventCode = "7 TRANSFER COMPLETE"
	EventDiagnosticsComplete EventCode = "8 DIAGNOSTICS COMPLETE"
	EventMReboot             EventCode = "M Reboot"
	EventMScheduleInform     EventCode = "M ScheduleInform"
	EventMDownload           EventCode = "M Download"
	EventMUpload             EventCode = "M Upload"
	EventMScheduleDownload   EventCode = "M ScheduleDownload"
	// CWMP 1.2 software modules.
	EventDUStateChangeComplete           EventCode = "11 DU STATE CHANGE COMPLETE"
	EventAutonomousDUStateChangeComplete EventCode = "12 AUTONOMOUS DU STATE CHANGE COMPLETE"
	EventMChangeDUState                  EventCode = "M ChangeDUState"
	// TR-069 Amendment 6 Annex O.
	EventHeartbeat EventCode = "14 HEARTBEAT"
)

// MaxInformEvents is the size limit of the Inform Event array (cwmp XSD).
const MaxInformEvents = 64

// Event is one undelivered event. Seq orders events and tells apart an
// event carried by the Inform in flight from an equal one queued after it.
type Event struct {
	Code       EventCode `json:"code"`
	CommandKey string    `json:"key,omitempty"`
	Seq        uint64    `json:"seq"`
}

// eventRule is how long an event lives (TR-069 3.7.1.5 and its table of
// event behaviour on session retry, reboot and ACS URL change).
type eventRule struct {
	// onTransferComplete: delivered by the TransferCompleteResponse, not
	// by the InformResponse.
	onTransferComplete bool
	// dropOnFailure: not retried when the session fails (6 CONNECTION
	// REQUEST: the ACS will ask again).
	dropOnFailure bool
	// dropOnRestart: replaced or meaningless after a reboot.
	dropOnRestart bool
}

func ruleOf(c EventCode) eventRule {
	switch c {
	case EventBootstrap, EventScheduled, EventMReboot, EventMScheduleInform:
		return eventRule{}
	case EventValueChange:
		// Kept across a restart: the notify engine persists what changed.
		return eventRule{}
	case EventDiagnosticsComplete:
		// Kept until delivered, across a restart too: the results it
		// announces are kept in the tree (TR-106 DiagnosticsState: they
		// are retained until the test runs again).
		return eventRule{}
	case EventBoot, EventPeriodic:
		return eventRule{dropOnRestart: true}
	case EventConnectionRequest:
		return eventRule{dropOnFailure: true, dropOnRestart: true}
	case EventTransferComplete, EventMDownload, EventMUpload, EventMScheduleDownload,
		EventDUStateChangeComplete, EventAutonomousDUStateChangeComplete, EventMChangeDUState,
		EventRequestDownload, EventAutonomousTransferComplete:
		// Delivered by the response to the CPE's own request
		// (TransferComplete, DUStateChangeComplete...), kept until then.
		return eventRule{onTransferComplete: true}
	}
	return eventRule{dropOnRestart: true}
}

// multiple reports whether the code may appear once per CommandKey ("M"
// method events) rather than once per Inform.
func (c EventCode) multiple() bool { return strings.HasPrefix(string(c), "M ") }

// informEvents picks what an Inform carries: each single event once, each
// method event once per CommandKey, at most MaxInformEvents, in queue order.
// It returns the EventStructs and the sequence numbers they cover.
func informEvents(queue []Event) ([]soap.EventStruct, map[uint64]bool) {
	seen := map[string]bool{}
	covered := map[uint64]bool{}
	var out []soap.EventStruct
	for _, e := range queue {
		k := string(e.Code)
		if e.Code.multiple() {
			k += "\x00" + e.CommandKey
		}
		if seen[k] {
			covered[e.Seq] = true
			continue
		}
		if len(out) == MaxInformEvents {
			break
		}
		seen[k] = true
		covered[e.Seq] = true
		key := e.CommandKey
		if !e.Code.multiple() {
			key = ""
		}
		out = append(out, soap.EventStruct{EventCode: string(e.Code), CommandKey: key})
	}
	return out, covered
}

// dropEvents removes the queued events drop says are delivered (by the
// response to one of the CPE's own requests).
func (a *Agent) dropEvents(drop func(Event) bool) {
	kept := a.st.Events[:0]
	for _, e := range a.st.Events {
		if !drop(e) {
			kept = append(kept, e)
		}
	}
	a.st.Events = kept
}
