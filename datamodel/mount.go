package datamodel

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Backend serves parameters from the system instead of the tree's own
// storage: a file, a command, a device daemon. A real CPE mounts backends
// on the parameters it has live values for.
type Backend interface {
	// Get returns the value of one parameter (concrete path).
	Get(path string) (string, error)
	// Set applies a value, already valid for the parameter's type.
	Set(path, value string) error
}

// ErrNotServed is returned by a Backend's Get for a parameter it has no
// value for: the tree's own stored value is used instead.
var ErrNotServed = errors.New("not served by the backend")

// Pusher is implemented by backends fed by the device itself (a daemon on
// the control socket): a write by the device is then stored, not applied
// back to it.
type Pusher interface {
	Pushed(path, value string)
}

type mount struct {
	prefix string // concrete, or a schema path with {i}
	schema bool   // match against the schema path
	b      Backend
}

func (m *mount) matches(path string) bool {
	p := path
	if m.schema {
		p = SchemaPath(path)
	}
	if strings.HasSuffix(m.prefix, ".") {
		return strings.HasPrefix(p, m.prefix)
	}
	return p == m.prefix
}

// Mount serves the parameter named by prefix, or every parameter below it
// when it ends in ".", from b. The prefix is a concrete path
// ("Device.LAN.IPAddress", "Device.LAN.DHCPOption.2.") or a schema path
// with {i} ("Device.LAN.DHCPOption.{i}.Value"). The longest matching mount
// wins. Reads go to the backend (GetParameterValues, the notify engine's
// polls); a SetParameterValues applies every mounted value through its
// backend, all or nothing, before committing (see SetValues). Mounted
// values are not persisted: the backend owns them.
func (t *Tree) Mount(prefix string, b Backend) error {
	sp := SchemaPath(prefix)
	if strings.HasSuffix(sp, ".") {
		if t.schema.Object(sp) == nil && sp != t.schema.Root.Name+"." {
			return &PathError{Op: "mount", Path: prefix, Err: ErrInvalidName}
		}
	} else if t.schema.Param(sp) == nil {
		return &PathError{Op: "mount", Path: prefix, Err: ErrInvalidName}
	}
	t.hookMu.Lock()
	defer t.hookMu.Unlock()
	t.mounts = append(t.mounts, mount{prefix: prefix, schema: strings.Contains(prefix, "{i}"), b: b})
	t.hasMounts.Store(true)
	sort.SliceStable(t.mounts, func(i, j int) bool { return len(t.mounts[i].prefix) > len(t.mounts[j].prefix) })
	return nil
}

// backendFor returns the backend serving a concrete parameter path.
func (t *Tree) backendFor(path string) Backend {
	t.hookMu.RLock()
	defer t.hookMu.RUnlock()
	for i := range t.mounts {
		if t.mounts[i].matches(path) {
			return t.mounts[i].b
		}
	}
	return nil
}

// Mounted reports whether a backend serves the parameter (the notify
// engine polls such parameters like computed ones).
func (t *Tree) Mounted(path string) bool {
	if !t.hasMounts.Load() {
		return false
	}
	return t.backendFor(path) != nil
}

// applyBackends applies the mounted values of a transaction, in order; if
// one fails, those already applied are set back to the values they had,
// and the failing parameter is reported (TR-069: 9002 for that name).
func (t *Tree) applyBackends(st []staged, origin Origin) (rollback func(), err error) {
	type done struct {
		b    Backend
		path string
		old  string
	}
	var applied []done
	rollback = func() {
		for i := len(applied) - 1; i >= 0; i-- {
			d := applied[i]
			if rerr := d.b.Set(d.path, d.old); rerr != nil {
				t.log.Error("rolling back a backend value failed", "path", d.path, "err", rerr)
			}
		}
	}
	for i := range st {
		path := st[i].n.path + st[i].p.Name
		b := t.backendFor(path)
		if b == nil {
			continue
		}
		if p, ok := b.(Pusher); ok && origin == OriginDevice {
			p.Pushed(path, st[i].v)
			continue
		}
		old, gerr := b.Get(path)
		if errors.Is(gerr, ErrNotServed) {
			old, gerr = st[i].n.vals[st[i].p.idx], nil
		}
		if gerr != nil {
			rollback()
			return nil, &SetError{Faults: []*PathError{{Op: "set", Path: path, Err: fmt.Errorf("%w: reading the current value: %w", ErrApply, gerr)}}}
		}
		if err := b.Set(path, st[i].v); err != nil {
			rollback()
			return nil, &SetError{Faults: []*PathError{{Op: "set", Path: path, Err: fmt.Errorf("%w: %w", ErrApply, err)}}}
		}
		applied = append(applied, done{b, path, old})
	}
	return rollback, nil
}
