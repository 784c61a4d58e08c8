package datamodel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
)

// StateFile is the name of the tree's file in the state directory.
const StateFile = "tree.json"

const stateVersion = 1

type stateFile struct {
	Version int                   `json:"version"`
	Model   string                `json:"model"`
	Tables  map[string]tableState `json:"tables,omitempty"`
	Values  map[string]string     `json:"values,omitempty"`
	Attrs   map[string]attrState  `json:"attrs,omitempty"`
}

type tableState struct {
	Next      uint32   `json:"next"`
	Instances []uint32 `json:"instances"`
}

type attrState struct {
	Notification *int     `json:"n,omitempty"`
	AccessList   []string `json:"acl,omitempty"`
}

func (t *Tree) statePath() string { return filepath.Join(t.store, StateFile) }

// snapshot collects what must persist: written values of stored parameters,
// non-default attributes, and the instances and counters of every table that
// is not volatile.
func (t *Tree) snapshot() *stateFile {
	sf := &stateFile{Version: stateVersion, Model: t.schema.Model, Tables: map[string]tableState{}, Values: map[string]string{}, Attrs: map[string]attrState{}}
	var visit func(n *node)
	visit = func(n *node) {
		for i, p := range n.def.Params {
			if n.meta == nil {
				break // nothing written, attributes at their defaults
			}
			s := n.slot(i)
			if s.set && !p.Volatile && !t.Mounted(n.path+p.Name) {
				sf.Values[n.path+p.Name] = s.v
			}
			if s.notif >= 0 || s.acl != nil {
				a := attrState{AccessList: s.acl}
				if s.notif >= 0 {
					v := int(s.notif)
					a.Notification = &v
				}
				sf.Attrs[n.path+p.Name] = a
			}
		}
		for _, c := range n.def.Children {
			if !c.Multi {
				visit(n.children[c.idx])
				continue
			}
			tb := n.tables[c.idx]
			if c.Volatile {
				continue
			}
			ts := tableState{Next: tb.next, Instances: make([]uint32, 0, len(tb.items))}
			for _, in := range tb.items {
				ts.Instances = append(ts.Instances, in.inst)
				visit(in)
			}
			sf.Tables[n.path+c.Name+"."] = ts
		}
	}
	visit(t.root)
	return sf
}

func (t *Tree) saveLocked() error {
	if t.store == "" {
		return nil
	}
	return atomicfile.WriteJSON(t.statePath(), t.snapshot())
}

// Save writes the tree's state now (it is also written after every change).
func (t *Tree) Save() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.saveLocked()
}

func (t *Tree) removeState() error {
	if t.store == "" {
		return nil
	}
	if err := os.Remove(t.statePath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// ErrCorruptState reports a state file that could not be read. Load has
// already moved it aside and started from factory defaults.
var ErrCorruptState = atomicfile.ErrCorrupt

// Load reads the saved state, if any, over the factory tree. A file that
// cannot be read never stops the agent: it is logged, kept as
// tree.json.bad-<time> and the tree stays at factory defaults; Load then
// returns an error wrapping ErrCorruptState for the caller to report.
// Entries that no longer fit the schema are skipped with a warning.
func (t *Tree) Load() error {
	if t.store == "" {
		return nil
	}
	var sf stateFile
	err := atomicfile.ReadJSON(t.statePath(), &sf)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err == nil && sf.Version != stateVersion {
		err = fmt.Errorf("%w: state version %d, want %d", ErrCorruptState, sf.Version, stateVersion)
		atomicfile.Quarantine(t.statePath(), time.Now().UTC().Format("20060102T150405.000000000"))
	}
	if err != nil {
		if errors.Is(err, ErrCorruptState) {
			t.log.Error("state file is corrupt; starting from factory defaults", "file", t.statePath(), "err", err)
		}
		return fmt.Errorf("datamodel: load: %w", err)
	}
	t.mu.Lock()
	t.apply(&sf)
	t.mu.Unlock()
	return nil
}

func (t *Tree) apply(sf *stateFile) {
	if sf.Model != "" && sf.Model != t.schema.Model {
		t.log.Warn("state file was written for another data model; reading what still fits", "file_model", sf.Model, "model", t.schema.Model)
	}
	// Tables, parents first: depth is the number of dots.
	paths := make([]string, 0, len(sf.Tables))
	for p := range sf.Tables {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool {
		di, dj := strings.Count(paths[i], "."), strings.Count(paths[j], ".")
		if di != dj {
			return di < dj
		}
		return paths[i] < paths[j]
	})
	for _, p := range paths {
		ts := sf.Tables[p]
		tg, err := t.lookup(p)
		if err != nil || tg.tab == nil {
			t.log.Warn("state names a table the tree does not have; skipped", "param", p)
			continue
		}
		tb := tg.n.tables[tg.tab.idx]
		want := map[uint32]bool{}
		for _, in := range ts.Instances {
			if in == 0 {
				continue
			}
			want[in] = true
		}
		kept := tb.items[:0]
		for _, in := range tb.items {
			if want[in.inst] {
				kept = append(kept, in)
				delete(want, in.inst)
			}
		}
		tb.items = kept
		for in := range want {
			tb.add(t.newNode(tg.tab, p+strconv.FormatUint(uint64(in), 10)+".", in, false))
		}
		if ts.Next > tb.next {
			tb.next = ts.Next
		}
	}
	for p, v := range sf.Values {
		tg, err := t.lookup(p)
		if err != nil || tg.p == nil || tg.p.Volatile {
			t.log.Warn("state names a parameter the tree does not store; skipped", "param", p)
			continue
		}
		cv, err := tg.p.Type.Canonical(v)
		if err != nil {
			t.log.Warn("state holds a value that breaks its type; factory value kept", "param", p, "err", err)
			continue
		}
		tg.n.write(tg.p.idx, cv)
	}
	for p, a := range sf.Attrs {
		tg, err := t.lookup(p)
		if err != nil || tg.p == nil {
			t.log.Warn("state names attributes of an unknown parameter; skipped", "param", p)
			continue
		}
		if a.Notification != nil && *a.Notification >= 0 && *a.Notification <= MaxNotification && tg.p.Notify != NotifyForced {
			tg.n.setNotif(tg.p.idx, int8(*a.Notification))
		}
		if len(a.AccessList) > 0 {
			tg.n.setACL(tg.p.idx, a.AccessList)
		}
	}
}
