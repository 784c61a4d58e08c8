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

// handler registers a method by its message type: the map's key is the
// type's own Method(), and the handler receives that type, so a key and a
// type that disagree cannot be written (the map once held unchecked type
// assertions).
func handler[M soap.Message](since soap.Version, f func(a *Agent, ctx context.Context, s *session, m M) (soap.Message, error)) (string, rpcHandler) {
	var zero M
	return zero.Method(), rpcHandler{since: since, serve: func(a *Agent, ctx context.Context, s *session, m soap.Message) (soap.Message, error) {
		mm, ok := m.(M)
		if !ok { // the decoder's type for this method name is another
			return nil, faultf(faultInternal, "%s decoded as %T", m.Method(), m)
		}
		return f(a, ctx, s, mm)
	}}
}

// rpcOrder is the order GetRPCMethodsResponse lists the methods in.
var rpcOrder = []string{
	"GetRPCMethods", "SetParameterValues", "GetParameterValues", "GetParameterNames",
	"SetParameterAttributes", "GetParameterAttributes", "AddObject", "DeleteObject",
	"Reboot", "Download", "Upload", "FactoryReset", "ScheduleInform", "GetQueuedTransfers",
	"GetAllQueuedTransfers", "ScheduleDownload", "CancelTransfer", "ChangeDUState",
}

var rpcs map[string]rpcHandler

func init() {
	rpcs = map[string]rpcHandler{}
	for _, h := range []func() (string, rpcHandler){
		func() (string, rpcHandler) { return handler(soap.V10, (*Agent).getRPCMethods) },
		func() (string, rpcHandler) { return handler(soap.V10, (*Agent).setParameterValues) },
		func() (string, rpcHandler) { return handler(soap.V10, (*Agent).getParameterValues) },
		func() (string, rpcHandler) { return handler(soap.V10, (*Agent).getParameterNames) },
		func() (string, rpcHandler) { return handler(soap.V10, (*Agent).setParameterAttributes) },
		func() (string, rpcHandler) { return handler(soap.V10, (*Agent).getParameterAttributes) },
		func() (string, rpcHandler) { return handler(soap.V10, (*Agent).addObject) },
		func() (string, rpcHandler) { return handler(soap.V10, (*Agent).deleteObject) },
		func() (string, rpcHandler) { return handler(soap.V10, (*Agent).reboot) },
		func() (string, rpcHandler) { return handler(soap.V10, (*Agent).download) },
		func() (string, rpcHandler) { return handler(soap.V10, (*Agent).upload) },
		func() (string, rpcHandler) { return handler(soap.V10, (*Agent).factoryReset) },
		func() (string, rpcHandler) { return handler(soap.V10, (*Agent).scheduleInform) },
		func() (string, rpcHandler) { return handler(soap.V10, (*Agent).getQueuedTransfers) },
		func() (string, rpcHandler) { return handler(soap.V11, (*Agent).getAllQueuedTransfers) },
		func() (string, rpcHandler) { return handler(soap.V12, (*Agent).scheduleDownload) },
		func() (string, rpcHandler) { return handler(soap.V12, (*Agent).cancelTransfer) },
		func() (string, rpcHandler) { return handler(soap.V12, (*Agent).changeDUState) },
	} {
		name, r := h()
		if _, dup := rpcs[name]; dup {
			panic("cwmp: two handlers for " + name)
		}
		rpcs[name] = r
	}
	for _, name := range rpcOrder {
		if _, ok := rpcs[name]; !ok {
			panic("cwmp: no handler for " + name)
		}
	}
}

// serve answers one ACS request, or returns the error to turn into a fault.
func (a *Agent) serve(ctx context.Context, s *session, m soap.Message) (soap.Message, error) {
	h, ok := rpcs[m.Method()]
	if !ok || s.version < h.since {
		return nil, faultf(faultMethodNotSupported, "%s", m.Method())
	}
	return h.serve(a, ctx, s, m)
}

func (a *Agent) getRPCMethods(_ context.Context, s *session, _ *soap.GetRPCMethods) (soap.Message, error) {
	var list []string
	for _, name := range rpcOrder {
		if name == "ChangeDUState" && a.cfg.SoftwareModules == nil {
			continue // the root has no SoftwareModules
		}
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

func (a *Agent) setParameterValues(_ context.Context, _ *session, m *soap.SetParameterValues) (soap.Message, error) {
	if len(m.ParameterKey) > maxKey {
		return nil, faultf(faultInvalidArguments, "ParameterKey longer than %d", maxKey)
	}
	changes := make([]datamodel.Change, len(m.ParameterList))
	for i, p := range m.ParameterList {
		changes[i] = datamodel.Change{Path: p.Name, Value: p.Value, Type: p.Type}
	}
	key := m.ParameterKey
	created, err := a.autoCreate(changes)
	if err != nil {
		return nil, err
	}
	if err := a.dm.SetValues(changes, datamodel.SetOptions{Origin: datamodel.OriginACS, ParameterKey: &key}); err != nil {
		// All or nothing: the instances made for it go again.
		for i := len(created) - 1; i >= 0; i-- {
			_ = a.dm.DeleteObject(created[i], datamodel.SetOptions{Origin: datamodel.OriginDevice})
		}
		return nil, err
	}
	// Status 1: committed, but some value takes effect only after a
	// reboot or at the end of the session.
	status := 0
	schema := a.dm.Schema()
	for _, c := range changes {
		if p := schema.Param(datamodel.SchemaPath(c.Path)); p != nil && p.Reboot {
			status = 1
		}
		if a.cfg.AppliedAfterSession != nil && a.cfg.AppliedAfterSession(c.Path) {
			status = 1
		}
	}
	return &soap.SetParameterValuesResponse{Status: status}, nil
}

func (a *Agent) getParameterValues(_ context.Context, _ *session, m *soap.GetParameterValues) (soap.Message, error) {
	vs, err := a.dm.GetValues(m.ParameterNames)
	if err != nil {
		return nil, err
	}
	if len(vs) > maxValues {
		return nil, faultf(faultResources, "%d values", len(vs))
	}
	pl := make([]soap.ParameterValue, len(vs))
	nm := a.namer()
	for i, v := range vs {
		pl[i] = soap.ParameterValue{Name: nm.name(v.Name), Value: v.Value, Type: v.Type.XSD()}
	}
	return &soap.GetParameterValuesResponse{ParameterList: pl}, nil
}

func (a *Agent) getParameterNames(_ context.Context, _ *session, m *soap.GetParameterNames) (soap.Message, error) {
	infos, err := a.dm.GetNames(m.ParameterPath, m.NextLevel)
	if err != nil {
		return nil, err
	}
	if len(infos) > maxValues {
		return nil, faultf(faultResources, "%d names", len(infos))
	}
	pl := make([]soap.ParameterInfo, len(infos))
	nm := a.namer()
	for i, in := range infos {
		pl[i] = soap.ParameterInfo{Name: nm.name(in.Name), Writable: in.Writable}
	}
	return &soap.GetParameterNamesResponse{ParameterList: pl}, nil
}

func (a *Agent) setParameterAttributes(_ context.Context, s *session, m *soap.SetParameterAttributes) (soap.Message, error) {
	changes := make([]datamodel.AttrChange, len(m.ParameterList))
	for i, p := range m.ParameterList {
		if p.NotificationChange && p.Notification >= 3 && p.Notification <= 6 && s.version >= soap.V12 {
			// CWMP 1.4 lightweight notification: defined, not implemented.
			return nil, faultf(faultNotifyRejected, "lightweight notification (%d) is not supported", p.Notification)
		}
		changes[i] = datamodel.AttrChange{Name: p.Name, NotificationChange: p.NotificationChange, Notification: p.Notification,
			AccessListChange: p.AccessListChange, AccessList: p.AccessList}
	}
	if err := a.dm.SetAttributes(changes, datamodel.OriginACS); err != nil {
		return nil, err
	}
	return &soap.SetParameterAttributesResponse{}, nil
}

func (a *Agent) getParameterAttributes(_ context.Context, _ *session, m *soap.GetParameterAttributes) (soap.Message, error) {
	as, err := a.dm.GetAttributes(m.ParameterNames)
	if err != nil {
		return nil, err
	}
	pl := make([]soap.ParameterAttribute, len(as))
	nm := a.namer()
	for i, x := range as {
		pl[i] = soap.ParameterAttribute{Name: nm.name(x.Name), Notification: x.Notification, AccessList: x.AccessList}
	}
	return &soap.GetParameterAttributesResponse{ParameterList: pl}, nil
}

func (a *Agent) addObject(_ context.Context, _ *session, m *soap.AddObject) (soap.Message, error) {
	if len(m.ParameterKey) > maxKey {
		return nil, faultf(faultInvalidArguments, "ParameterKey longer than %d", maxKey)
	}
	if !strings.HasSuffix(m.ObjectName, ".") {
		return nil, faultf(faultInvalidName, "%s is not an object path", m.ObjectName)
	}
	key := m.ParameterKey
	opt := datamodel.SetOptions{Origin: datamodel.OriginACS, ParameterKey: &key}
	if table, alias, ok := datamodel.SplitAlias(m.ObjectName); ok {
		// Alias-Based Addressing (TR-069 3.6.1, A.3.2.6): the new
		// instance takes the alias the ACS chose.
		if a.param("ManagementServer.AliasBasedAddressing") != "true" {
			return nil, faultf(faultInvalidName, "%s: alias-based addressing is not supported", m.ObjectName)
		}
		if _, err := a.dm.GetNames(m.ObjectName, true); err == nil {
			return nil, faultf(faultInvalidArguments, "%s exists already", m.ObjectName)
		}
		n, err := a.dm.AddInstance(table, map[string]string{"Alias": alias}, opt)
		if err != nil {
			return nil, err
		}
		return &soap.AddObjectResponse{InstanceNumber: n, Status: 0}, nil
	}
	n, err := a.dm.AddObject(m.ObjectName, opt)
	if err != nil {
		return nil, err
	}
	return &soap.AddObjectResponse{InstanceNumber: n, Status: 0}, nil
}

func (a *Agent) deleteObject(_ context.Context, _ *session, m *soap.DeleteObject) (soap.Message, error) {
	if len(m.ParameterKey) > maxKey {
		return nil, faultf(faultInvalidArguments, "ParameterKey longer than %d", maxKey)
	}
	if !strings.HasSuffix(m.ObjectName, ".") {
		return nil, faultf(faultInvalidName, "%s is not an object instance path", m.ObjectName)
	}
	key := m.ParameterKey
	if err := a.dm.DeleteObject(m.ObjectName, datamodel.SetOptions{Origin: datamodel.OriginACS, ParameterKey: &key}); err != nil {
		return nil, err
	}
	return &soap.DeleteObjectResponse{Status: 0}, nil
}

// reboot answers at once; the reboot happens once the session has ended,
// and the next Inform carries 1 BOOT and M Reboot (TR-069 A.3.2.9).
func (a *Agent) reboot(_ context.Context, _ *session, m *soap.Reboot) (soap.Message, error) {
	if len(m.CommandKey) > maxKey {
		return nil, faultf(faultInvalidArguments, "CommandKey longer than %d", maxKey)
	}
	before := len(a.st.Events)
	a.addEvent(EventMReboot, m.CommandKey, a.inflight())
	if err := a.save(); err != nil {
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
func (a *Agent) factoryReset(_ context.Context, _ *session, _ *soap.FactoryReset) (soap.Message, error) {
	was := a.st.FactoryReset
	a.st.FactoryReset = true
	if err := a.save(); err != nil {
		a.st.FactoryReset = was
		return nil, errNotSaved(err)
	}
	a.rebootReq = &rebootRequest{factory: true, cause: "FactoryReset RPC"}
	return &soap.FactoryResetResponse{}, nil
}

// scheduleInform: a session with 3 SCHEDULED and M ScheduleInform after
// DelaySeconds, remembered across restarts (TR-069 A.4.1.4).
func (a *Agent) scheduleInform(_ context.Context, _ *session, m *soap.ScheduleInform) (soap.Message, error) {
	if m.DelaySeconds == 0 {
		return nil, faultf(faultInvalidArguments, "DelaySeconds must be at least 1")
	}
	if len(m.CommandKey) > maxKey {
		return nil, faultf(faultInvalidArguments, "CommandKey longer than %d", maxKey)
	}
	if len(a.st.Scheduled) >= 16 {
		return nil, faultf(faultResources, "too many pending ScheduleInforms")
	}
	a.st.Scheduled = append(a.st.Scheduled, Scheduled{At: a.clock.Now().Add(time.Duration(m.DelaySeconds) * time.Second), CommandKey: m.CommandKey})
	if err := a.save(); err != nil {
		a.st.Scheduled = a.st.Scheduled[:len(a.st.Scheduled)-1]
		return nil, errNotSaved(err)
	}
	return &soap.ScheduleInformResponse{}, nil
}
