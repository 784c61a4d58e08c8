// Package swmod carries out ChangeDUState (TR-069 A.4.1.10, CWMP 1.2) on
// Device:2's SoftwareModules (TR-181, from TR-157): the operations queue
// when the ACS asks, run once its session is over, keep the
// DeploymentUnit, ExecutionUnit and ExecEnv tables true, and their results
// go back in DUStateChangeComplete. What installs a unit is a Backend: a
// hook command on a device, Virtual in a fleet.
//
// The manager owns its queue on one goroutine (Run's); the agent's RPC
// handler and the control socket post to it.
package swmod

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
	"github.com/cwmp-agent/cwmp-agent/internal/clock"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// Paths of TR-181's software modules.
const (
	Root    = "Device.SoftwareModules."
	duTable = Root + "DeploymentUnit."
	euTable = Root + "ExecutionUnit."
	eeTable = Root + "ExecEnv."
)

// Tree is what the manager needs of the parameter tree.
type Tree interface {
	Schema() *datamodel.Schema
	Get(path string) (string, error)
	SetValues(changes []datamodel.Change, opt datamodel.SetOptions) error
	AddInstance(path string, values map[string]string, opt datamodel.SetOptions) (uint32, error)
	DeleteObject(path string, opt datamodel.SetOptions) error
	Instances(path string) ([]uint32, error)
	OnCommit(fn func([]datamodel.Event))
}

// Config configures a Manager.
type Config struct {
	Tree    Tree
	Backend Backend
	// Fetch downloads a package (the agent's FetchFile); its error carries
	// the download's fault.
	Fetch func(ctx context.Context, url, user, pass string) (string, error)
	// Complete hands over a ChangeDUState's results (the agent's
	// DUStateChangeComplete); Autonomous those of a change the device made
	// itself (AutonomousDUStateChangeComplete).
	Complete   func(results []soap.OpResult, commandKey string)
	Autonomous func(results []soap.OpResult)
	// ExecEnv names the execution environment the manager creates when
	// the table is empty ("Linux" on a device).
	ExecEnv, ExecEnvType, Vendor, Version string
	// StateDir keeps the operations not yet carried out (swmod.json); ""
	// keeps them in memory.
	StateDir string
	Clock    clock.Clock
	Logger   *slog.Logger
}

// Manager runs ChangeDUState operations.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu    sync.Mutex // guards inbox, st and pending
	inbox []func()
	wake  chan struct{}
	st    state
	// pending: jobs queued during a session wait for its end.
	pending bool
}

type job struct {
	Ops        []soap.DUOperation `json:"ops"`
	CommandKey string             `json:"key,omitempty"`
}

type state struct {
	Jobs []job `json:"jobs,omitempty"`
}

// MaxJobs bounds the ChangeDUState requests waiting to run (9004 beyond).
const MaxJobs = 16

// Supported reports whether a schema has the software modules.
func Supported(s *datamodel.Schema) bool { return s.Object(duTable+"{i}.") != nil }

// New builds the manager, loads the operations a restart interrupted and
// creates the execution environment when the table is empty.
func New(cfg Config) (*Manager, error) {
	if !Supported(cfg.Tree.Schema()) {
		return nil, errors.New("swmod: the data model has no Device.SoftwareModules")
	}
	if cfg.Backend == nil {
		return nil, errNoBackend
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ExecEnv == "" {
		cfg.ExecEnv, cfg.ExecEnvType = "Linux", "Linux"
	}
	m := &Manager{cfg: cfg, log: cfg.Logger.With("component", "swmod"), wake: make(chan struct{}, 1)}
	if p := m.statePath(); p != "" {
		if err := atomicfile.ReadJSON(p, &m.st); err != nil && !errors.Is(err, os.ErrNotExist) {
			m.log.Error("ignoring a corrupt software modules state", "err", err)
			m.st = state{}
		}
	}
	m.ensureExecEnv()
	cfg.Tree.OnCommit(func(evs []datamodel.Event) {
		if len(evs) == 1 && evs[0].Kind == datamodel.Reset {
			m.post(m.ensureExecEnv)
		}
	})
	return m, nil
}

func (m *Manager) statePath() string {
	if m.cfg.StateDir == "" {
		return ""
	}
	return filepath.Join(m.cfg.StateDir, "swmod.json")
}

// save writes the queue; the caller holds mu.
func (m *Manager) save() {
	if p := m.statePath(); p != "" {
		if err := atomicfile.WriteJSON(p, &m.st); err != nil {
			m.log.Error("cannot save the software modules state", "err", err)
		}
	}
}

func (m *Manager) post(f func()) {
	m.mu.Lock()
	m.inbox = append(m.inbox, f)
	m.mu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

var device = datamodel.SetOptions{Origin: datamodel.OriginDevice}

func (m *Manager) ensureExecEnv() {
	if ids, err := m.cfg.Tree.Instances(eeTable); err != nil || len(ids) > 0 {
		return
	}
	vals := map[string]string{"Enable": "true", "Status": "Up", "Name": m.cfg.ExecEnv, "Type": m.cfg.ExecEnvType,
		"Vendor": m.cfg.Vendor, "Version": m.cfg.Version, "CurrentRunLevel": "-1", "InitialExecutionUnitRunLevel": "-1",
		"AllocatedDiskSpace": "-1", "AllocatedMemory": "-1", "AllocatedCPUPercent": "-1", "AvailableDiskSpace": "-1",
		"AvailableMemory": "-1", "AvailableCPUPercent": "-1"}
	if _, err := m.cfg.Tree.AddInstance(eeTable, m.known(eeTable, vals), device); err != nil {
		m.log.Error("cannot create the execution environment", "err", err)
	}
}

// known keeps the values whose parameters the table has.
func (m *Manager) known(table string, vals map[string]string) map[string]string {
	s := m.cfg.Tree.Schema()
	out := map[string]string{}
	for k, v := range vals {
		if s.Param(table+"{i}."+k) != nil {
			out[k] = v
		}
	}
	return out
}

// ChangeDUState queues a request's operations (cwmp.SoftwareModules); they
// run when the session ends.
// It never waits for an operation that is running: the ACS's session goes
// on at once.
func (m *Manager) ChangeDUState(ops []soap.DUOperation, commandKey string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.st.Jobs) >= MaxJobs {
		return cwmp.Fault(9004, "%d ChangeDUState requests are waiting", len(m.st.Jobs))
	}
	m.st.Jobs = append(m.st.Jobs, job{Ops: ops, CommandKey: commandKey})
	m.pending = true
	m.save()
	return nil
}

// SessionEnded starts the queued operations (TR-069: the CPE carries them
// out after the session in which they were requested).
func (m *Manager) SessionEnded() {
	m.post(func() {
		m.mu.Lock()
		m.pending = false
		m.mu.Unlock()
	})
}

// Run carries out the queued operations until ctx ends; those a restart
// interrupted run at once.
func (m *Manager) Run(ctx context.Context) error {
	for {
		m.mu.Lock()
		q := m.inbox
		m.inbox = nil
		m.mu.Unlock()
		for _, f := range q {
			f()
		}
		if len(q) > 0 {
			continue
		}
		m.mu.Lock()
		var j *job
		if len(m.st.Jobs) > 0 && !m.pending {
			j = &m.st.Jobs[0]
		}
		m.mu.Unlock()
		if j != nil {
			results := make([]soap.OpResult, 0, len(j.Ops))
			for _, op := range j.Ops {
				results = append(results, m.do(ctx, op))
				if ctx.Err() != nil {
					return nil // the job runs again at the next start
				}
			}
			m.cfg.Complete(results, j.CommandKey)
			m.mu.Lock()
			m.st.Jobs = m.st.Jobs[1:]
			m.save()
			m.mu.Unlock()
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
		}
	}
}

var uuidRE = regexp.MustCompile(`^[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{12}$`)

// du is a deployment unit as the tree holds it.
type du struct {
	path string // Device.SoftwareModules.DeploymentUnit.N.
	unit Unit
	url  string
	ee   string
	eus  []string // ExecutionUnit paths
}

func (m *Manager) get(p string) string { v, _ := m.cfg.Tree.Get(p); return v }

func (m *Manager) units() []du {
	ids, _ := m.cfg.Tree.Instances(duTable)
	out := make([]du, 0, len(ids))
	for _, id := range ids {
		p := duTable + strconv.FormatUint(uint64(id), 10) + "."
		d := du{path: p, url: m.get(p + "URL"), ee: m.get(p + "ExecutionEnvRef"),
			unit: Unit{Name: m.get(p + "Name"), Version: m.get(p + "Version"), Vendor: m.get(p + "Vendor"),
				Description: m.get(p + "Description"), UUID: m.get(p + "UUID")}}
		for _, e := range strings.Split(m.get(p+"ExecutionUnitList"), ",") {
			if e = strings.TrimSpace(e); e != "" {
				d.eus = append(d.eus, e)
			}
		}
		out = append(out, d)
	}
	return out
}

func (m *Manager) find(uuid, version, url string) (du, bool) {
	for _, d := range m.units() {
		switch {
		case uuid != "" && !strings.EqualFold(d.unit.UUID, uuid):
		case uuid == "" && (url == "" || d.url != url):
		case version != "" && d.unit.Version != version:
		default:
			return d, true
		}
	}
	return du{}, false
}

// execEnv resolves an ExecutionEnvRef ("" is the first one).
func (m *Manager) execEnv(ref string) (string, string, error) {
	ids, _ := m.cfg.Tree.Instances(eeTable)
	for _, id := range ids {
		p := eeTable + strconv.FormatUint(uint64(id), 10)
		if ref == "" || strings.TrimSuffix(ref, ".") == p {
			if m.get(p+".Enable") != "true" {
				return "", "", cwmp.Fault(cwmp.FaultDisabledExecEnv, "%s is disabled", p)
			}
			return p, m.get(p + ".Name"), nil
		}
	}
	return "", "", cwmp.Fault(cwmp.FaultUnknownExecEnv, "no execution environment %q", ref)
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// do carries out one operation and says how it went.
func (m *Manager) do(ctx context.Context, op soap.DUOperation) soap.OpResult {
	start := m.cfg.Clock.Now()
	r := soap.OpResult{UUID: op.UUID, Version: op.Version, CurrentState: "Failed", Resolved: false, StartTime: start}
	var err error
	switch op.Op {
	case "Install":
		err = m.install(ctx, op, &r)
	case "Update":
		err = m.update(ctx, op, &r)
	case "Uninstall":
		err = m.uninstall(ctx, op, &r)
	default:
		err = cwmp.Fault(cwmp.FaultInvalidArgs, "unknown operation %q", op.Op)
	}
	r.CompleteTime = m.cfg.Clock.Now()
	if err != nil {
		code, msg := faultOf(err, cwmp.FaultRequestDenied)
		r.Fault = soap.FaultStruct{FaultCode: code, FaultString: cwmp.FaultText(code)}
		m.log.Warn("deployment unit operation failed", "op", op.Op, "uuid", op.UUID, "fault", code, "detail", msg)
	} else {
		m.log.Info("deployment unit operation done", "op", op.Op, "uuid", r.UUID, "version", r.Version, "state", r.CurrentState)
	}
	return r
}

func (m *Manager) fetch(ctx context.Context, op soap.DUOperation, url string) (string, error) {
	file, err := m.cfg.Fetch(ctx, url, op.Username, op.Password)
	if err != nil {
		// The download faults a DU operation may report (cwmp-1-2.xsd
		// DeploymentUnitCPEFaultCodeType); the others become 9017.
		code, msg := faultOf(err, 9017)
		switch code {
		case 9001, 9003, 9012, 9013, 9015, 9016, 9017, 9018:
		default:
			code = 9017
		}
		return "", cwmp.Fault(code, "%s", msg)
	}
	return file, nil
}

func (m *Manager) install(ctx context.Context, op soap.DUOperation, r *soap.OpResult) error {
	if op.UUID != "" && !uuidRE.MatchString(op.UUID) {
		return cwmp.Fault(cwmp.FaultInvalidUUID, "%q is not a UUID", op.UUID)
	}
	if op.URL == "" {
		return cwmp.Fault(cwmp.FaultInvalidArgs, "Install without a URL")
	}
	ee, eeName, err := m.execEnv(op.ExecutionEnvRef)
	if err != nil {
		return err
	}
	if op.UUID != "" {
		if _, dup := m.find(op.UUID, "", ""); dup {
			return cwmp.Fault(cwmp.FaultDuplicateDU, "%s is installed already", op.UUID)
		}
	}
	file, err := m.fetch(ctx, op, op.URL)
	if err != nil {
		return err
	}
	u, err := m.cfg.Backend.Install(ctx, Package{File: file, URL: op.URL, UUID: op.UUID, ExecEnv: eeName})
	if err != nil {
		return err
	}
	u.UUID = firstNonEmpty(op.UUID, u.UUID)
	if u.UUID == "" {
		u.UUID = newUUID()
	}
	if _, dup := m.find(u.UUID, u.Version, ""); dup {
		return cwmp.Fault(cwmp.FaultDuplicateDU, "%s %s is installed already", u.UUID, u.Version)
	}
	path, eus, err := m.addUnit(u, op.URL, ee)
	if err != nil {
		return cwmp.Fault(cwmp.FaultResourcesDU, "%v", err)
	}
	r.UUID, r.Version, r.DeploymentUnitRef, r.CurrentState, r.Resolved = u.UUID, u.Version, strings.TrimSuffix(path, "."), "Installed", true
	r.ExecutionUnitRefList = strings.Join(eus, ",")
	return nil
}

// addUnit writes a unit and its execution units into the tables.
func (m *Manager) addUnit(u Unit, url, ee string) (string, []string, error) {
	now := m.cfg.Clock.Now().UTC().Format(time.RFC3339)
	var eus []string
	for _, e := range u.Units {
		status := "Idle"
		if e.Active {
			status = "Active"
		}
		id, err := m.cfg.Tree.AddInstance(euTable, m.known(euTable, map[string]string{"EUID": newUUID()[:8], "Name": e.Name,
			"ExecEnvLabel": e.Name, "Status": status, "ExecutionFaultCode": "NoFault", "Vendor": firstNonEmpty(e.Vendor, u.Vendor),
			"Version": firstNonEmpty(e.Version, u.Version), "Description": e.Description, "ExecutionEnvRef": ee,
			"AllocatedDiskSpace": "-1", "DiskSpaceInUse": "-1", "AllocatedMemory": "-1", "MemoryInUse": "-1",
			"AllocatedCPUPercent": "-1", "CPUPercentInUse": "-1", "CreationTime": now}), device)
		if err != nil {
			return "", nil, err
		}
		eus = append(eus, euTable+strconv.FormatUint(uint64(id), 10))
	}
	id, err := m.cfg.Tree.AddInstance(duTable, m.known(duTable, map[string]string{"UUID": u.UUID, "DUID": newUUID()[:8],
		"Name": u.Name, "Status": "Installed", "Resolved": "true", "URL": url, "Description": u.Description,
		"Vendor": u.Vendor, "Version": u.Version, "ExecutionUnitList": strings.Join(eus, ","), "ExecutionEnvRef": ee,
		"Installed": now, "LastUpdate": now}), device)
	if err != nil {
		return "", nil, err
	}
	return duTable + strconv.FormatUint(uint64(id), 10) + ".", eus, nil
}

func (m *Manager) removeUnit(d du) {
	for _, e := range d.eus {
		if err := m.cfg.Tree.DeleteObject(e+".", device); err != nil && !errors.Is(err, datamodel.ErrInvalidName) {
			m.log.Error("cannot remove an execution unit", "path", e, "err", err)
		}
	}
	if err := m.cfg.Tree.DeleteObject(d.path, device); err != nil {
		m.log.Error("cannot remove a deployment unit", "path", d.path, "err", err)
	}
}

func (m *Manager) update(ctx context.Context, op soap.DUOperation, r *soap.OpResult) error {
	if op.UUID != "" && !uuidRE.MatchString(op.UUID) {
		return cwmp.Fault(cwmp.FaultInvalidUUID, "%q is not a UUID", op.UUID)
	}
	if op.UUID == "" && op.URL == "" {
		return cwmp.Fault(cwmp.FaultInvalidArgs, "Update names neither a UUID nor a URL")
	}
	d, ok := m.find(op.UUID, op.Version, op.URL)
	if !ok {
		return cwmp.Fault(cwmp.FaultUnknownDU, "no deployment unit %s %s", op.UUID, op.Version)
	}
	r.UUID, r.Version, r.CurrentState, r.Resolved, r.DeploymentUnitRef = d.unit.UUID, d.unit.Version, "Installed", true, strings.TrimSuffix(d.path, ".")
	r.ExecutionUnitRefList = strings.Join(d.eus, ",")
	url := firstNonEmpty(op.URL, d.url)
	file, err := m.fetch(ctx, op, url)
	if err != nil {
		return err
	}
	u, err := m.cfg.Backend.Update(ctx, d.unit, Package{File: file, URL: url, UUID: d.unit.UUID, ExecEnv: m.get(d.ee + ".Name")})
	if err != nil {
		return err
	}
	if u.Version == d.unit.Version {
		return cwmp.Fault(cwmp.FaultVersionExists, "%s is at version %s already", d.unit.UUID, u.Version)
	}
	u.UUID = d.unit.UUID
	m.removeUnit(d)
	path, eus, err := m.addUnit(u, url, d.ee)
	if err != nil {
		return cwmp.Fault(cwmp.FaultResourcesDU, "%v", err)
	}
	if ins := m.get(d.path + "Installed"); ins != "" {
		_ = m.cfg.Tree.SetValues([]datamodel.Change{{Path: path + "Installed", Value: ins}}, device)
	}
	r.Version, r.DeploymentUnitRef, r.ExecutionUnitRefList = u.Version, strings.TrimSuffix(path, "."), strings.Join(eus, ",")
	return nil
}

func (m *Manager) uninstall(ctx context.Context, op soap.DUOperation, r *soap.OpResult) error {
	if !uuidRE.MatchString(op.UUID) {
		return cwmp.Fault(cwmp.FaultInvalidUUID, "%q is not a UUID", op.UUID)
	}
	d, ok := m.find(op.UUID, op.Version, "")
	if ok && op.ExecutionEnvRef != "" && strings.TrimSuffix(op.ExecutionEnvRef, ".") != d.ee {
		ok = false
	}
	if !ok {
		return cwmp.Fault(cwmp.FaultUnknownDU, "no deployment unit %s %s", op.UUID, op.Version)
	}
	r.Version, r.CurrentState, r.Resolved = d.unit.Version, "Installed", true
	if err := m.cfg.Backend.Uninstall(ctx, d.unit); err != nil {
		return err
	}
	m.removeUnit(d)
	r.CurrentState = "Uninstalled"
	return nil
}

// Changed records a change the device made itself (a package installed
// or removed outside the ACS's requests, told through the control
// socket): the tables follow, and the ACS hears of it through
// AutonomousDUStateChangeComplete when ManagementServer's
// DUStateChangeComplPolicy asks for it.
func (m *Manager) Changed(operation string, u Unit, url string) error {
	done := make(chan error, 1)
	m.post(func() { done <- m.changed(operation, u, url) })
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("swmod: the manager is not running")
	}
}

func (m *Manager) changed(operation string, u Unit, url string) error {
	start := m.cfg.Clock.Now()
	r := soap.OpResult{UUID: u.UUID, Version: u.Version, Resolved: true, StartTime: start, OperationPerformed: operation}
	ee, _, err := m.execEnv("")
	if err != nil {
		ee = ""
	}
	if len(u.Units) == 0 {
		u.Units = []ExecUnit{{Name: u.Name, Version: u.Version}}
	}
	switch operation {
	case "Install":
		if u.UUID == "" {
			u.UUID = newUUID()
		}
		if _, dup := m.find(u.UUID, "", ""); dup {
			return fmt.Errorf("%s is installed already", u.UUID)
		}
		path, eus, err := m.addUnit(u, url, ee)
		if err != nil {
			return err
		}
		r.UUID, r.DeploymentUnitRef, r.ExecutionUnitRefList, r.CurrentState = u.UUID, strings.TrimSuffix(path, "."), strings.Join(eus, ","), "Installed"
	case "Update", "Uninstall":
		d, ok := m.find(u.UUID, "", url)
		if !ok {
			for _, x := range m.units() {
				if x.unit.Name == u.Name && u.Name != "" {
					d, ok = x, true
				}
			}
		}
		if !ok {
			return fmt.Errorf("no deployment unit %q %q", u.UUID, u.Name)
		}
		m.removeUnit(d)
		r.UUID = d.unit.UUID
		if operation == "Uninstall" {
			r.Version, r.CurrentState = d.unit.Version, "Uninstalled"
			break
		}
		u.UUID = d.unit.UUID
		path, eus, err := m.addUnit(u, firstNonEmpty(url, d.url), d.ee)
		if err != nil {
			return err
		}
		r.DeploymentUnitRef, r.ExecutionUnitRefList, r.CurrentState = strings.TrimSuffix(path, "."), strings.Join(eus, ","), "Installed"
	default:
		return fmt.Errorf("operation %q: want Install, Update or Uninstall", operation)
	}
	r.CompleteTime = m.cfg.Clock.Now()
	if m.policyAllows(r) {
		m.cfg.Autonomous([]soap.OpResult{r})
	}
	return nil
}

// policyAllows applies Device.ManagementServer.DUStateChangeComplPolicy
// (TR-181): off unless enabled, then filtered by operation and result.
func (m *Manager) policyAllows(r soap.OpResult) bool {
	p := "Device.ManagementServer.DUStateChangeComplPolicy."
	if m.get(p+"Enable") != "true" {
		return false
	}
	if ops := m.get(p + "OperationTypeFilter"); ops != "" && !containsItem(ops, r.OperationPerformed) {
		return false
	}
	switch m.get(p + "ResultTypeFilter") {
	case "Success":
		return r.Fault.FaultCode == 0
	case "Failure":
		return r.Fault.FaultCode != 0
	}
	return true
}

func containsItem(list, v string) bool {
	for _, x := range strings.Split(list, ",") {
		if strings.TrimSpace(x) == v {
			return true
		}
	}
	return false
}
