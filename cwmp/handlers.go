package cwmp

import (
	"context"
	"strings"
	"time"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// rpcHandler serves one ACS request. since is the first CWMP version that
// defines the method; an older session answers 9000.
type rpcHandler struct {
	since soap.Version
	serve func(a *Agent, ctx context.Context, s *session, m soap.Message) (soap.Message, error)
}

// rpcOrder is the order GetRPCMethodsResponse lists the methods in.
var rpcOrder = []string{
	"GetRPCMethods", "SetParameterValues", "GetParameterValues", "GetParameterNames",
	"SetParameterAttributes", "GetParameterAttributes", "AddObject", "DeleteObject",
	"Reboot", "Download", "Upload", "FactoryReset", "ScheduleInform", "GetQueuedTransfers",
	"GetAllQueuedTransfers", "ScheduleDownload", "CancelTransfer",
}

var rpcs map[string]rpcHandler

func init() {
	rpcs = map[string]rpcHandler{
		"GetRPCMethods":          {soap.V10, (*Agent).getRPCMethods},
		"SetParameterValues":     {soap.V10, (*Agent).setParameterValues},
		"GetParameterValues":     {soap.V10, (*Agent).getParameterValues},
		"GetParameterNames":      {soap.V10, (*Agent).getParameterNames},
		"SetParameterAttributes": {soap.V10, (*Agent).setParameterAttributes},
		"GetParameterAttributes": {soap.V10, (*Agent).getParameterAttributes},
		"AddObject":              {soap.V10, (*Agent).addObject},
		"DeleteObject":           {soap.V10, (*Agent).deleteObject},
		"Reboot":                 {soap.V10, (*Agent).reboot},
		"Download":               {soap.V10, (*Agent).download},
		"Upload":                 {soap.V10, (*Agent).upload},
		"FactoryReset":           {soap.V10, (*Agent).factoryReset},
		"ScheduleInform":         {soap.V10, (*Agent).scheduleInform},
		"GetQueuedTransfers":     {soap.V10, (*Agent).getQueuedTransfers},
		"GetAllQueuedTransfers":  {soap.V11, (*Agent).getAllQueuedTransfers},
		"ScheduleDownload":       {soap.V12, (*Agent).scheduleDownload},
		"CancelTransfer":         {soap.V12, (*Agent).cancelTransfer},
	}
}

// serve answers one ACS request, or returns the error to turn into a fault.
func (a *Agent) serve(ctx context.Context, s *session, m soap.Message) (soap.Message, error) {
	h, ok := rpcs[m.Method()]
	if !ok || s.version < h.since {
		return nil, faultf(9000, "%s", m.Method())
	}
	return h.serve(a, ctx, s, m)
}

func (a *Agent) getRPCMethods(_ context.Context, s *session, _ soap.Message) (soap.Message, error) {
	var list []string
	for _, name := range rpcOrder {
		if s.version >= rpcs[name].since {
			list = append(list, name)
		}
	}
	return &soap.GetRPCMethodsResponse{MethodList: list}, nil
}

// maxParameterKey is the size of ParameterKey and CommandKey (string(32)).
const maxKey = 32

// maxValues caps one GetParameterValues/GetParameterNames answer (9004).
const maxValues = 200000

func (a *Agent) setParameterValues(_ context.Context, _ *session, msg soap.Message) (soap.Message, error) {
	m := msg.(*soap.SetParameterValues)
	if len(m.ParameterKey) > maxKey {
		return nil, faultf(9003, "ParameterKey longer than %d", maxKey)
	}
	changes := make([]datamodel.Change, len(m.ParameterList))
	for i, p := range m.ParameterList {
		changes[i] = datamodel.Change{Path: p.Name, Value: p.Value, Type: p.Type}
	}
	key := m.ParameterKey
	if err := a.dm.SetValues(changes, datamodel.SetOptions{Origin: datamodel.OriginACS, ParameterKey: &key}); err != nil {
		return nil, err
	}
	// Status 1: committed, but some value takes effect only after a reboot.
	status := 0
	schema := a.dm.Schema()
	for _, c := range changes {
		if p := schema.Param(datamodel.SchemaPath(c.Path)); p != nil && p.Reboot {
			status = 1
		}
	}
	return &soap.SetParameterValuesResponse{Status: status}, nil
}

func (a *Agent) getParameterValues(_ context.Context, _ *session, msg soap.Message) (soap.Message, error) {
	m := msg.(*soap.GetParameterValues)
	vs, err := a.dm.GetValues(m.ParameterNames)
	if err != nil {
		return nil, err
	}
	if len(vs) > maxValues {
		return nil, faultf(9004, "%d values", len(vs))
	}
	pl := make([]soap.ParameterValue, len(vs))
	for i, v := range vs {
		pl[i] = soap.ParameterValue{Name: v.Name, Value: v.Value, Type: v.Type.XSD()}
	}
	return &soap.GetParameterValuesResponse{ParameterList: pl}, nil
}

func (a *Agent) getParameterNames(_ context.Context, _ *session, msg soap.Message) (soap.Message, error) {
	m := msg.(*soap.GetParameterNames)
	infos, err := a.dm.GetNames(m.ParameterPath, m.NextLevel)
	if err != nil {
		return nil, err
	}
	if len(infos) > maxValues {
		return nil, faultf(9004, "%d names", len(infos))
	}
	pl := make([]soap.ParameterInfo, len(infos))
	for i, in := range infos {
		pl[i] = soap.ParameterInfo{Name: in.Name, Writable: in.Writable}
	}
	return &soap.GetParameterNamesResponse{ParameterList: pl}, nil
}

func (a *Agent) setParameterAttributes(_ context.Context, s *session, msg soap.Message) (soap.Message, error) {
	m := msg.(*soap.SetParameterAttributes)
	changes := make([]datamodel.AttrChange, len(m.ParameterList))
	for i, p := range m.ParameterList {
		if p.NotificationChange && p.Notification >= 3 && p.Notification <= 6 && s.version >= soap.V12 {
			// CWMP 1.4 lightweight notification: defined, not implemented.
			return nil, faultf(9009, "lightweight notification (%d) is not supported", p.Notification)
		}
		changes[i] = datamodel.AttrChange{Name: p.Name, NotificationChange: p.NotificationChange, Notification: p.Notification,
			AccessListChange: p.AccessListChange, AccessList: p.AccessList}
	}
	if err := a.dm.SetAttributes(changes, datamodel.OriginACS); err != nil {
		return nil, err
	}
	return &soap.SetParameterAttributesResponse{}, nil
}

func (a *Agent) getParameterAttributes(_ context.Context, _ *session, msg soap.Message) (soap.Message, error) {
	m := msg.(*soap.GetParameterAttributes)
	as, err := a.dm.GetAttributes(m.ParameterNames)
	if err != nil {
		return nil, err
	}
	pl := make([]soap.ParameterAttribute, len(as))
	for i, x := range as {
		pl[i] = soap.ParameterAttribute{Name: x.Name, Notification: x.Notification, AccessList: x.AccessList}
	}
	return &soap.GetParameterAttributesResponse{ParameterList: pl}, nil
}

func (a *Agent) addObject(_ context.Context, _ *session, msg soap.Message) (soap.Message, error) {
	m := msg.(*soap.AddObject)
	if len(m.ParameterKey) > maxKey {
		return nil, faultf(9003, "ParameterKey longer than %d", maxKey)
	}
	if !strings.HasSuffix(m.ObjectName, ".") {
		return nil, faultf(9005, "%s is not an object path", m.ObjectName)
	}
	key := m.ParameterKey
	n, err := a.dm.AddObject(m.ObjectName, datamodel.SetOptions{Origin: datamodel.OriginACS, ParameterKey: &key})
	if err != nil {
		return nil, err
	}
	return &soap.AddObjectResponse{InstanceNumber: n, Status: 0}, nil
}

func (a *Agent) deleteObject(_ context.Context, _ *session, msg soap.Message) (soap.Message, error) {
	m := msg.(*soap.DeleteObject)
	if len(m.ParameterKey) > maxKey {
		return nil, faultf(9003, "ParameterKey longer than %d", maxKey)
	}
	if !strings.HasSuffix(m.ObjectName, ".") {
		return nil, faultf(9005, "%s is not an object instance path", m.ObjectName)
	}
	key := m.ParameterKey
	if err := a.dm.DeleteObject(m.ObjectName, datamodel.SetOptions{Origin: datamodel.OriginACS, ParameterKey: &key}); err != nil {
		return nil, err
	}
	return &soap.DeleteObjectResponse{Status: 0}, nil
}

// reboot answers at once; the reboot happens once the session has ended,
// and the next Inform carries 1 BOOT and M Reboot (TR-069 A.3.2.9).
func (a *Agent) reboot(_ context.Context, _ *session, msg soap.Message) (soap.Message, error) {
	m := msg.(*soap.Reboot)
	if len(m.CommandKey) > maxKey {
		return nil, faultf(9003, "CommandKey longer than %d", maxKey)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	before := len(a.st.Events)
	a.addEventLocked(EventMReboot, m.CommandKey, a.curInflight)
	if err := a.saveLocked(); err != nil {
		// Without M Reboot on disk, a power loss would make the reboot
		// look like a crash (1 BOOT alone): refuse it.
		a.st.Events = a.st.Events[:before]
		return nil, errNotSaved(err)
	}
	if a.rebootReq == nil {
		a.rebootReq = &rebootRequest{cause: "Reboot RPC"}
	}
	return &soap.RebootResponse{}, nil
}

// factoryReset: after the session the tree returns to factory values and
// the next session is 0 BOOTSTRAP and 1 BOOT (TR-069 A.4.1.6).
func (a *Agent) factoryReset(_ context.Context, _ *session, _ soap.Message) (soap.Message, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	was := a.st.FactoryReset
	a.st.FactoryReset = true
	if err := a.saveLocked(); err != nil {
		a.st.FactoryReset = was
		return nil, errNotSaved(err)
	}
	a.rebootReq = &rebootRequest{factory: true, cause: "FactoryReset RPC"}
	return &soap.FactoryResetResponse{}, nil
}

// scheduleInform: a session with 3 SCHEDULED and M ScheduleInform after
// DelaySeconds, remembered across restarts (TR-069 A.4.1.4).
func (a *Agent) scheduleInform(_ context.Context, _ *session, msg soap.Message) (soap.Message, error) {
	m := msg.(*soap.ScheduleInform)
	if m.DelaySeconds == 0 {
		return nil, faultf(9003, "DelaySeconds must be at least 1")
	}
	if len(m.CommandKey) > maxKey {
		return nil, faultf(9003, "CommandKey longer than %d", maxKey)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.st.Scheduled) >= 16 {
		return nil, faultf(9004, "too many pending ScheduleInforms")
	}
	a.st.Scheduled = append(a.st.Scheduled, Scheduled{At: a.clock.Now().Add(time.Duration(m.DelaySeconds) * time.Second), CommandKey: m.CommandKey})
	if err := a.saveLocked(); err != nil {
		a.st.Scheduled = a.st.Scheduled[:len(a.st.Scheduled)-1]
		return nil, errNotSaved(err)
	}
	return &soap.ScheduleInformResponse{}, nil
}
