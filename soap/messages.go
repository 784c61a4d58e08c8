package soap

import (
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// Structures shared by several messages (TR-069 A.3, cwmp-1-x.xsd).

// ParameterValue is a ParameterValueStruct. Type is the xsi:type
// ("xsd:unsignedInt"); "" encodes as xsd:string and means "absent" on decode.
type ParameterValue struct {
	Name  string
	Value string
	Type  string
}

// ParameterInfo is a ParameterInfoStruct of GetParameterNamesResponse.
type ParameterInfo struct {
	Name     string
	Writable bool
}

// ParameterAttribute is a ParameterAttributeStruct.
type ParameterAttribute struct {
	Name         string
	Notification int
	AccessList   []string
}

// SetParameterAttributesStruct is one entry of SetParameterAttributes.
type SetParameterAttributesStruct struct {
	Name               string
	NotificationChange bool
	Notification       int
	AccessListChange   bool
	AccessList         []string
}

// DeviceID is the DeviceIdStruct of Inform.
type DeviceID struct {
	Manufacturer string
	OUI          string
	ProductClass string
	SerialNumber string
}

// EventStruct is one event of Inform.
type EventStruct struct {
	EventCode  string
	CommandKey string
}

// FaultStruct is the TransferComplete fault (FaultCode 0 = success).
type FaultStruct struct {
	FaultCode   int
	FaultString string
}

// QueuedTransfer is a QueuedTransferStruct (State 1 not started, 2 in
// progress, 3 completed).
type QueuedTransfer struct {
	CommandKey string
	State      int
}

// AllQueuedTransfer is an AllQueuedTransferStruct.
type AllQueuedTransfer struct {
	CommandKey     string
	State          int
	IsDownload     bool
	FileType       string
	FileSize       uint32
	TargetFileName string
}

// TimeWindow is a TimeWindowStruct of ScheduleDownload.
type TimeWindow struct {
	WindowStart uint32
	WindowEnd   uint32
	WindowMode  string
	UserMessage string
	MaxRetries  int
}

// Arg is an ArgStruct of RequestDownload.
type Arg struct {
	Name  string
	Value string
}

var registry = map[string]func() Message{}

func register(fs ...func() Message) {
	for _, f := range fs {
		registry[f().Method()] = f
	}
}

func init() {
	register(
		func() Message { return &GetRPCMethods{} },
		func() Message { return &GetRPCMethodsResponse{} },
		func() Message { return &SetParameterValues{} },
		func() Message { return &SetParameterValuesResponse{} },
		func() Message { return &GetParameterValues{} },
		func() Message { return &GetParameterValuesResponse{} },
		func() Message { return &GetParameterNames{} },
		func() Message { return &GetParameterNamesResponse{} },
		func() Message { return &SetParameterAttributes{} },
		func() Message { return &SetParameterAttributesResponse{} },
		func() Message { return &GetParameterAttributes{} },
		func() Message { return &GetParameterAttributesResponse{} },
		func() Message { return &AddObject{} },
		func() Message { return &AddObjectResponse{} },
		func() Message { return &DeleteObject{} },
		func() Message { return &DeleteObjectResponse{} },
		func() Message { return &Reboot{} },
		func() Message { return &RebootResponse{} },
		func() Message { return &Download{} },
		func() Message { return &DownloadResponse{} },
		func() Message { return &Upload{} },
		func() Message { return &UploadResponse{} },
		func() Message { return &FactoryReset{} },
		func() Message { return &FactoryResetResponse{} },
		func() Message { return &ScheduleInform{} },
		func() Message { return &ScheduleInformResponse{} },
		func() Message { return &GetQueuedTransfers{} },
		func() Message { return &GetQueuedTransfersResponse{} },
		func() Message { return &GetAllQueuedTransfers{} },
		func() Message { return &GetAllQueuedTransfersResponse{} },
		func() Message { return &ScheduleDownload{} },
		func() Message { return &ScheduleDownloadResponse{} },
		func() Message { return &CancelTransfer{} },
		func() Message { return &CancelTransferResponse{} },
		func() Message { return &Inform{} },
		func() Message { return &InformResponse{} },
		func() Message { return &TransferComplete{} },
		func() Message { return &TransferCompleteResponse{} },
		func() Message { return &AutonomousTransferComplete{} },
		func() Message { return &AutonomousTransferCompleteResponse{} },
		func() Message { return &RequestDownload{} },
		func() Message { return &RequestDownloadResponse{} },
		func() Message { return &Kicked{} },
		func() Message { return &KickedResponse{} },
		func() Message { return &ChangeDUState{} },
		func() Message { return &ChangeDUStateResponse{} },
		func() Message { return &DUStateChangeComplete{} },
		func() Message { return &DUStateChangeCompleteResponse{} },
		func() Message { return &AutonomousDUStateChangeComplete{} },
		func() Message { return &AutonomousDUStateChangeCompleteResponse{} },
	)
}

// Methods lists every method name the codec knows (requests and responses).
func Methods() []string {
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	return out
}

func newDec(m Message, e *etree.Element) *dec { return &dec{method: m.Method(), e: e} }

// ---- GetRPCMethods (A.3.1.1, both directions)

// GetRPCMethods asks for the list of methods the other side supports.
type GetRPCMethods struct{}

func (*GetRPCMethods) Method() string              { return "GetRPCMethods" }
func (*GetRPCMethods) encode(*writer)              {}
func (*GetRPCMethods) decode(*etree.Element) error { return nil }

// GetRPCMethodsResponse lists supported methods.
type GetRPCMethodsResponse struct{ MethodList []string }

func (*GetRPCMethodsResponse) Method() string     { return "GetRPCMethodsResponse" }
func (m *GetRPCMethodsResponse) encode(w *writer) { w.strings("MethodList", m.MethodList) }
func (m *GetRPCMethodsResponse) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.MethodList = d.strs("MethodList")
	return d.err
}

// ---- SetParameterValues (A.3.2.1)

// SetParameterValues writes parameters, all or nothing.
type SetParameterValues struct {
	ParameterList []ParameterValue
	ParameterKey  string
}

func (*SetParameterValues) Method() string { return "SetParameterValues" }
func (m *SetParameterValues) encode(w *writer) {
	encodeParamValues(w, m.ParameterList)
	w.elem("ParameterKey", m.ParameterKey)
}
func (m *SetParameterValues) decode(e *etree.Element) error {
	d := newDec(m, e)
	if child(e, "ParameterList") == nil {
		d.fail("ParameterList", errMissing)
	}
	m.ParameterList = d.paramValues("ParameterList")
	m.ParameterKey = d.str("ParameterKey")
	return d.err
}

// SetParameterValuesResponse: Status 0 applied, 1 committed but not yet applied.
type SetParameterValuesResponse struct{ Status int }

func (*SetParameterValuesResponse) Method() string     { return "SetParameterValuesResponse" }
func (m *SetParameterValuesResponse) encode(w *writer) { w.int("Status", int64(m.Status)) }
func (m *SetParameterValuesResponse) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.Status = d.int("Status")
	return d.err
}

// ---- GetParameterValues (A.3.2.2)

// GetParameterValues reads parameters; names may be partial paths.
type GetParameterValues struct{ ParameterNames []string }

func (*GetParameterValues) Method() string     { return "GetParameterValues" }
func (m *GetParameterValues) encode(w *writer) { w.strings("ParameterNames", m.ParameterNames) }
func (m *GetParameterValues) decode(e *etree.Element) error {
	d := newDec(m, e)
	if child(e, "ParameterNames") == nil {
		d.fail("ParameterNames", errMissing)
	}
	m.ParameterNames = d.strs("ParameterNames")
	return d.err
}

// GetParameterValuesResponse carries the values.
type GetParameterValuesResponse struct{ ParameterList []ParameterValue }

func (*GetParameterValuesResponse) Method() string     { return "GetParameterValuesResponse" }
func (m *GetParameterValuesResponse) encode(w *writer) { encodeParamValues(w, m.ParameterList) }
func (m *GetParameterValuesResponse) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.ParameterList = d.paramValues("ParameterList")
	return d.err
}

// paramValuesSize estimates the encoded size of a ParameterValueStruct list.
func paramValuesSize(list []ParameterValue) int {
	n := 0
	for i := range list {
		n += len(list[i].Name) + len(list[i].Value) + 128
	}
	return n
}

func (m *GetParameterValuesResponse) sizeHint() int { return paramValuesSize(m.ParameterList) }
func (m *Inform) sizeHint() int                     { return paramValuesSize(m.ParameterList) }
func (m *SetParameterValues) sizeHint() int         { return paramValuesSize(m.ParameterList) }

func (m *GetParameterNamesResponse) sizeHint() int {
	n := 0
	for i := range m.ParameterList {
		n += len(m.ParameterList[i].Name) + 112
	}
	return n
}

func (m *GetParameterAttributesResponse) sizeHint() int {
	n := 0
	for i := range m.ParameterList {
		n += len(m.ParameterList[i].Name) + 192
	}
	return n
}

func encodeParamValues(w *writer, list []ParameterValue) {
	w.array("ParameterList", "cwmp:ParameterValueStruct", len(list))
	for i := range list {
		p := &list[i]
		w.raw("<ParameterValueStruct>\n<Name>")
		w.text(p.Name)
		w.raw("</Name>\n<Value xsi:type=\"")
		if p.Type == "" {
			w.raw("xsd:string")
		} else {
			w.text(p.Type)
		}
		w.raw("\">")
		w.text(p.Value)
		w.raw("</Value>\n</ParameterValueStruct>\n")
	}
	w.close("ParameterList")
}

// ---- GetParameterNames (A.3.2.3)

// GetParameterNames lists names below a path.
type GetParameterNames struct {
	ParameterPath string
	NextLevel     bool
}

func (*GetParameterNames) Method() string { return "GetParameterNames" }
func (m *GetParameterNames) encode(w *writer) {
	w.elem("ParameterPath", m.ParameterPath)
	w.bool("NextLevel", m.NextLevel)
}
func (m *GetParameterNames) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.ParameterPath = strings.TrimSpace(d.str("ParameterPath"))
	m.NextLevel = d.bool("NextLevel")
	return d.err
}

// GetParameterNamesResponse lists ParameterInfoStructs.
type GetParameterNamesResponse struct{ ParameterList []ParameterInfo }

func (*GetParameterNamesResponse) Method() string { return "GetParameterNamesResponse" }
func (m *GetParameterNamesResponse) encode(w *writer) {
	w.array("ParameterList", "cwmp:ParameterInfoStruct", len(m.ParameterList))
	for _, p := range m.ParameterList {
		w.raw("<ParameterInfoStruct>\n")
		w.elem("Name", p.Name)
		w.bool("Writable", p.Writable)
		w.raw("</ParameterInfoStruct>\n")
	}
	w.close("ParameterList")
}
func (m *GetParameterNamesResponse) decode(e *etree.Element) error {
	d := newDec(m, e)
	for _, s := range d.elems("ParameterList") {
		sd := d.sub(s)
		m.ParameterList = append(m.ParameterList, ParameterInfo{Name: strings.TrimSpace(sd.str("Name")), Writable: sd.bool("Writable")})
		if sd.err != nil {
			return sd.err
		}
	}
	return d.err
}

// ---- SetParameterAttributes (A.3.2.4)

// SetParameterAttributes changes Notification and AccessList attributes.
type SetParameterAttributes struct {
	ParameterList []SetParameterAttributesStruct
}

func (*SetParameterAttributes) Method() string { return "SetParameterAttributes" }
func (m *SetParameterAttributes) encode(w *writer) {
	w.array("ParameterList", "cwmp:SetParameterAttributesStruct", len(m.ParameterList))
	for _, p := range m.ParameterList {
		w.raw("<SetParameterAttributesStruct>\n")
		w.elem("Name", p.Name)
		w.bool("NotificationChange", p.NotificationChange)
		w.int("Notification", int64(p.Notification))
		w.bool("AccessListChange", p.AccessListChange)
		w.strings("AccessList", p.AccessList)
		w.raw("</SetParameterAttributesStruct>\n")
	}
	w.close("ParameterList")
}
func (m *SetParameterAttributes) decode(e *etree.Element) error {
	d := newDec(m, e)
	if child(e, "ParameterList") == nil {
		d.fail("ParameterList", errMissing)
	}
	for _, s := range d.elems("ParameterList") {
		sd := d.sub(s)
		a := SetParameterAttributesStruct{
			Name:               strings.TrimSpace(sd.str("Name")),
			NotificationChange: sd.bool("NotificationChange"),
			AccessListChange:   sd.bool("AccessListChange"),
		}
		// GenieACS sends an empty Notification when NotificationChange is
		// false; only read it when it matters.
		if a.NotificationChange {
			a.Notification = sd.int("Notification")
		}
		if a.AccessListChange {
			a.AccessList = sd.strs("AccessList")
		}
		if sd.err != nil {
			return sd.err
		}
		m.ParameterList = append(m.ParameterList, a)
	}
	return d.err
}

// SetParameterAttributesResponse is empty.
type SetParameterAttributesResponse struct{}

func (*SetParameterAttributesResponse) Method() string              { return "SetParameterAttributesResponse" }
func (*SetParameterAttributesResponse) encode(*writer)              {}
func (*SetParameterAttributesResponse) decode(*etree.Element) error { return nil }

// ---- GetParameterAttributes (A.3.2.5)

// GetParameterAttributes reads attributes.
type GetParameterAttributes struct{ ParameterNames []string }

func (*GetParameterAttributes) Method() string     { return "GetParameterAttributes" }
func (m *GetParameterAttributes) encode(w *writer) { w.strings("ParameterNames", m.ParameterNames) }
func (m *GetParameterAttributes) decode(e *etree.Element) error {
	d := newDec(m, e)
	if child(e, "ParameterNames") == nil {
		d.fail("ParameterNames", errMissing)
	}
	m.ParameterNames = d.strs("ParameterNames")
	return d.err
}

// GetParameterAttributesResponse lists ParameterAttributeStructs.
type GetParameterAttributesResponse struct{ ParameterList []ParameterAttribute }

func (*GetParameterAttributesResponse) Method() string { return "GetParameterAttributesResponse" }
func (m *GetParameterAttributesResponse) encode(w *writer) {
	w.array("ParameterList", "cwmp:ParameterAttributeStruct", len(m.ParameterList))
	for _, p := range m.ParameterList {
		w.raw("<ParameterAttributeStruct>\n")
		w.elem("Name", p.Name)
		w.int("Notification", int64(p.Notification))
		w.strings("AccessList", p.AccessList)
		w.raw("</ParameterAttributeStruct>\n")
	}
	w.close("ParameterList")
}
func (m *GetParameterAttributesResponse) decode(e *etree.Element) error {
	d := newDec(m, e)
	for _, s := range d.elems("ParameterList") {
		sd := d.sub(s)
		a := ParameterAttribute{Name: strings.TrimSpace(sd.str("Name")), Notification: sd.int("Notification"), AccessList: sd.strs("AccessList")}
		if sd.err != nil {
			return sd.err
		}
		m.ParameterList = append(m.ParameterList, a)
	}
	return d.err
}

// ---- AddObject / DeleteObject (A.3.2.6, A.3.2.7)

// AddObject creates a table instance.
type AddObject struct {
	ObjectName   string
	ParameterKey string
}

func (*AddObject) Method() string { return "AddObject" }
func (m *AddObject) encode(w *writer) {
	w.elem("ObjectName", m.ObjectName)
	w.elem("ParameterKey", m.ParameterKey)
}
func (m *AddObject) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.ObjectName = strings.TrimSpace(d.req("ObjectName"))
	m.ParameterKey = d.str("ParameterKey")
	return d.err
}

// AddObjectResponse returns the new instance number.
type AddObjectResponse struct {
	InstanceNumber uint32
	Status         int
}

func (*AddObjectResponse) Method() string { return "AddObjectResponse" }
func (m *AddObjectResponse) encode(w *writer) {
	w.uint("InstanceNumber", uint64(m.InstanceNumber))
	w.int("Status", int64(m.Status))
}
func (m *AddObjectResponse) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.InstanceNumber = d.u32("InstanceNumber")
	m.Status = d.int("Status")
	return d.err
}

// DeleteObject removes a table instance.
type DeleteObject struct {
	ObjectName   string
	ParameterKey string
}

func (*DeleteObject) Method() string { return "DeleteObject" }
func (m *DeleteObject) encode(w *writer) {
	w.elem("ObjectName", m.ObjectName)
	w.elem("ParameterKey", m.ParameterKey)
}
func (m *DeleteObject) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.ObjectName = strings.TrimSpace(d.req("ObjectName"))
	m.ParameterKey = d.str("ParameterKey")
	return d.err
}

// DeleteObjectResponse carries the status.
type DeleteObjectResponse struct{ Status int }

func (*DeleteObjectResponse) Method() string     { return "DeleteObjectResponse" }
func (m *DeleteObjectResponse) encode(w *writer) { w.int("Status", int64(m.Status)) }
func (m *DeleteObjectResponse) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.Status = d.int("Status")
	return d.err
}

// ---- Reboot (A.3.2.9)

// Reboot asks the CPE to reboot after the session.
type Reboot struct{ CommandKey string }

func (*Reboot) Method() string     { return "Reboot" }
func (m *Reboot) encode(w *writer) { w.elem("CommandKey", m.CommandKey) }
func (m *Reboot) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.CommandKey = d.str("CommandKey")
	return d.err
}

// RebootResponse is empty.
type RebootResponse struct{}

func (*RebootResponse) Method() string              { return "RebootResponse" }
func (*RebootResponse) encode(*writer)              {}
func (*RebootResponse) decode(*etree.Element) error { return nil }

// ---- Download (A.3.2.8)

// Download asks the CPE to fetch a file.
type Download struct {
	CommandKey     string
	FileType       string
	URL            string
	Username       string
	Password       string
	FileSize       uint32
	TargetFileName string
	DelaySeconds   uint32
	SuccessURL     string
	FailureURL     string
}

func (*Download) Method() string { return "Download" }
func (m *Download) encode(w *writer) {
	encodeTransferHead(w, m.CommandKey, m.FileType, m.URL, m.Username, m.Password)
	w.uint("FileSize", uint64(m.FileSize))
	w.elem("TargetFileName", m.TargetFileName)
	w.uint("DelaySeconds", uint64(m.DelaySeconds))
	w.elem("SuccessURL", m.SuccessURL)
	w.elem("FailureURL", m.FailureURL)
}
func (m *Download) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.CommandKey, m.FileType, m.URL, m.Username, m.Password = d.transferHead()
	m.FileSize = d.u32("FileSize")
	m.TargetFileName = d.str("TargetFileName")
	m.DelaySeconds = d.u32("DelaySeconds")
	m.SuccessURL = d.str("SuccessURL")
	m.FailureURL = d.str("FailureURL")
	return d.err
}

// encodeTransferHead writes the arguments Download, Upload and
// ScheduleDownload begin with.
func encodeTransferHead(w *writer, commandKey, fileType, url, username, password string) {
	w.elem("CommandKey", commandKey)
	w.elem("FileType", fileType)
	w.elem("URL", url)
	w.elem("Username", username)
	w.elem("Password", password)
}

// transferHead reads them; FileType and URL are required.
func (d *dec) transferHead() (commandKey, fileType, url, username, password string) {
	return d.str("CommandKey"), strings.TrimSpace(d.req("FileType")), strings.TrimSpace(d.req("URL")), d.str("Username"), d.str("Password")
}

// TransferResponse is the shape of DownloadResponse and UploadResponse.
type TransferResponse struct {
	Status       int
	StartTime    time.Time
	CompleteTime time.Time
}

func (m *TransferResponse) encode(w *writer) {
	w.int("Status", int64(m.Status))
	w.time("StartTime", m.StartTime)
	w.time("CompleteTime", m.CompleteTime)
}
func (m *TransferResponse) decodeFrom(d *dec) error {
	m.Status = d.int("Status")
	m.StartTime = d.time("StartTime")
	m.CompleteTime = d.time("CompleteTime")
	return d.err
}

// DownloadResponse: Status 1 means a TransferComplete will follow.
type DownloadResponse struct{ TransferResponse }

func (*DownloadResponse) Method() string { return "DownloadResponse" }
func (m *DownloadResponse) decode(e *etree.Element) error {
	return m.decodeFrom(newDec(m, e))
}

// ---- Upload (A.4.1.5)

// Upload asks the CPE to send a file.
type Upload struct {
	CommandKey   string
	FileType     string
	URL          string
	Username     string
	Password     string
	DelaySeconds uint32
}

func (*Upload) Method() string { return "Upload" }
func (m *Upload) encode(w *writer) {
	encodeTransferHead(w, m.CommandKey, m.FileType, m.URL, m.Username, m.Password)
	w.uint("DelaySeconds", uint64(m.DelaySeconds))
}
func (m *Upload) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.CommandKey, m.FileType, m.URL, m.Username, m.Password = d.transferHead()
	m.DelaySeconds = d.u32("DelaySeconds")
	return d.err
}

// UploadResponse: Status 1 means a TransferComplete will follow.
type UploadResponse struct{ TransferResponse }

func (*UploadResponse) Method() string { return "UploadResponse" }
func (m *UploadResponse) decode(e *etree.Element) error {
	return m.decodeFrom(newDec(m, e))
}

// ---- FactoryReset (A.4.1.6)

// FactoryReset asks the CPE to return to factory defaults after the session.
type FactoryReset struct{}

func (*FactoryReset) Method() string              { return "FactoryReset" }
func (*FactoryReset) encode(*writer)              {}
func (*FactoryReset) decode(*etree.Element) error { return nil }

// FactoryResetResponse is empty.
type FactoryResetResponse struct{}

func (*FactoryResetResponse) Method() string              { return "FactoryResetResponse" }
func (*FactoryResetResponse) encode(*writer)              {}
func (*FactoryResetResponse) decode(*etree.Element) error { return nil }

// ---- ScheduleInform (A.4.1.4)

// ScheduleInform asks for a session after DelaySeconds.
type ScheduleInform struct {
	DelaySeconds uint32
	CommandKey   string
}

func (*ScheduleInform) Method() string { return "ScheduleInform" }
func (m *ScheduleInform) encode(w *writer) {
	w.uint("DelaySeconds", uint64(m.DelaySeconds))
	w.elem("CommandKey", m.CommandKey)
}
func (m *ScheduleInform) decode(e *etree.Element) error {
	d := newDec(m, e)
	if child(e, "DelaySeconds") == nil {
		d.fail("DelaySeconds", errMissing)
	}
	m.DelaySeconds = d.u32("DelaySeconds")
	m.CommandKey = d.str("CommandKey")
	return d.err
}

// ScheduleInformResponse is empty.
type ScheduleInformResponse struct{}

func (*ScheduleInformResponse) Method() string              { return "ScheduleInformResponse" }
func (*ScheduleInformResponse) encode(*writer)              {}
func (*ScheduleInformResponse) decode(*etree.Element) error { return nil }

// ---- GetQueuedTransfers (A.4.1.1) and GetAllQueuedTransfers (A.4.1.7)

// GetQueuedTransfers lists transfers the ACS requested.
type GetQueuedTransfers struct{}

func (*GetQueuedTransfers) Method() string              { return "GetQueuedTransfers" }
func (*GetQueuedTransfers) encode(*writer)              {}
func (*GetQueuedTransfers) decode(*etree.Element) error { return nil }

// GetQueuedTransfersResponse lists QueuedTransferStructs (at most 16).
type GetQueuedTransfersResponse struct{ TransferList []QueuedTransfer }

func (*GetQueuedTransfersResponse) Method() string { return "GetQueuedTransfersResponse" }
func (m *GetQueuedTransfersResponse) encode(w *writer) {
	w.array("TransferList", "cwmp:QueuedTransferStruct", len(m.TransferList))
	for _, t := range m.TransferList {
		w.raw("<QueuedTransferStruct>\n")
		w.elem("CommandKey", t.CommandKey)
		w.int("State", int64(t.State))
		w.raw("</QueuedTransferStruct>\n")
	}
	w.close("TransferList")
}
func (m *GetQueuedTransfersResponse) decode(e *etree.Element) error {
	d := newDec(m, e)
	for _, s := range d.elems("TransferList") {
		sd := d.sub(s)
		m.TransferList = append(m.TransferList, QueuedTransfer{CommandKey: sd.str("CommandKey"), State: sd.int("State")})
		if sd.err != nil {
			return sd.err
		}
	}
	return d.err
}

// GetAllQueuedTransfers lists all transfers, whoever requested them.
type GetAllQueuedTransfers struct{}

func (*GetAllQueuedTransfers) Method() string              { return "GetAllQueuedTransfers" }
func (*GetAllQueuedTransfers) encode(*writer)              {}
func (*GetAllQueuedTransfers) decode(*etree.Element) error { return nil }

// GetAllQueuedTransfersResponse lists AllQueuedTransferStructs.
type GetAllQueuedTransfersResponse struct{ TransferList []AllQueuedTransfer }

func (*GetAllQueuedTransfersResponse) Method() string { return "GetAllQueuedTransfersResponse" }
func (m *GetAllQueuedTransfersResponse) encode(w *writer) {
	w.array("TransferList", "cwmp:AllQueuedTransferStruct", len(m.TransferList))
	for _, t := range m.TransferList {
		w.raw("<AllQueuedTransferStruct>\n")
		w.elem("CommandKey", t.CommandKey)
		w.int("State", int64(t.State))
		w.bool("IsDownload", t.IsDownload)
		w.elem("FileType", t.FileType)
		w.uint("FileSize", uint64(t.FileSize))
		w.elem("TargetFileName", t.TargetFileName)
		w.raw("</AllQueuedTransferStruct>\n")
	}
	w.close("TransferList")
}
func (m *GetAllQueuedTransfersResponse) decode(e *etree.Element) error {
	d := newDec(m, e)
	for _, s := range d.elems("TransferList") {
		sd := d.sub(s)
		m.TransferList = append(m.TransferList, AllQueuedTransfer{
			CommandKey: sd.str("CommandKey"), State: sd.int("State"), IsDownload: sd.bool("IsDownload"),
			FileType: sd.str("FileType"), FileSize: sd.u32("FileSize"), TargetFileName: sd.str("TargetFileName"),
		})
		if sd.err != nil {
			return sd.err
		}
	}
	return d.err
}

// ---- ScheduleDownload and CancelTransfer (CWMP 1.2, A.4.1.8, A.4.1.9)

// ScheduleDownload asks for a download inside time windows.
type ScheduleDownload struct {
	CommandKey     string
	FileType       string
	URL            string
	Username       string
	Password       string
	FileSize       uint32
	TargetFileName string
	TimeWindowList []TimeWindow
}

func (*ScheduleDownload) Method() string { return "ScheduleDownload" }
func (m *ScheduleDownload) encode(w *writer) {
	encodeTransferHead(w, m.CommandKey, m.FileType, m.URL, m.Username, m.Password)
	w.uint("FileSize", uint64(m.FileSize))
	w.elem("TargetFileName", m.TargetFileName)
	w.array("TimeWindowList", "cwmp:TimeWindowStruct", len(m.TimeWindowList))
	for _, tw := range m.TimeWindowList {
		w.raw("<TimeWindowStruct>\n")
		w.uint("WindowStart", uint64(tw.WindowStart))
		w.uint("WindowEnd", uint64(tw.WindowEnd))
		w.elem("WindowMode", tw.WindowMode)
		w.elem("UserMessage", tw.UserMessage)
		w.int("MaxRetries", int64(tw.MaxRetries))
		w.raw("</TimeWindowStruct>\n")
	}
	w.close("TimeWindowList")
}
func (m *ScheduleDownload) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.CommandKey, m.FileType, m.URL, m.Username, m.Password = d.transferHead()
	m.FileSize = d.u32("FileSize")
	m.TargetFileName = d.str("TargetFileName")
	for _, s := range d.elems("TimeWindowList") {
		sd := d.sub(s)
		m.TimeWindowList = append(m.TimeWindowList, TimeWindow{
			WindowStart: sd.u32("WindowStart"), WindowEnd: sd.u32("WindowEnd"), WindowMode: strings.TrimSpace(sd.str("WindowMode")),
			UserMessage: sd.str("UserMessage"), MaxRetries: sd.int("MaxRetries"),
		})
		if sd.err != nil {
			return sd.err
		}
	}
	return d.err
}

// ScheduleDownloadResponse is empty.
type ScheduleDownloadResponse struct{}

func (*ScheduleDownloadResponse) Method() string              { return "ScheduleDownloadResponse" }
func (*ScheduleDownloadResponse) encode(*writer)              {}
func (*ScheduleDownloadResponse) decode(*etree.Element) error { return nil }

// CancelTransfer cancels a queued transfer.
type CancelTransfer struct{ CommandKey string }

func (*CancelTransfer) Method() string     { return "CancelTransfer" }
func (m *CancelTransfer) encode(w *writer) { w.elem("CommandKey", m.CommandKey) }
func (m *CancelTransfer) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.CommandKey = d.str("CommandKey")
	return d.err
}

// CancelTransferResponse is empty.
type CancelTransferResponse struct{}

func (*CancelTransferResponse) Method() string              { return "CancelTransferResponse" }
func (*CancelTransferResponse) encode(*writer)              {}
func (*CancelTransferResponse) decode(*etree.Element) error { return nil }

// ---- Inform (A.3.3.1)

// Inform opens every session.
type Inform struct {
	DeviceId      DeviceID //nolint:revive // wire name
	Event         []EventStruct
	MaxEnvelopes  uint32
	CurrentTime   time.Time
	RetryCount    uint32
	ParameterList []ParameterValue
}

func (*Inform) Method() string { return "Inform" }
func (m *Inform) encode(w *writer) {
	w.raw("<DeviceId>\n")
	w.elem("Manufacturer", m.DeviceId.Manufacturer)
	w.elem("OUI", m.DeviceId.OUI)
	w.elem("ProductClass", m.DeviceId.ProductClass)
	w.elem("SerialNumber", m.DeviceId.SerialNumber)
	w.raw("</DeviceId>\n")
	w.array("Event", "cwmp:EventStruct", len(m.Event))
	for _, ev := range m.Event {
		w.raw("<EventStruct>\n")
		w.elem("EventCode", ev.EventCode)
		w.elem("CommandKey", ev.CommandKey)
		w.raw("</EventStruct>\n")
	}
	w.close("Event")
	w.uint("MaxEnvelopes", uint64(m.MaxEnvelopes))
	w.time("CurrentTime", m.CurrentTime)
	w.uint("RetryCount", uint64(m.RetryCount))
	encodeParamValues(w, m.ParameterList)
}
func (m *Inform) decode(e *etree.Element) error {
	d := newDec(m, e)
	dev := child(e, "DeviceId")
	if dev == nil {
		d.fail("DeviceId", errMissing)
		return d.err
	}
	dd := d.sub(dev)
	m.DeviceId = DeviceID{Manufacturer: dd.str("Manufacturer"), OUI: strings.TrimSpace(dd.str("OUI")),
		ProductClass: dd.str("ProductClass"), SerialNumber: dd.str("SerialNumber")}
	for _, s := range d.elems("Event") {
		sd := d.sub(s)
		m.Event = append(m.Event, EventStruct{EventCode: strings.TrimSpace(sd.str("EventCode")), CommandKey: sd.str("CommandKey")})
	}
	m.MaxEnvelopes = d.u32("MaxEnvelopes")
	m.CurrentTime = d.time("CurrentTime")
	m.RetryCount = d.u32("RetryCount")
	m.ParameterList = d.paramValues("ParameterList")
	return d.err
}

// InformResponse answers Inform.
type InformResponse struct{ MaxEnvelopes uint32 }

func (*InformResponse) Method() string     { return "InformResponse" }
func (m *InformResponse) encode(w *writer) { w.uint("MaxEnvelopes", uint64(m.MaxEnvelopes)) }
func (m *InformResponse) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.MaxEnvelopes = d.u32("MaxEnvelopes")
	return d.err
}

// ---- TransferComplete (A.3.3.2) and AutonomousTransferComplete (A.3.3.3)

// TransferComplete reports the end of a Download or Upload.
type TransferComplete struct {
	CommandKey   string
	FaultStruct  FaultStruct
	StartTime    time.Time
	CompleteTime time.Time
}

func (*TransferComplete) Method() string { return "TransferComplete" }
func (m *TransferComplete) encode(w *writer) {
	w.elem("CommandKey", m.CommandKey)
	encodeFaultStruct(w, m.FaultStruct)
	w.time("StartTime", m.StartTime)
	w.time("CompleteTime", m.CompleteTime)
}
func (m *TransferComplete) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.CommandKey = d.str("CommandKey")
	m.FaultStruct = decodeFaultStruct(d)
	m.StartTime = d.time("StartTime")
	m.CompleteTime = d.time("CompleteTime")
	return d.err
}

func encodeFaultStruct(w *writer, f FaultStruct) {
	w.raw("<FaultStruct>\n")
	w.int("FaultCode", int64(f.FaultCode))
	w.elem("FaultString", f.FaultString)
	w.raw("</FaultStruct>\n")
}

func decodeFaultStruct(d *dec) FaultStruct {
	fs := d.sub(child(d.e, "FaultStruct"))
	f := FaultStruct{FaultCode: fs.int("FaultCode"), FaultString: fs.str("FaultString")}
	if fs.err != nil && d.err == nil {
		d.err = fs.err
	}
	return f
}

// TransferCompleteResponse is empty.
type TransferCompleteResponse struct{}

func (*TransferCompleteResponse) Method() string              { return "TransferCompleteResponse" }
func (*TransferCompleteResponse) encode(*writer)              {}
func (*TransferCompleteResponse) decode(*etree.Element) error { return nil }

// AutonomousTransferComplete reports a transfer the ACS did not request.
type AutonomousTransferComplete struct {
	AnnounceURL    string
	TransferURL    string
	IsDownload     bool
	FileType       string
	FileSize       uint32
	TargetFileName string
	FaultStruct    FaultStruct
	StartTime      time.Time
	CompleteTime   time.Time
}

func (*AutonomousTransferComplete) Method() string { return "AutonomousTransferComplete" }
func (m *AutonomousTransferComplete) encode(w *writer) {
	w.elem("AnnounceURL", m.AnnounceURL)
	w.elem("TransferURL", m.TransferURL)
	w.bool("IsDownload", m.IsDownload)
	w.elem("FileType", m.FileType)
	w.uint("FileSize", uint64(m.FileSize))
	w.elem("TargetFileName", m.TargetFileName)
	encodeFaultStruct(w, m.FaultStruct)
	w.time("StartTime", m.StartTime)
	w.time("CompleteTime", m.CompleteTime)
}
func (m *AutonomousTransferComplete) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.AnnounceURL = d.str("AnnounceURL")
	m.TransferURL = d.str("TransferURL")
	m.IsDownload = d.bool("IsDownload")
	m.FileType = d.str("FileType")
	m.FileSize = d.u32("FileSize")
	m.TargetFileName = d.str("TargetFileName")
	m.FaultStruct = decodeFaultStruct(d)
	m.StartTime = d.time("StartTime")
	m.CompleteTime = d.time("CompleteTime")
	return d.err
}

// AutonomousTransferCompleteResponse is empty.
type AutonomousTransferCompleteResponse struct{}

func (*AutonomousTransferCompleteResponse) Method() string {
	return "AutonomousTransferCompleteResponse"
}
func (*AutonomousTransferCompleteResponse) encode(*writer)              {}
func (*AutonomousTransferCompleteResponse) decode(*etree.Element) error { return nil }

// ---- RequestDownload (A.4.2.2) and Kicked (A.4.2.1)

// RequestDownload asks the ACS for a download.
type RequestDownload struct {
	FileType    string
	FileTypeArg []Arg
}

func (*RequestDownload) Method() string { return "RequestDownload" }
func (m *RequestDownload) encode(w *writer) {
	w.elem("FileType", m.FileType)
	w.array("FileTypeArg", "cwmp:ArgStruct", len(m.FileTypeArg))
	for _, a := range m.FileTypeArg {
		w.raw("<ArgStruct>\n")
		w.elem("Name", a.Name)
		w.elem("Value", a.Value)
		w.raw("</ArgStruct>\n")
	}
	w.close("FileTypeArg")
}
func (m *RequestDownload) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.FileType = d.str("FileType")
	for _, s := range d.elems("FileTypeArg") {
		sd := d.sub(s)
		m.FileTypeArg = append(m.FileTypeArg, Arg{Name: sd.str("Name"), Value: sd.str("Value")})
	}
	return d.err
}

// RequestDownloadResponse is empty.
type RequestDownloadResponse struct{}

func (*RequestDownloadResponse) Method() string              { return "RequestDownloadResponse" }
func (*RequestDownloadResponse) encode(*writer)              {}
func (*RequestDownloadResponse) decode(*etree.Element) error { return nil }

// Kicked reports a LAN-side kick.
type Kicked struct {
	Command string
	Referer string
	Arg     string
	Next    string
}

func (*Kicked) Method() string { return "Kicked" }
func (m *Kicked) encode(w *writer) {
	w.elem("Command", m.Command)
	w.elem("Referer", m.Referer)
	w.elem("Arg", m.Arg)
	w.elem("Next", m.Next)
}
func (m *Kicked) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.Command, m.Referer, m.Arg, m.Next = d.str("Command"), d.str("Referer"), d.str("Arg"), d.str("Next")
	return d.err
}

// KickedResponse carries the next URL.
type KickedResponse struct{ NextURL string }

func (*KickedResponse) Method() string     { return "KickedResponse" }
func (m *KickedResponse) encode(w *writer) { w.elem("NextURL", m.NextURL) }
func (m *KickedResponse) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.NextURL = d.str("NextURL")
	return d.err
}

// ---- ChangeDUState and its completions (CWMP 1.2, A.4.1.10, A.3.3.2, A.3.3.3)

// DUOperation is one operation of a ChangeDUState: an InstallOpStruct,
// UpdateOpStruct or UninstallOpStruct, told apart on the wire by the
// Operations element's xsi:type.
type DUOperation struct {
	Op              string // "Install", "Update" or "Uninstall"
	URL             string // Install, Update
	UUID            string
	Username        string // Install, Update
	Password        string // Install, Update
	ExecutionEnvRef string // Install, Uninstall
	Version         string // Update, Uninstall
}

// ChangeDUState asks for operations on deployment units.
type ChangeDUState struct {
	Operations []DUOperation
	CommandKey string
}

// MaxDUOperations bounds the operations one ChangeDUState may carry.
const MaxDUOperations = 64

func (*ChangeDUState) Method() string { return "ChangeDUState" }
func (m *ChangeDUState) encode(w *writer) {
	for _, op := range m.Operations {
		w.raw(`<Operations xsi:type="cwmp:` + op.Op + `OpStruct">` + "\n")
		switch op.Op {
		case "Install":
			w.elem("URL", op.URL)
			w.elem("UUID", op.UUID)
			w.elem("Username", op.Username)
			w.elem("Password", op.Password)
			w.elem("ExecutionEnvRef", op.ExecutionEnvRef)
		case "Update":
			w.elem("UUID", op.UUID)
			w.elem("Version", op.Version)
			w.elem("URL", op.URL)
			w.elem("Username", op.Username)
			w.elem("Password", op.Password)
		case "Uninstall":
			w.elem("UUID", op.UUID)
			w.elem("Version", op.Version)
			w.elem("ExecutionEnvRef", op.ExecutionEnvRef)
		}
		w.raw("</Operations>\n")
	}
	w.elem("CommandKey", m.CommandKey)
}
func (m *ChangeDUState) decode(e *etree.Element) error {
	d := newDec(m, e)
	for _, c := range e.ChildElements() {
		if c.Tag != "Operations" {
			continue
		}
		if len(m.Operations) == MaxDUOperations {
			d.fail("Operations", fmt.Errorf("more than %d operations", MaxDUOperations))
			break
		}
		// The type is the xsi:type's local part ("cwmp:InstallOpStruct");
		// without one, the children tell (URL and no Version: Install).
		typ := xsiType(c)
		if i := strings.IndexByte(typ, ':'); i >= 0 {
			typ = typ[i+1:]
		}
		od := d.sub(c)
		op := DUOperation{Op: strings.TrimSuffix(typ, "OpStruct"), URL: strings.TrimSpace(od.str("URL")), UUID: strings.TrimSpace(od.str("UUID")),
			Username: od.str("Username"), Password: od.str("Password"), ExecutionEnvRef: strings.TrimSpace(od.str("ExecutionEnvRef")),
			Version: strings.TrimSpace(od.str("Version"))}
		if typ == "" {
			switch {
			case child(c, "URL") != nil && child(c, "Version") == nil:
				op.Op = "Install"
			case child(c, "URL") != nil:
				op.Op = "Update"
			default:
				op.Op = "Uninstall"
			}
		}
		switch op.Op {
		case "Install", "Update", "Uninstall":
		default:
			d.fail("Operations", fmt.Errorf("unknown operation type %q", typ))
		}
		m.Operations = append(m.Operations, op)
	}
	if len(m.Operations) == 0 {
		d.fail("Operations", errMissing)
	}
	m.CommandKey = d.str("CommandKey")
	return d.err
}

// ChangeDUStateResponse is empty.
type ChangeDUStateResponse struct{}

func (*ChangeDUStateResponse) Method() string              { return "ChangeDUStateResponse" }
func (*ChangeDUStateResponse) encode(*writer)              {}
func (*ChangeDUStateResponse) decode(*etree.Element) error { return nil }

// OpResult is one OpResultStruct (AutonOpResultStruct with
// OperationPerformed).
type OpResult struct {
	UUID                 string
	DeploymentUnitRef    string
	Version              string
	CurrentState         string // Installed, Uninstalled, Failed
	Resolved             bool
	ExecutionUnitRefList string
	StartTime            time.Time
	CompleteTime         time.Time
	Fault                FaultStruct
	OperationPerformed   string // autonomous only: Install, Update, Uninstall
}

func encodeOpResults(w *writer, results []OpResult, auton bool) {
	for _, r := range results {
		typ := "OpResultStruct"
		if auton {
			typ = "AutonOpResultStruct"
		}
		w.raw(`<Results xsi:type="cwmp:` + typ + `">` + "\n")
		w.elem("UUID", r.UUID)
		w.elem("DeploymentUnitRef", r.DeploymentUnitRef)
		w.elem("Version", r.Version)
		w.elem("CurrentState", r.CurrentState)
		w.bool("Resolved", r.Resolved)
		w.elem("ExecutionUnitRefList", r.ExecutionUnitRefList)
		w.time("StartTime", r.StartTime)
		w.time("CompleteTime", r.CompleteTime)
		w.raw("<Fault>\n")
		w.int("FaultCode", int64(r.Fault.FaultCode))
		w.elem("FaultString", r.Fault.FaultString)
		w.raw("</Fault>\n")
		if auton {
			w.elem("OperationPerformed", r.OperationPerformed)
		}
		w.raw("</Results>\n")
	}
}

func decodeOpResults(d *dec, e *etree.Element) []OpResult {
	var out []OpResult
	for _, c := range e.ChildElements() {
		if c.Tag != "Results" {
			continue
		}
		rd := d.sub(c)
		fd := d.sub(child(c, "Fault"))
		out = append(out, OpResult{UUID: rd.str("UUID"), DeploymentUnitRef: rd.str("DeploymentUnitRef"), Version: rd.str("Version"),
			CurrentState: rd.str("CurrentState"), Resolved: rd.bool("Resolved"), ExecutionUnitRefList: rd.str("ExecutionUnitRefList"),
			StartTime: rd.time("StartTime"), CompleteTime: rd.time("CompleteTime"),
			Fault:              FaultStruct{FaultCode: fd.int("FaultCode"), FaultString: fd.str("FaultString")},
			OperationPerformed: rd.str("OperationPerformed")})
		for _, x := range []*dec{rd, fd} {
			if x.err != nil && d.err == nil {
				d.err = x.err
			}
		}
	}
	return out
}

// DUStateChangeComplete reports the results of a ChangeDUState, in the
// order of its operations.
type DUStateChangeComplete struct {
	Results    []OpResult
	CommandKey string
}

func (*DUStateChangeComplete) Method() string { return "DUStateChangeComplete" }
func (m *DUStateChangeComplete) encode(w *writer) {
	encodeOpResults(w, m.Results, false)
	w.elem("CommandKey", m.CommandKey)
}
func (m *DUStateChangeComplete) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.Results = decodeOpResults(d, e)
	m.CommandKey = d.str("CommandKey")
	return d.err
}

// DUStateChangeCompleteResponse is empty.
type DUStateChangeCompleteResponse struct{}

func (*DUStateChangeCompleteResponse) Method() string              { return "DUStateChangeCompleteResponse" }
func (*DUStateChangeCompleteResponse) encode(*writer)              {}
func (*DUStateChangeCompleteResponse) decode(*etree.Element) error { return nil }

// AutonomousDUStateChangeComplete reports changes the CPE made on its own.
type AutonomousDUStateChangeComplete struct{ Results []OpResult }

func (*AutonomousDUStateChangeComplete) Method() string { return "AutonomousDUStateChangeComplete" }
func (m *AutonomousDUStateChangeComplete) encode(w *writer) {
	encodeOpResults(w, m.Results, true)
}
func (m *AutonomousDUStateChangeComplete) decode(e *etree.Element) error {
	d := newDec(m, e)
	m.Results = decodeOpResults(d, e)
	return d.err
}

// AutonomousDUStateChangeCompleteResponse is empty.
type AutonomousDUStateChangeCompleteResponse struct{}

func (*AutonomousDUStateChangeCompleteResponse) Method() string {
	return "AutonomousDUStateChangeCompleteResponse"
}
func (*AutonomousDUStateChangeCompleteResponse) encode(*writer)              {}
func (*AutonomousDUStateChangeCompleteResponse) decode(*etree.Element) error { return nil }
