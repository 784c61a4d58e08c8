package datamodel

import (
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Origin says who made a change: the ACS through an RPC, or the device itself
// (a TR-111 module, the control socket, the agent's own bookkeeping). The
// notify engine reports only changes the ACS did not make (TR-069 A.3.2.4).
type Origin uint8

const (
	OriginDevice Origin = iota
	OriginACS
)

func (o Origin) String() string {
	if o == OriginACS {
		return "acs"
	}
	return "device"
}

// Getter returns the current value of a computed parameter at a concrete path.
// It is called with the tree's read lock held and must not modify the tree.
type Getter func(path string) (string, error)

// Validator checks a value, already in canonical form, before a transaction
// commits. An error refuses the whole transaction (fault 9007 for that name).
type Validator func(path, value string) error

// Value is one parameter value as GetParameterValues returns it.
type Value struct {
	Name  string
	Value string
	Type  Kind
}

// Info is one entry of a GetParameterNames answer. Object names end in ".".
type Info struct {
	Name     string
	Writable bool
}

// Attributes are the attributes of one parameter (TR-069 A.3.2.5).
type Attributes struct {
	Name         string
	Notification int
	AccessList   []string
}

// AttrChange is one SetParameterAttributes entry.
type AttrChange struct {
	Name               string // full parameter name or partial path
	NotificationChange bool
	Notification       int
	AccessListChange   bool
	AccessList         []string
}

// Change is one parameter write of a transaction.
type Change struct {
	Path  string
	Value string
	// Type is the xsi:type the ACS gave, "" when none; a type that does not
	// fit the parameter and whose value does not parse as the parameter's
	// type is refused with ErrInvalidType.
	Type string
}

// SetOptions qualify a write.
type SetOptions struct {
	Origin Origin
	// ParameterKey, when not nil, becomes ManagementServer.ParameterKey if and
	// only if the operation succeeds (TR-069 A.3.2.1).
	ParameterKey *string
}

// EventKind classifies tree events.
type EventKind uint8

const (
	ValueSet EventKind = iota // a parameter was written (Old may equal Value)
	ObjectAdded
	ObjectDeleted
	AttributesSet
	Reset // the tree returned to factory defaults
)

// Event describes one change, delivered to watchers after the commit.
type Event struct {
	Kind   EventKind
	Path   string // concrete path (objects end in ".")
	Value  string
	Old    string
	Origin Origin
	Def    *ParamDef // for ValueSet and AttributesSet
}

// slot is one parameter's state as the tree's code reads and writes it;
// a node stores it compactly (nodeMeta).
type slot struct {
	v     string
	set   bool // written since factory: persisted unless volatile
	notif int8 // -1: the definition's default
	acl   []string
}

// node is an object instance. Its values are one string per parameter;
// what little else a parameter may have (written since factory, a
// Notification or AccessList attribute) is in meta, made on first use:
// most objects of a fleet CPE never have any. With a Shared cache, vals
// is the one slice every tree built alike holds, until a write copies it.
type node struct {
	def      *ObjectDef
	path     string
	inst     uint32
	gone     bool // deleted; handles to it are stale
	shared   bool // vals belongs to the Shared cache: copy before writing
	vals     []string
	meta     *nodeMeta
	children []*node  // single child objects, by def index; nil for tables
	tables   []*table // tables, by def index; nil for single objects
}

type nodeMeta struct {
	set   []bool
	notif []int8
	acl   map[int][]string
}

func (n *node) slot(i int) slot {
	s := slot{v: n.vals[i], notif: -1}
	if m := n.meta; m != nil {
		s.set, s.notif, s.acl = m.set[i], m.notif[i], m.acl[i]
	}
	return s
}

// own makes vals the node's own before a write.
func (n *node) own() {
	if n.shared {
		n.vals = append([]string(nil), n.vals...)
		n.shared = false
	}
}

func (n *node) ensureMeta() *nodeMeta {
	if n.meta == nil {
		m := &nodeMeta{set: make([]bool, len(n.vals)), notif: make([]int8, len(n.vals))}
		for i := range m.notif {
			m.notif[i] = -1
		}
		n.meta = m
	}
	return n.meta
}

// put stores a whole slot (an undo).
func (n *node) put(i int, s slot) {
	n.own()
	n.vals[i] = s.v
	if n.meta == nil && !s.set && s.notif == -1 && s.acl == nil {
		return
	}
	m := n.ensureMeta()
	m.set[i], m.notif[i] = s.set, s.notif
	n.setACL(i, s.acl)
}

// write sets a value written since factory.
func (n *node) write(i int, v string) {
	n.own()
	n.vals[i] = v
	n.ensureMeta().set[i] = true
}

func (n *node) setNotif(i int, v int8) {
	if n.meta == nil && v == -1 {
		return
	}
	n.ensureMeta().notif[i] = v
}

func (n *node) setACL(i int, acl []string) {
	if acl == nil {
		if n.meta != nil && n.meta.acl != nil {
			delete(n.meta.acl, i)
		}
		return
	}
	m := n.ensureMeta()
	if m.acl == nil {
		m.acl = map[int][]string{}
	}
	m.acl[i] = acl
}

type table struct {
	def   *ObjectDef
	next  uint32
	items []*node // ascending instance numbers
}

// Options configure a Tree.
type Options struct {
	// StateDir is where the tree persists (file tree.json); "" keeps the tree
	// in memory only.
	StateDir string
	// Factory holds factory default values by concrete parameter path; they
	// override the schema defaults and come back on a factory reset. A path
	// in a table instance the schema does not create makes that instance
	// (a template dumped from a real device). The map is read, never
	// written, and may be shared by many trees (a fleet's template).
	Factory map[string]string
	// FactoryOverlay holds this tree's own factory values on top of
	// Factory (a fleet CPE's serial number and credentials).
	FactoryOverlay map[string]string
	// Shared, when set, is a cache the trees of one schema and Factory
	// share (a fleet's CPEs): the factory values of each object are held
	// once, and a tree copies an object's values when it first writes one.
	Shared *Shared
	// Logger receives warnings about state files; nil discards.
	Logger *slog.Logger
}

// Tree is a parameter tree built from a Schema. It is safe for concurrent use.
type Tree struct {
	schema  *Schema
	factory map[string]string // shared; never written
	overlay map[string]string
	shared  *Shared
	log     *slog.Logger
	store   string

	// mu guards the following.
	mu   sync.RWMutex
	root *node

	hookMu     sync.RWMutex // guards the following
	getters    map[*ParamDef]Getter
	validators map[*ParamDef][]Validator
	onChange   map[*ParamDef][]func(Event)
	onCommit   []func([]Event)
	watchers   map[int]func(Event)
	nextWatch  int
	mounts     []mount
	hasMounts  atomic.Bool
}

// New builds a tree holding the factory defaults of the schema, overridden by
// opts.Factory. A factory value that names no parameter or breaks its type is
// an error naming the path. New does no I/O; call Load to read saved state.
func New(s *Schema, opts Options) (*Tree, error) {
	t := &Tree{
		schema:     s,
		factory:    opts.Factory,
		overlay:    opts.FactoryOverlay,
		shared:     opts.Shared,
		log:        opts.Logger,
		getters:    map[*ParamDef]Getter{},
		validators: map[*ParamDef][]Validator{},
		onChange:   map[*ParamDef][]func(Event){},
		watchers:   map[int]func(Event){},
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if opts.StateDir != "" {
		t.store = opts.StateDir
	}
	root, err := t.buildFactory()
	if err != nil {
		return nil, err
	}
	t.root = root
	return t, nil
}

// Schema returns the schema the tree was built from.
func (t *Tree) Schema() *Schema { return t.schema }

// Shared is what trees built alike have in common (Options.Shared).
type Shared struct {
	mu   sync.Mutex
	objs map[string]*sharedObj
}

type sharedObj struct {
	path string
	vals []string
}

// NewShared makes an empty cache for the trees of one schema and factory.
func NewShared() *Shared { return &Shared{objs: map[string]*sharedObj{}} }

// share makes every node whose factory values equal the cached ones of
// its path hold the cached slice (and path string); the first tree to
// build a path gives its own.
func (sh *Shared) share(root *node) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var visit func(n *node)
	visit = func(n *node) {
		if so, ok := sh.objs[n.path]; !ok {
			sh.objs[n.path] = &sharedObj{path: n.path, vals: n.vals}
			n.shared = true
		} else if equalStrings(so.vals, n.vals) {
			n.vals, n.path, n.shared = so.vals, so.path, true
		}
		for _, c := range n.children {
			if c != nil {
				visit(c)
			}
		}
		for _, tb := range n.tables {
			if tb == nil {
				continue
			}
			for _, it := range tb.items {
				visit(it)
			}
		}
	}
	visit(root)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (t *Tree) buildFactory() (*node, error) {
	root, err := t.buildFactoryNodes()
	if err == nil && t.shared != nil {
		t.shared.share(root)
	}
	return root, err
}

func (t *Tree) buildFactoryNodes() (*node, error) {
	root := t.newNode(t.schema.Root, t.schema.Root.Name+".", 0, true)
	for _, m := range []map[string]string{t.factory, t.overlay} {
		paths := make([]string, 0, len(m))
		for p := range m {
			paths = append(paths, p)
		}
		// Sorted, so that instances are created in ascending order.
		sort.Strings(paths)
		for _, p := range paths {
			n, pd, err := t.factorySlot(root, p)
			if err != nil {
				return nil, &PathError{Op: "factory", Path: p, Err: err}
			}
			if pd.CountOf != nil {
				return nil, &PathError{Op: "factory", Path: p, Err: ErrNotWritable}
			}
			v, err := pd.Type.Canonical(m[p])
			if err != nil {
				return nil, &PathError{Op: "factory", Path: p, Err: err}
			}
			n.own()
			n.vals[pd.idx] = v
		}
	}
	return root, nil
}

// factorySlot finds a factory parameter, creating the table instances its
// path names that do not exist yet.
func (t *Tree) factorySlot(root *node, path string) (*node, *ParamDef, error) {
	tg, err := lookupIn(root, t.schema, path)
	if err == nil {
		if tg.p == nil {
			return nil, nil, ErrInvalidName
		}
		return tg.n, tg.p, nil
	}
	rn := root.def.Name + "."
	if !strings.HasPrefix(path, rn) {
		return nil, nil, ErrInvalidName
	}
	n := root
	segs := strings.Split(path[len(rn):], ".")
	for i := 0; i < len(segs)-1; i++ {
		c := n.def.objName[segs[i]]
		if c == nil {
			return nil, nil, ErrInvalidName
		}
		if !c.Multi {
			n = n.children[c.idx]
			continue
		}
		i++
		if i >= len(segs)-1 || !isInstance(segs[i]) {
			return nil, nil, ErrInvalidName
		}
		inst, err := strconv.ParseUint(segs[i], 10, 32)
		if err != nil {
			return nil, nil, ErrInvalidName
		}
		tb := n.tables[c.idx]
		_, in := tb.find(uint32(inst))
		if in == nil {
			if c.MaxEntries > 0 && len(tb.items) >= c.MaxEntries {
				return nil, nil, ErrResources
			}
			in = t.newNode(c, n.path+c.Name+"."+segs[i]+".", uint32(inst), true)
			tb.add(in)
		}
		n = in
	}
	p := n.def.byName[segs[len(segs)-1]]
	if p == nil {
		return nil, nil, ErrInvalidName
	}
	return n, p, nil
}

// newNode creates an object node with default values, its single child
// objects and, when factory is true, the factory instances of its tables.
func (t *Tree) newNode(def *ObjectDef, path string, inst uint32, factory bool) *node {
	n := &node{def: def, path: path, inst: inst, vals: make([]string, len(def.Params))}
	for i, p := range def.Params {
		n.vals[i] = p.Default
	}
	for _, c := range def.Children {
		if c.Multi {
			if n.tables == nil {
				n.tables = make([]*table, len(def.Children))
			}
			tb := &table{def: c, next: 1}
			n.tables[c.idx] = tb
			if factory {
				for i := 0; i < c.Instances; i++ {
					tb.add(t.newNode(c, path+c.Name+"."+strconv.FormatUint(uint64(tb.next), 10)+".", tb.next, true))
				}
			}
			continue
		}
		if n.children == nil {
			n.children = make([]*node, len(def.Children))
		}
		n.children[c.idx] = t.newNode(c, path+c.Name+".", 0, factory)
	}
	return n
}

func (tb *table) add(n *node) {
	i := sort.Search(len(tb.items), func(i int) bool { return tb.items[i].inst >= n.inst })
	tb.items = append(tb.items, nil)
	copy(tb.items[i+1:], tb.items[i:])
	tb.items[i] = n
	if n.inst >= tb.next {
		tb.next = n.inst + 1
	}
}

func (tb *table) find(inst uint32) (int, *node) {
	i := sort.Search(len(tb.items), func(i int) bool { return tb.items[i].inst >= inst })
	if i < len(tb.items) && tb.items[i].inst == inst {
		return i, tb.items[i]
	}
	return -1, nil
}

// target is what a path names: a parameter (n, p), an object (n), or a table
// itself (n is the parent, tab the table's definition).
type target struct {
	n   *node
	p   *ParamDef
	tab *ObjectDef
}

func (tg target) partial() bool { return tg.p == nil }

// lookupIn resolves a concrete path. "" names the root (as a partial path).
func lookupIn(root *node, s *Schema, path string) (target, error) {
	if path == "" {
		return target{n: root}, nil
	}
	rn := root.def.Name
	if !strings.HasPrefix(path, rn) || (len(path) > len(rn) && path[len(rn)] != '.') {
		return target{}, ErrInvalidName
	}
	if len(path) == len(rn) {
		return target{}, ErrInvalidName // "Device" without the dot
	}
	rest := path[len(rn)+1:]
	n := root
	for rest != "" {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			// last segment without a dot: a parameter
			p := n.def.byName[rest]
			if p == nil {
				return target{}, ErrInvalidName
			}
			return target{n: n, p: p}, nil
		}
		seg := rest[:i]
		rest = rest[i+1:]
		c := n.def.objName[seg]
		if c == nil {
			return target{}, ErrInvalidName
		}
		if !c.Multi {
			n = n.children[c.idx]
			continue
		}
		tb := n.tables[c.idx]
		if rest == "" {
			return target{n: n, tab: c}, nil
		}
		if rest[0] == '[' {
			// An instance named by its Alias (TR-069 3.6.1 Alias-Based
			// Addressing): "Table.[alias].".
			k := strings.Index(rest, "].")
			if k < 0 {
				return target{}, ErrInvalidName
			}
			in := tb.byAlias(c, rest[1:k])
			if in == nil {
				return target{}, ErrInvalidName
			}
			n = in
			rest = rest[k+2:]
			continue
		}
		j := strings.IndexByte(rest, '.')
		if j < 0 {
			return target{}, ErrInvalidName
		}
		num := rest[:j]
		if !isInstance(num) {
			return target{}, ErrInvalidName
		}
		inst, err := strconv.ParseUint(num, 10, 32)
		if err != nil {
			return target{}, ErrInvalidName
		}
		_, in := tb.find(uint32(inst))
		if in == nil {
			return target{}, ErrInvalidName
		}
		n = in
		rest = rest[j+1:]
	}
	return target{n: n}, nil
}

func (t *Tree) lookup(path string) (target, error) {
	return lookupIn(t.root, t.schema, path)
}

// value returns a parameter's value; hidden ones read as "" when acsView.
func (t *Tree) value(n *node, p *ParamDef, acsView bool) (string, error) {
	if acsView && p.Hidden || p.Command {
		return NullValue(p.Type), nil
	}
	if p.CountOf != nil {
		return strconv.Itoa(len(n.tables[p.CountOf.idx].items)), nil
	}
	if p.Computed {
		t.hookMu.RLock()
		g := t.getters[p]
		t.hookMu.RUnlock()
		if g != nil {
			return g(n.path + p.Name)
		}
	}
	if t.hasMounts.Load() {
		if b := t.backendFor(n.path + p.Name); b != nil {
			v, err := b.Get(n.path + p.Name)
			if !errors.Is(err, ErrNotServed) {
				return v, err
			}
		}
	}
	return n.vals[p.idx], nil
}

// Get returns the value of one parameter as the device sees it: hidden
// parameters (passwords) return their real value. Use GetValues for what the
// ACS may read.
func (t *Tree) Get(path string) (string, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	tg, err := t.lookup(path)
	if err != nil || tg.p == nil {
		return "", &PathError{Op: "get", Path: path, Err: ErrInvalidName}
	}
	return t.value(tg.n, tg.p, false)
}

// MustGet is Get for paths the caller knows exist; it returns "" on error.
func (t *Tree) MustGet(path string) string {
	v, _ := t.Get(path)
	return v
}

// GetValues answers GetParameterValues: each name is a full parameter name or
// a partial path (ending in "."; "" is the whole tree) that expands to every
// parameter below it. Any unknown name fails the whole call (fault 9005).
func (t *Tree) GetValues(names []string) ([]Value, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Value, 0, len(names))
	for _, name := range names {
		tg, err := t.lookup(name)
		if err != nil {
			return nil, &PathError{Op: "get", Path: name, Err: ErrInvalidName}
		}
		if tg.p != nil {
			v, err := t.value(tg.n, tg.p, true)
			if err != nil {
				return nil, &PathError{Op: "get", Path: name, Err: fmt.Errorf("%w: %w", ErrApply, err)}
			}
			if strings.IndexByte(name, '[') >= 0 {
				// Named by an alias: answered with instance numbers
				// (InstanceMode InstanceNumber, TR-069 3.6.1).
				name = tg.n.path + tg.p.Name
			}
			out = append(out, Value{Name: name, Value: v, Type: tg.p.Type.Wire()})
			continue
		}
		err = t.walkParams(tg, func(n *node, p *ParamDef) error {
			v, err := t.value(n, p, true)
			if err != nil {
				return &PathError{Op: "get", Path: n.path + p.Name, Err: fmt.Errorf("%w: %w", ErrApply, err)}
			}
			out = append(out, Value{Name: n.path + p.Name, Value: v, Type: p.Type.Wire()})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// walkParams visits every parameter below a partial-path target in order.
func (t *Tree) walkParams(tg target, fn func(*node, *ParamDef) error) error {
	if tg.tab != nil {
		for _, in := range tg.n.tables[tg.tab.idx].items {
			if err := walkNode(in, fn); err != nil {
				return err
			}
		}
		return nil
	}
	return walkNode(tg.n, fn)
}

func walkNode(n *node, fn func(*node, *ParamDef) error) error {
	for _, p := range n.def.Params {
		if err := fn(n, p); err != nil {
			return err
		}
	}
	for _, c := range n.def.Children {
		if c.Multi {
			for _, in := range n.tables[c.idx].items {
				if err := walkNode(in, fn); err != nil {
					return err
				}
			}
			continue
		}
		if err := walkNode(n.children[c.idx], fn); err != nil {
			return err
		}
	}
	return nil
}

// GetNames answers GetParameterNames (TR-069 A.3.2.3). An empty path names
// the root. With nextLevel, only the direct children of the named object are
// listed (for "" just the root object); a full parameter name with nextLevel
// is an ErrInvalidArgument. Without nextLevel the named object itself and its
// whole subtree are listed, objects with a trailing ".".
func (t *Tree) GetNames(path string, nextLevel bool) ([]Info, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	tg, err := t.lookup(path)
	if err != nil {
		return nil, &PathError{Op: "names", Path: path, Err: ErrInvalidName}
	}
	if tg.p != nil {
		if nextLevel {
			return nil, &PathError{Op: "names", Path: path, Err: fmt.Errorf("%w: NextLevel true with a parameter name", ErrInvalidArgument)}
		}
		return []Info{{Name: path, Writable: tg.p.Writable}}, nil
	}
	var out []Info
	if path == "" && nextLevel {
		return []Info{{Name: t.root.path}}, nil
	}
	if tg.tab != nil {
		tb := tg.n.tables[tg.tab.idx]
		if !nextLevel {
			out = append(out, Info{Name: path, Writable: tg.tab.Writable})
		}
		for _, in := range tb.items {
			if nextLevel {
				out = append(out, Info{Name: in.path, Writable: tg.tab.Writable})
			} else {
				out = appendNames(out, in, true)
			}
		}
		return out, nil
	}
	if nextLevel {
		return appendChildren(out, tg.n), nil
	}
	return appendNames(out, tg.n, true), nil
}

func objectWritable(n *node) bool { return n.def.Multi && n.def.Writable }

func appendChildren(out []Info, n *node) []Info {
	for _, p := range n.def.Params {
		out = append(out, Info{Name: n.path + p.Name, Writable: p.Writable})
	}
	for _, c := range n.def.Children {
		if c.Multi {
			out = append(out, Info{Name: n.path + c.Name + ".", Writable: c.Writable})
			continue
		}
		out = append(out, Info{Name: n.children[c.idx].path})
	}
	return out
}

func appendNames(out []Info, n *node, self bool) []Info {
	if self {
		out = append(out, Info{Name: n.path, Writable: objectWritable(n)})
	}
	for _, p := range n.def.Params {
		out = append(out, Info{Name: n.path + p.Name, Writable: p.Writable})
	}
	for _, c := range n.def.Children {
		if c.Multi {
			out = append(out, Info{Name: n.path + c.Name + ".", Writable: c.Writable})
			for _, in := range n.tables[c.idx].items {
				out = appendNames(out, in, true)
			}
			continue
		}
		out = appendNames(out, n.children[c.idx], true)
	}
	return out
}

// Bind makes a computed parameter read its value from g. schemaPath may hold
// "{i}" segments; g receives the concrete path. g runs under the tree's read
// lock and must not call the tree: a second read lock waits behind a writer
// that queued meanwhile, which waits for the first (sync.RWMutex), and the
// device hangs. A getter that needs a value of the tree keeps a copy,
// updated from OnCommit.
func (t *Tree) Bind(schemaPath string, g Getter) error {
	p := t.schema.Param(schemaPath)
	if p == nil {
		return &PathError{Op: "bind", Path: schemaPath, Err: ErrInvalidName}
	}
	t.hookMu.Lock()
	defer t.hookMu.Unlock()
	t.getters[p] = g
	return nil
}

// Bound reports whether a getter is bound to the parameter definition.
func (t *Tree) Bound(p *ParamDef) bool {
	t.hookMu.RLock()
	defer t.hookMu.RUnlock()
	return t.getters[p] != nil
}

// AddValidator adds a check run on every write of the parameter.
func (t *Tree) AddValidator(schemaPath string, v Validator) error {
	p := t.schema.Param(schemaPath)
	if p == nil {
		return &PathError{Op: "validate", Path: schemaPath, Err: ErrInvalidName}
	}
	t.hookMu.Lock()
	defer t.hookMu.Unlock()
	t.validators[p] = append(t.validators[p], v)
	return nil
}

// OnChange registers fn to run after every committed write of the parameter
// (ValueSet and AttributesSet events), in commit order, outside the tree's
// lock, so fn may read and write the tree.
func (t *Tree) OnChange(schemaPath string, fn func(Event)) error {
	p := t.schema.Param(schemaPath)
	if p == nil {
		return &PathError{Op: "hook", Path: schemaPath, Err: ErrInvalidName}
	}
	t.hookMu.Lock()
	defer t.hookMu.Unlock()
	t.onChange[p] = append(t.onChange[p], fn)
	return nil
}

// OnCommit registers fn to run once per committed operation (a
// SetParameterValues transaction, an AddObject, a factory reset...) with
// all its events, after the per-parameter hooks and watchers: a component
// that restarts when any of several parameters changes restarts once, not
// once per parameter. fn may read and write the tree.
func (t *Tree) OnCommit(fn func([]Event)) {
	t.hookMu.Lock()
	defer t.hookMu.Unlock()
	t.onCommit = append(t.onCommit, fn)
}

// Watch registers fn to receive every event of the tree after it commits. It
// returns a function that removes the watcher.
func (t *Tree) Watch(fn func(Event)) (cancel func()) {
	t.hookMu.Lock()
	id := t.nextWatch
	t.nextWatch++
	t.watchers[id] = fn
	t.hookMu.Unlock()
	return func() {
		t.hookMu.Lock()
		delete(t.watchers, id)
		t.hookMu.Unlock()
	}
}

func (t *Tree) emit(evs []Event) {
	if len(evs) == 0 {
		return
	}
	t.hookMu.RLock()
	watchers := make([]func(Event), 0, len(t.watchers))
	ids := make([]int, 0, len(t.watchers))
	for id := range t.watchers {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		watchers = append(watchers, t.watchers[id])
	}
	hooks := make([][]func(Event), len(evs))
	for i, e := range evs {
		if e.Def != nil {
			hooks[i] = t.onChange[e.Def]
		}
	}
	commits := t.onCommit
	t.hookMu.RUnlock()
	for i, e := range evs {
		for _, h := range hooks[i] {
			h(e)
		}
		for _, w := range watchers {
			w(e)
		}
	}
	for _, fn := range commits {
		fn(evs)
	}
}

type staged struct {
	n   *node
	p   *ParamDef
	v   string
	old string
}

// SetValues is the SetParameterValues transaction: every change is staged and
// validated; if any fails nothing changes and a *SetError lists one fault per
// failing parameter. Otherwise all values are committed and persisted at
// once, ParameterKey is set, and the change hooks run.
func (t *Tree) SetValues(changes []Change, opt SetOptions) error {
	t.mu.Lock()
	st, err := t.stage(changes, opt.Origin)
	if err != nil {
		t.mu.Unlock()
		return err
	}
	evs, err := t.commit(st, opt)
	t.mu.Unlock()
	if err != nil {
		return err
	}
	t.emit(evs)
	return nil
}

// Set writes one parameter as the device (Origin device); it is SetValues for
// a single value with the read-only restriction lifted.
func (t *Tree) Set(path, value string) error {
	err := t.SetValues([]Change{{Path: path, Value: value}}, SetOptions{Origin: OriginDevice})
	var se *SetError
	if errors.As(err, &se) && len(se.Faults) == 1 {
		return se.Faults[0]
	}
	return err
}

func (t *Tree) stage(changes []Change, origin Origin) ([]staged, error) {
	var faults []*PathError
	st := make([]staged, 0, len(changes))
	seen := make(map[string]struct{}, len(changes))
	t.hookMu.RLock()
	defer t.hookMu.RUnlock()
	for _, c := range changes {
		fail := func(err error) { faults = append(faults, &PathError{Op: "set", Path: c.Path, Err: err}) }
		if _, dup := seen[c.Path]; dup {
			fail(ErrDuplicate)
			continue
		}
		seen[c.Path] = struct{}{}
		tg, err := t.lookup(c.Path)
		if err != nil || tg.p == nil {
			fail(ErrInvalidName)
			continue
		}
		p := tg.p
		if origin == OriginACS && !p.Writable {
			fail(ErrNotWritable)
			continue
		}
		if p.CountOf != nil || (p.Computed && t.getters[p] != nil) {
			fail(ErrNotWritable)
			continue
		}
		v, err := p.Type.Canonical(c.Value)
		if c.Type != "" {
			k, known := KindFromXSD(c.Type)
			switch {
			case !known:
				fail(fmt.Errorf("%w: unknown type %q", ErrInvalidType, c.Type))
				continue
			case k != p.Type.Wire() && k != String && err != nil:
				fail(fmt.Errorf("%w: %s given for a %s parameter", ErrInvalidType, c.Type, p.Type.Kind))
				continue
			}
		}
		if err != nil {
			fail(err)
			continue
		}
		if origin == OriginACS && p.Type.WriteEnum != nil && !contains(p.Type.WriteEnum, v) {
			fail(fmt.Errorf("%w: %q is set by the device only; the ACS may write %s", ErrInvalidValue, v, strings.Join(p.Type.WriteEnum, " or ")))
			continue
		}
		bad := false
		for _, val := range t.validators[p] {
			if verr := val(c.Path, v); verr != nil {
				fail(fmt.Errorf("%w: %w", ErrInvalidValue, verr))
				bad = true
				break
			}
		}
		if bad {
			continue
		}
		st = append(st, staged{n: tg.n, p: p, v: v})
	}
	if len(faults) > 0 {
		return nil, &SetError{Faults: faults}
	}
	return st, nil
}

func (t *Tree) paramKeySlot() (*node, *ParamDef) {
	for _, p := range t.schema.order {
		if p.ParameterKey {
			tg, err := t.lookup(p.Path)
			if err == nil && tg.p != nil {
				return tg.n, tg.p
			}
		}
	}
	return nil, nil
}

// commit applies staged values, persists, and on a failed save restores the
// previous values so that memory and disk agree.
func (t *Tree) commit(st []staged, opt SetOptions) ([]Event, error) {
	type undo struct {
		n   *node
		i   int
		old slot
	}
	rollback := func() {}
	if t.hasMounts.Load() {
		rb, err := t.applyBackends(st, opt.Origin)
		if err != nil {
			return nil, err
		}
		rollback = rb
	}
	undos := make([]undo, 0, len(st)+1)
	persist := false
	evs := make([]Event, 0, len(st)+1)
	for i := range st {
		n, idx := st[i].n, st[i].p.idx
		undos = append(undos, undo{n, idx, n.slot(idx)})
		st[i].old = n.vals[idx]
		n.write(idx, st[i].v)
		if !st[i].p.Volatile {
			persist = true
		}
		evs = append(evs, Event{Kind: ValueSet, Path: st[i].n.path + st[i].p.Name, Value: st[i].v, Old: st[i].old, Origin: opt.Origin, Def: st[i].p})
	}
	if opt.ParameterKey != nil {
		if n, p := t.paramKeySlot(); p != nil {
			undos = append(undos, undo{n, p.idx, n.slot(p.idx)})
			evs = append(evs, Event{Kind: ValueSet, Path: n.path + p.Name, Value: *opt.ParameterKey, Old: n.vals[p.idx], Origin: opt.Origin, Def: p})
			n.write(p.idx, *opt.ParameterKey)
			persist = true
		}
	}
	if persist {
		if err := t.saveLocked(); err != nil {
			for i := len(undos) - 1; i >= 0; i-- {
				undos[i].n.put(undos[i].i, undos[i].old)
			}
			rollback()
			return nil, fmt.Errorf("%w: %w", ErrApply, err)
		}
	}
	return evs, nil
}

// setParameterKey sets the ParameterKey slot with the lock held and returns
// the event.
func (t *Tree) setParameterKey(key *string, origin Origin) []Event {
	if key == nil {
		return nil
	}
	n, p := t.paramKeySlot()
	if p == nil {
		return nil
	}
	ev := Event{Kind: ValueSet, Path: n.path + p.Name, Value: *key, Old: n.vals[p.idx], Origin: origin, Def: p}
	n.write(p.idx, *key)
	return []Event{ev}
}

// AddObject creates an instance of the table named by path ("X.Table.") with
// default values and returns its instance number. Instance numbers are never
// reused: each table keeps a counter that only grows, and it is persisted.
func (t *Tree) AddObject(path string, opt SetOptions) (uint32, error) {
	return t.AddInstance(path, nil, opt)
}

// AddInstance is AddObject with the new instance's parameters set at once
// (values by parameter name within the instance): a device module adding a
// table entry (TR-111 1.2.1 ManageableDevice) never shows it half filled.
// A value that breaks its type fails the whole addition.
func (t *Tree) AddInstance(path string, values map[string]string, opt SetOptions) (uint32, error) {
	t.mu.Lock()
	tg, err := t.lookup(path)
	if err != nil || tg.tab == nil {
		t.mu.Unlock()
		return 0, &PathError{Op: "add", Path: path, Err: ErrInvalidName}
	}
	if opt.Origin == OriginACS && !tg.tab.Writable {
		t.mu.Unlock()
		return 0, &PathError{Op: "add", Path: path, Err: ErrNotWritable}
	}
	tb := tg.n.tables[tg.tab.idx]
	if tg.tab.MaxEntries > 0 && len(tb.items) >= tg.tab.MaxEntries {
		t.mu.Unlock()
		return 0, &PathError{Op: "add", Path: path, Err: ErrResources}
	}
	if tb.next == 0 { // the 32-bit counter wrapped: refuse rather than reuse
		t.mu.Unlock()
		return 0, &PathError{Op: "add", Path: path, Err: ErrResources}
	}
	inst := tb.next
	oldNext := tb.next
	n := t.newNode(tg.tab, path+strconv.FormatUint(uint64(inst), 10)+".", inst, false)
	for name, v := range values {
		p := tg.tab.byName[name]
		if p == nil || p.Computed || p.CountOf != nil {
			t.mu.Unlock()
			return 0, &PathError{Op: "add", Path: n.path + name, Err: ErrInvalidName}
		}
		cv, err := p.Type.Canonical(v)
		if err != nil {
			t.mu.Unlock()
			return 0, &PathError{Op: "add", Path: n.path + name, Err: err}
		}
		n.write(p.idx, cv)
	}
	tb.add(n)
	oldKey := t.paramKeyValue()
	evs := []Event{{Kind: ObjectAdded, Path: n.path, Origin: opt.Origin}}
	evs = append(evs, t.setParameterKey(opt.ParameterKey, opt.Origin)...)
	if tg.tab.Count != nil {
		cnt := strconv.Itoa(len(tb.items))
		evs = append(evs, Event{Kind: ValueSet, Path: tg.n.path + tg.tab.Count.Name, Value: cnt, Old: strconv.Itoa(len(tb.items) - 1), Origin: opt.Origin, Def: tg.tab.Count})
	}
	if !tg.tab.Volatile || opt.ParameterKey != nil {
		if err := t.saveLocked(); err != nil {
			i, _ := tb.find(inst)
			tb.items = append(tb.items[:i], tb.items[i+1:]...)
			tb.next = oldNext
			t.restoreParamKey(oldKey)
			t.mu.Unlock()
			return 0, &PathError{Op: "add", Path: path, Err: fmt.Errorf("%w: %w", ErrApply, err)}
		}
	}
	t.mu.Unlock()
	t.emit(evs)
	return inst, nil
}

func (t *Tree) paramKeyValue() *slot {
	n, p := t.paramKeySlot()
	if p == nil {
		return nil
	}
	s := n.slot(p.idx)
	return &s
}

func (t *Tree) restoreParamKey(old *slot) {
	if old == nil {
		return
	}
	n, p := t.paramKeySlot()
	n.put(p.idx, *old)
}

// DeleteObject removes the instance named by path ("X.Table.3.") with its
// whole subtree.
func (t *Tree) DeleteObject(path string, opt SetOptions) error {
	t.mu.Lock()
	tg, err := t.lookup(path)
	if err != nil || tg.p != nil || tg.tab != nil || tg.n.inst == 0 || !strings.HasSuffix(path, ".") {
		t.mu.Unlock()
		return &PathError{Op: "delete", Path: path, Err: ErrInvalidName}
	}
	n := tg.n
	if opt.Origin == OriginACS && !n.def.Writable {
		t.mu.Unlock()
		return &PathError{Op: "delete", Path: path, Err: ErrNotWritable}
	}
	path = n.path // the instance's own path, also when named by its alias
	parentPath := strings.TrimSuffix(path, strconv.FormatUint(uint64(n.inst), 10)+".")
	ptg, err := t.lookup(parentPath)
	if err != nil || ptg.tab == nil {
		t.mu.Unlock()
		return &PathError{Op: "delete", Path: path, Err: ErrInvalidName}
	}
	tb := ptg.n.tables[ptg.tab.idx]
	i, _ := tb.find(n.inst)
	tb.items = append(tb.items[:i], tb.items[i+1:]...)
	oldKey := t.paramKeyValue()
	evs := []Event{{Kind: ObjectDeleted, Path: path, Origin: opt.Origin}}
	evs = append(evs, t.setParameterKey(opt.ParameterKey, opt.Origin)...)
	if ptg.tab.Count != nil {
		evs = append(evs, Event{Kind: ValueSet, Path: ptg.n.path + ptg.tab.Count.Name, Value: strconv.Itoa(len(tb.items)), Old: strconv.Itoa(len(tb.items) + 1), Origin: opt.Origin, Def: ptg.tab.Count})
	}
	if !n.def.Volatile || opt.ParameterKey != nil {
		if err := t.saveLocked(); err != nil {
			tb.add(n)
			t.restoreParamKey(oldKey)
			t.mu.Unlock()
			return &PathError{Op: "delete", Path: path, Err: fmt.Errorf("%w: %w", ErrApply, err)}
		}
	}
	markGone(n)
	t.mu.Unlock()
	t.emit(evs)
	return nil
}

func markGone(n *node) {
	n.gone = true
	for _, c := range n.children {
		if c != nil {
			markGone(c)
		}
	}
	for _, tb := range n.tables {
		if tb != nil {
			for _, in := range tb.items {
				markGone(in)
			}
		}
	}
}

// Instances lists the instance numbers of the table named by path ("X.Table.").
func (t *Tree) Instances(path string) ([]uint32, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	tg, err := t.lookup(path)
	if err != nil || tg.tab == nil {
		return nil, &PathError{Op: "get", Path: path, Err: ErrInvalidName}
	}
	items := tg.n.tables[tg.tab.idx].items
	out := make([]uint32, len(items))
	for i, in := range items {
		out[i] = in.inst
	}
	return out, nil
}

func effectiveNotify(p *ParamDef, n *node) int {
	if p.Notify == NotifyForced {
		return 2
	}
	if n.meta == nil || n.meta.notif[p.idx] < 0 {
		return p.DefaultNotify
	}
	return int(n.meta.notif[p.idx])
}

// GetAttributes answers GetParameterAttributes; partial paths expand to every
// parameter below them.
func (t *Tree) GetAttributes(names []string) ([]Attributes, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []Attributes
	for _, name := range names {
		tg, err := t.lookup(name)
		if err != nil {
			return nil, &PathError{Op: "attr", Path: name, Err: ErrInvalidName}
		}
		add := func(n *node, p *ParamDef) error {
			acl := n.slot(p.idx).acl
			if acl == nil {
				acl = []string{}
			}
			out = append(out, Attributes{Name: n.path + p.Name, Notification: effectiveNotify(p, n), AccessList: acl})
			return nil
		}
		if tg.p != nil {
			add(tg.n, tg.p)
			continue
		}
		t.walkParams(tg, add)
	}
	return out, nil
}

// Notification returns the effective Notification attribute of a parameter.
func (t *Tree) Notification(path string) (int, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	tg, err := t.lookup(path)
	if err != nil || tg.p == nil {
		return 0, &PathError{Op: "attr", Path: path, Err: ErrInvalidName}
	}
	return effectiveNotify(tg.p, tg.n), nil
}

// MaxNotification is the highest Notification value SetAttributes accepts;
// values 3-6 (CWMP 1.4 lightweight notification) are not implemented.
const MaxNotification = 2

// SetAttributes answers SetParameterAttributes: all entries are checked
// first and applied only if every one is valid. Active Notification on a
// canDeny parameter and anything but Active on a forced one give
// ErrNotifyDenied (TR-069 A.3.2.4, TR-111 1.2.6.1).
func (t *Tree) SetAttributes(changes []AttrChange, origin Origin) error {
	t.mu.Lock()
	type target2 struct {
		n *node
		p *ParamDef
		c *AttrChange
	}
	var todo []target2
	for i := range changes {
		c := &changes[i]
		tg, err := t.lookup(c.Name)
		if err != nil {
			t.mu.Unlock()
			return &PathError{Op: "attr", Path: c.Name, Err: ErrInvalidName}
		}
		if c.NotificationChange && (c.Notification < 0 || c.Notification > MaxNotification) {
			t.mu.Unlock()
			return &PathError{Op: "attr", Path: c.Name, Err: fmt.Errorf("%w: notification %d", ErrInvalidArgument, c.Notification)}
		}
		if c.AccessListChange {
			for _, a := range c.AccessList {
				if a != "Subscriber" {
					t.mu.Unlock()
					return &PathError{Op: "attr", Path: c.Name, Err: fmt.Errorf("%w: access list entry %q", ErrInvalidArgument, a)}
				}
			}
		}
		var verr error
		visit := func(n *node, p *ParamDef) error {
			if c.NotificationChange {
				if p.Notify == NotifyForced && c.Notification != 2 {
					verr = &PathError{Op: "attr", Path: n.path + p.Name, Err: fmt.Errorf("%w: active notification is forced", ErrNotifyDenied)}
					return verr
				}
				if p.Notify == NotifyCanDeny && c.Notification == 2 {
					verr = &PathError{Op: "attr", Path: n.path + p.Name, Err: fmt.Errorf("%w: active notification is not supported", ErrNotifyDenied)}
					return verr
				}
			}
			todo = append(todo, target2{n, p, c})
			return nil
		}
		if tg.p != nil {
			visit(tg.n, tg.p)
		} else {
			t.walkParams(tg, visit)
		}
		if verr != nil {
			t.mu.Unlock()
			return verr
		}
	}
	var evs []Event
	type undo struct {
		n   *node
		i   int
		old slot
	}
	var undos []undo
	for _, x := range todo {
		undos = append(undos, undo{x.n, x.p.idx, x.n.slot(x.p.idx)})
		if x.c.NotificationChange && x.p.Notify != NotifyForced {
			x.n.setNotif(x.p.idx, int8(x.c.Notification))
		}
		if x.c.AccessListChange {
			acl := append([]string(nil), x.c.AccessList...)
			if len(acl) == 0 {
				acl = nil
			}
			x.n.setACL(x.p.idx, acl)
		}
		evs = append(evs, Event{Kind: AttributesSet, Path: x.n.path + x.p.Name, Origin: origin, Def: x.p})
	}
	if len(todo) > 0 {
		if err := t.saveLocked(); err != nil {
			for i := len(undos) - 1; i >= 0; i-- {
				undos[i].n.put(undos[i].i, undos[i].old)
			}
			t.mu.Unlock()
			return &PathError{Op: "attr", Path: "", Err: fmt.Errorf("%w: %w", ErrApply, err)}
		}
	}
	t.mu.Unlock()
	t.emit(evs)
	return nil
}

// ResetNotification puts the Notification attribute of every parameter whose
// definition has a non-zero default back to that default. TR-111 1.2.2 wants
// this for GatewayInfo whenever the ACS URL is set or modified.
func (t *Tree) ResetNotification() error {
	t.mu.Lock()
	var evs []Event
	walkNode(t.root, func(n *node, p *ParamDef) error {
		if p.DefaultNotify == 0 || p.Notify == NotifyForced {
			return nil
		}
		if n.meta != nil && n.meta.notif[p.idx] != -1 {
			n.meta.notif[p.idx] = -1
			evs = append(evs, Event{Kind: AttributesSet, Path: n.path + p.Name, Origin: OriginDevice, Def: p})
		}
		return nil
	})
	var err error
	if len(evs) > 0 {
		err = t.saveLocked()
	}
	t.mu.Unlock()
	t.emit(evs)
	return err
}

// Forced returns the concrete paths of every forcedInform parameter, in
// schema order (TR-069 Table 5 via the data model's forcedInform flags).
func (t *Tree) Forced() []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	walkNode(t.root, func(n *node, p *ParamDef) error {
		if p.Forced {
			out = append(out, n.path+p.Name)
		}
		return nil
	})
	return out
}

// ForcedValues returns the name, value and type of every forcedInform
// parameter, in tree order: an Inform's ParameterList (TR-069 A.3.3.1),
// read in one walk that visits only the objects holding one. A computed
// value that cannot be read is left out, and the first such error is
// returned with the rest.
func (t *Tree) ForcedValues() ([]Value, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []Value
	var first error
	var walk func(n *node)
	walk = func(n *node) {
		for _, p := range n.def.Params {
			if !p.Forced {
				continue
			}
			v, err := t.value(n, p, true)
			if err != nil {
				if first == nil {
					first = &PathError{Op: "get", Path: n.path + p.Name, Err: fmt.Errorf("%w: %w", ErrApply, err)}
				}
				continue
			}
			out = append(out, Value{Name: n.path + p.Name, Value: v, Type: p.Type.Wire()})
		}
		for _, c := range n.def.Children {
			if !t.schema.holdsForced(c) {
				continue
			}
			if !c.Multi {
				walk(n.children[c.idx])
				continue
			}
			for _, in := range n.tables[c.idx].items {
				walk(in)
			}
		}
	}
	walk(t.root)
	return out, first
}

// Watched lists every parameter whose effective Notification is not 0.
func (t *Tree) Watched() []Attributes {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []Attributes
	walkNode(t.root, func(n *node, p *ParamDef) error {
		if v := effectiveNotify(p, n); v != 0 {
			out = append(out, Attributes{Name: n.path + p.Name, Notification: v})
		}
		return nil
	})
	return out
}

// Handle is a resolved parameter for fast repeated reads (the notify engine
// polls computed parameters through handles). A handle to a deleted instance
// reports ok false.
type Handle struct {
	n *node
	p *ParamDef
}

// Def returns the parameter's definition.
func (h Handle) Def() *ParamDef { return h.p }

// Handle resolves a concrete parameter path.
func (t *Tree) Handle(path string) (Handle, error) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	tg, err := t.lookup(path)
	if err != nil || tg.p == nil {
		return Handle{}, &PathError{Op: "get", Path: path, Err: ErrInvalidName}
	}
	return Handle{tg.n, tg.p}, nil
}

// Read returns the device view of the value behind a handle.
func (t *Tree) Read(h Handle) (v string, ok bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if h.n == nil || h.n.gone {
		return "", false
	}
	v, err := t.value(h.n, h.p, false)
	return v, err == nil
}

// ReadAll reads many handles under one lock; fn receives each index and value.
func (t *Tree) ReadAll(hs []Handle, fn func(i int, v string, ok bool)) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for i, h := range hs {
		if h.n == nil || h.n.gone {
			fn(i, "", false)
			continue
		}
		v, err := t.value(h.n, h.p, false)
		fn(i, v, err == nil)
	}
}

// FactoryReset returns the tree to the factory defaults (schema plus
// Options.Factory), discarding every written value, attribute and instance,
// and deletes the saved state.
func (t *Tree) FactoryReset() error {
	t.mu.Lock()
	root, err := t.buildFactory()
	if err != nil {
		t.mu.Unlock()
		return err
	}
	t.root = root
	err = t.removeState()
	t.mu.Unlock()
	t.emit([]Event{{Kind: Reset, Origin: OriginDevice}})
	return err
}

// ReplaceTable replaces every instance of the table at path ("X.Table.")
// with rows, numbered from 1, in one operation that the device makes: a
// table the device fills with the results of a test (TraceRoute's
// RouteHops, NSLookup's Result) holds the latest test's rows, numbered as
// the test found them, not a continuation of the last test's numbers. A
// table the ACS creates instances in keeps its never-reused numbers and is
// refused here.
func (t *Tree) ReplaceTable(path string, rows []map[string]string) error {
	t.mu.Lock()
	tg, err := t.lookup(path)
	if err != nil || tg.tab == nil {
		t.mu.Unlock()
		return &PathError{Op: "replace", Path: path, Err: ErrInvalidName}
	}
	if tg.tab.Writable {
		t.mu.Unlock()
		return &PathError{Op: "replace", Path: path, Err: fmt.Errorf("%w: the ACS creates its instances", ErrNotWritable)}
	}
	if tg.tab.MaxEntries > 0 && len(rows) > tg.tab.MaxEntries {
		t.mu.Unlock()
		return &PathError{Op: "replace", Path: path, Err: ErrResources}
	}
	tb := tg.n.tables[tg.tab.idx]
	items := make([]*node, 0, len(rows))
	for i, row := range rows {
		inst := uint32(i + 1)
		n := t.newNode(tg.tab, path+strconv.FormatUint(uint64(inst), 10)+".", inst, false)
		for name, v := range row {
			p := tg.tab.byName[name]
			if p == nil || p.Computed || p.CountOf != nil {
				t.mu.Unlock()
				return &PathError{Op: "replace", Path: n.path + name, Err: ErrInvalidName}
			}
			cv, err := p.Type.Canonical(v)
			if err != nil {
				t.mu.Unlock()
				return &PathError{Op: "replace", Path: n.path + name, Err: err}
			}
			n.write(p.idx, cv)
		}
		items = append(items, n)
	}
	old, oldNext := tb.items, tb.next
	evs := make([]Event, 0, len(old)+len(items)+1)
	for _, n := range old {
		evs = append(evs, Event{Kind: ObjectDeleted, Path: n.path, Origin: OriginDevice})
	}
	for _, n := range items {
		evs = append(evs, Event{Kind: ObjectAdded, Path: n.path, Origin: OriginDevice})
	}
	if tg.tab.Count != nil {
		evs = append(evs, Event{Kind: ValueSet, Path: tg.n.path + tg.tab.Count.Name, Value: strconv.Itoa(len(items)),
			Old: strconv.Itoa(len(old)), Origin: OriginDevice, Def: tg.tab.Count})
	}
	tb.items, tb.next = items, uint32(len(items)+1)
	if !tg.tab.Volatile {
		if err := t.saveLocked(); err != nil {
			tb.items, tb.next = old, oldNext
			t.mu.Unlock()
			return &PathError{Op: "replace", Path: path, Err: fmt.Errorf("%w: %w", ErrApply, err)}
		}
	}
	for _, n := range old {
		markGone(n)
	}
	t.mu.Unlock()
	t.emit(evs)
	return nil
}

// byAlias finds the instance whose Alias is alias (nil: none, or the
// table has no Alias parameter).
func (tb *table) byAlias(def *ObjectDef, alias string) *node {
	p := def.byName["Alias"]
	if p == nil || alias == "" {
		return nil
	}
	for _, in := range tb.items {
		if in.vals[p.idx] == alias {
			return in
		}
	}
	return nil
}

// SplitAlias splits an AddObject name that ends in an instance alias
// ("X.Table.[alias].") into the table's path and the alias; ok false for
// any other name.
func SplitAlias(path string) (table, alias string, ok bool) {
	if !strings.HasSuffix(path, "].") {
		return "", "", false
	}
	i := strings.LastIndex(path, ".[")
	if i < 0 {
		return "", "", false
	}
	alias = path[i+2 : len(path)-2]
	if alias == "" || strings.ContainsAny(alias, "[].") {
		return "", "", false
	}
	return path[:i+1], alias, true
}
