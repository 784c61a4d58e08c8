package assoc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
	"github.com/cwmp-agent/cwmp-agent/internal/clock"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// TableStore is what the ManageableDevice table needs of the parameter
// tree.
type TableStore interface {
	AddInstance(path string, values map[string]string, opt datamodel.SetOptions) (uint32, error)
	DeleteObject(path string, opt datamodel.SetOptions) error
}

// Lease is one LAN device's DHCP lease as the table knows it.
type Lease struct {
	// Key identifies the lease: the client's hardware address (lower-case,
	// colon-separated).
	Key      string         `json:"key"`
	IP       string         `json:"ip"`
	Identity tr111.Identity `json:"identity"`
	// Expires is the end of the lease; zero for a device known only from a
	// DHCPINFORM (it has no lease: only the presence check removes it).
	Expires time.Time `json:"expires,omitzero"`
	// Source says who reported it: "dhcp-server" or "dnsmasq".
	Source string `json:"source"`

	misses int // consecutive failed presence checks (not persisted)
}

// TableConfig configures the ManageableDevice table.
type TableConfig struct {
	Store TableStore
	// Root is the data model root; the table exists only under
	// InternetGatewayDevice (TR-111 1.2.6).
	Root string
	// StateDir keeps the leases behind the table (manageable.json) so that
	// the table survives a restart while they are valid; "" keeps nothing.
	StateDir string
	// Presence checks whether devices are still connected (TR-111 1.2.1's
	// "locally defined means of connectivity detection"); nil disables the
	// check. Two failed checks in a row remove the entry.
	Presence Presence
	// PresenceInterval is the time between presence checks (default 60 s).
	PresenceInterval time.Duration
	Clock            clock.Clock
	Logger           *slog.Logger
}

// Table keeps InternetGatewayDevice.ManagementServer.ManageableDevice.{i}.
// in step with the leases of devices that sent a Device Identity: one
// entry per distinct identity, added after the DHCPACK and removed when no
// lease with that identity remains (released, expired, or the device gone).
// ManageableDeviceNumberOfEntries follows through the tree, and its Active
// Notification, throttled by ManageableDeviceNotificationLimit, is the
// notify engine's.
type Table struct {
	cfg   TableConfig
	path  string
	log   *slog.Logger
	saver *atomicfile.Saver

	mu      sync.Mutex
	leases  map[string]*Lease
	entries map[tr111.Identity]*tableEntry
}

type tableEntry struct {
	inst uint32
	refs int
}

// NewTable builds the table (empty until Load).
func NewTable(cfg TableConfig) (*Table, error) {
	if cfg.Root != "InternetGatewayDevice" && cfg.Root != "Device" {
		return nil, fmt.Errorf("assoc: the ManageableDevice table is under InternetGatewayDevice (TR-098) or Device (TR-181 Device:2), not %q", cfg.Root)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PresenceInterval <= 0 {
		cfg.PresenceInterval = time.Minute
	}
	t := &Table{cfg: cfg, path: cfg.Root + ".ManagementServer.ManageableDevice.", log: cfg.Logger.With("component", "manageable-devices"),
		leases: map[string]*Lease{}, entries: map[tr111.Identity]*tableEntry{}}
	if cfg.StateDir != "" {
		t.saver = atomicfile.NewSaver(filepath.Join(cfg.StateDir, "manageable.json"), t.snapshot, saveInterval)
	}
	return t, nil
}

// saveInterval coalesces the writes of the lease and table files: a
// gateway answering a thousand DHCP exchanges a second writes them a few
// times a second. A client whose lease was lost to a crash in between is
// simply given its address again when it asks.
const saveInterval = 200 * time.Millisecond

type tableState struct {
	Leases []Lease `json:"leases"`
}

func (t *Table) snapshot() any {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := tableState{Leases: make([]Lease, 0, len(t.leases))}
	for _, l := range t.leases {
		st.Leases = append(st.Leases, *l)
	}
	sort.Slice(st.Leases, func(i, j int) bool { return st.Leases[i].Key < st.Leases[j].Key })
	return st
}

// Load rebuilds the table from the saved leases that are still valid. A
// corrupt file is moved aside and the table starts empty.
func (t *Table) Load() error {
	if t.saver == nil {
		return nil
	}
	var st tableState
	if err := atomicfile.ReadJSON(t.saver.Path(), &st); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		t.log.Error("starting with an empty ManageableDevice table", "err", err)
		return nil
	}
	now := t.cfg.Clock.Now()
	for _, l := range st.Leases {
		if !l.Expires.IsZero() && !l.Expires.After(now) {
			continue
		}
		if err := t.Bound(l); err != nil {
			t.log.Warn("saved lease not restored", "key", l.Key, "err", err)
		}
	}
	return nil
}

// Bound records a completed exchange (after the DHCPACK, TR-111 1.2.1): the
// lease now carries this identity. An entry is added when no entry with the
// same identity is listed. The identity must be valid (tr111.Identity
// Validate); an invalid one never enters the table.
func (t *Table) Bound(l Lease) error {
	if err := l.Identity.Validate(); err != nil {
		return err
	}
	if l.Key == "" {
		return errors.New("assoc: lease without a key")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := t.leases[l.Key]
	cp := l
	cp.misses = 0
	t.leases[l.Key] = &cp
	if old != nil && old.Identity == l.Identity {
		if old.Expires != l.Expires || old.IP != l.IP {
			t.saver.Mark()
		}
		return nil
	}
	if err := t.ref(l.Identity); err != nil {
		if old != nil {
			t.leases[l.Key] = old
		} else {
			delete(t.leases, l.Key)
		}
		return err
	}
	if old != nil {
		t.unref(old.Identity)
	}
	t.saver.Mark()
	return nil
}

// Released forgets a lease (released, expired, or deleted by dnsmasq); the
// entry goes when no other lease holds its identity.
func (t *Table) Released(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropLocked(key, "released")
}

func (t *Table) dropLocked(key, why string) {
	l := t.leases[key]
	if l == nil {
		return
	}
	delete(t.leases, key)
	t.unref(l.Identity)
	t.log.Info("device left the ManageableDevice table", "key", key, "serial", l.Identity.SerialNumber, "why", why)
	t.saver.Mark()
}

func (t *Table) ref(id tr111.Identity) error {
	if e := t.entries[id]; e != nil {
		e.refs++
		return nil
	}
	inst, err := t.cfg.Store.AddInstance(t.path, map[string]string{
		"ManufacturerOUI": id.ManufacturerOUI, "SerialNumber": id.SerialNumber, "ProductClass": id.ProductClass,
	}, datamodel.SetOptions{Origin: datamodel.OriginDevice})
	if err != nil {
		return fmt.Errorf("assoc: adding a ManageableDevice entry: %w", err)
	}
	t.entries[id] = &tableEntry{inst: inst, refs: 1}
	t.log.Info("device entered the ManageableDevice table", "instance", inst, "oui", id.ManufacturerOUI, "serial", id.SerialNumber, "class", id.ProductClass)
	return nil
}

func (t *Table) unref(id tr111.Identity) {
	e := t.entries[id]
	if e == nil {
		return
	}
	if e.refs--; e.refs > 0 {
		return
	}
	delete(t.entries, id)
	if err := t.cfg.Store.DeleteObject(t.path+strconv.FormatUint(uint64(e.inst), 10)+".", datamodel.SetOptions{Origin: datamodel.OriginDevice}); err != nil {
		t.log.Error("removing a ManageableDevice entry", "instance", e.inst, "err", err)
	}
}

// Sweep removes the leases that expired by now (TR-111 1.2.1: the entry is
// removed when the DHCP lease expires).
func (t *Table) Sweep() {
	now := t.cfg.Clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, l := range t.leases {
		if !l.Expires.IsZero() && !l.Expires.After(now) {
			t.dropLocked(k, "lease expired")
		}
	}
}

// CheckPresence runs the presence check once over every lease; a device
// that fails two checks in a row leaves the table (its DHCP lease, if any,
// is untouched: when it asks again it comes back).
func (t *Table) CheckPresence() {
	if t.cfg.Presence == nil {
		return
	}
	t.mu.Lock()
	ls := make([]Lease, 0, len(t.leases))
	for _, l := range t.leases {
		ls = append(ls, *l)
	}
	t.mu.Unlock()
	present := t.cfg.Presence.Check(ls)
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, l := range ls {
		cur := t.leases[l.Key]
		if cur == nil || cur.IP != l.IP {
			continue
		}
		if present[i] {
			cur.misses = 0
		} else if cur.misses++; cur.misses >= 2 {
			t.dropLocked(l.Key, "no longer connected")
		}
	}
}

// Republish lists every identity of the leases again, as new entries:
// after a factory reset the tree's table is empty while the leases, the
// truth about which devices are attached, are still there.
func (t *Table) Republish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries = map[tr111.Identity]*tableEntry{}
	for k, l := range t.leases {
		if err := t.ref(l.Identity); err != nil {
			t.log.Error("ManageableDevice entry not restored", "key", k, "err", err)
		}
	}
}

// Leases lists the leases behind the table.
func (t *Table) Leases() []Lease {
	st := t.snapshot().(tableState)
	return st.Leases
}

// Len is the number of entries in the table.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// Flush writes the saved leases now.
func (t *Table) Flush() error { return t.saver.Flush() }

// Run sweeps expired leases every second, runs the presence check, and
// saves the leases in the background until ctx ends.
func (t *Table) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if t.saver != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.saver.Run(ctx, func(err error) { t.log.Error("saving the ManageableDevice leases", "err", err) })
		}()
	}
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	presence := time.NewTicker(t.cfg.PresenceInterval)
	defer presence.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-sweep.C:
			t.Sweep()
		case <-presence.C:
			t.CheckPresence()
		}
	}
}
