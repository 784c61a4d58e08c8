// Package bbf reads Broadband Forum data-model XML (the cwmp-datamodel
// schema: TR-106, TR-098, TR-181 and vendors' files in the same format)
// and resolves a model into its objects and parameters, with their
// syntax, access, defaults and notification rules: imports (with the BBF
// rule that a file named without its amendment and corrigendum numbers is
// the highest one present), components and their paths, models built on
// a base model, objects and parameters modified with base=, named data
// types derived from one another, and items deleted by a later version.
//
// It writes what it resolved in the text format of the project's schemas
// (schemas/README.md), which datamodel.ParseSchema reads. Descriptions,
// profiles and bibliographies are not read.
package bbf

import (
	"fmt"
	"slices"
	"strings"
)

// Pos is where an element is: a file and a line.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Error is a problem in a data-model file, at an element.
type Error struct {
	Pos     Pos
	Element string
	Msg     string
}

func (e *Error) Error() string {
	if e.Element != "" {
		return fmt.Sprintf("%s: <%s>: %s", e.Pos, e.Element, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Pos, e.Msg)
}

// Model is a resolved data model.
type Model struct {
	Name    string
	Objects []*Object // parents before children, in definition order
	byPath  map[string]*Object
	// Deleted lists the paths (objects end in ".") that the model or a
	// version it builds on marked deleted.
	Deleted map[string]bool
}

// Object returns the object at a schema path ("Device.IP.Interface.{i}."),
// or nil.
func (m *Model) Object(path string) *Object { return m.byPath[path] }

// Object is an object definition.
type Object struct {
	Path       string // ends in "."; tables end in "{i}."
	Writable   bool   // access readWrite: AddObject and DeleteObject
	MinEntries int
	MaxEntries int // -1: unbounded
	// NumEntries names the parent's parameter counting the table.
	NumEntries string
	Status     string
	// Extends: defined by the served model, which a vendor's file adds
	// parameters to (<object base=> with Loader.Exists).
	Extends bool
	// partial: part of its definition is in a missing file.
	partial bool
	Params  []*Param
	byName  map[string]*Param
	deleted []string // parameter names a later version deleted
	Pos     Pos
}

// Table reports whether the object is multi-instance.
func (o *Object) Table() bool { return strings.HasSuffix(o.Path, "{i}.") }

// Param returns the parameter of the object with that name, or nil.
func (o *Object) Param(name string) *Param { return o.byName[name] }

// Param is a parameter definition.
type Param struct {
	Name         string
	Writable     bool
	ActiveNotify string // normal, forceEnabled, forceDefaultEnabled, canDeny, willDeny
	Forced       bool   // forcedInform
	Status       string
	Syntax       Syntax
	Pos          Pos
}

// Syntax is a parameter's type with its facets.
type Syntax struct {
	Base     string // string, int, unsignedInt, long, unsignedLong, boolean, dateTime, base64, hexBinary, decimal
	DataType string // the named data type it comes from, if any
	Hidden   bool   // hidden or secured: reads back as the null value
	Command  bool
	MinLen   int
	MaxLen   int // 0: none
	Ranges   []Range
	Enum     []string
	// ReadOnlyEnum are the enumeration values marked access="readOnly":
	// the device reports them, the ACS may not write them (TR-106
	// DiagnosticsState: "When writing, the only allowed values are
	// Requested and Canceled").
	ReadOnlyEnum []string
	Patterns     []string
	List         *List
	Default      *string
}

// Range is a numeric range; an empty bound is open.
type Range struct{ Min, Max string }

// List is the list facet: the value is a comma-separated list.
type List struct {
	MinItems, MaxItems int // MaxItems 0: unbounded
	MaxLen             int // of the whole value; 0: none
}

func newModel(name string) *Model {
	return &Model{Name: name, byPath: map[string]*Object{}, Deleted: map[string]bool{}}
}

// clone copies a model deeply enough that modifying it leaves the
// original alone (a model built on a base model).
func (m *Model) clone(name string) *Model {
	c := newModel(name)
	for k := range m.Deleted {
		c.Deleted[k] = true
	}
	for _, o := range m.Objects {
		co := *o
		co.Params = nil
		co.byName = map[string]*Param{}
		for _, p := range o.Params {
			cp := *p
			co.Params = append(co.Params, &cp)
			co.byName[cp.Name] = &cp
		}
		c.Objects = append(c.Objects, &co)
		c.byPath[co.Path] = &co
	}
	return c
}

// addObject returns the object at path, defining it when new.
func (m *Model) addObject(path string, pos Pos) (*Object, bool) {
	if o := m.byPath[path]; o != nil {
		return o, false
	}
	o := &Object{Path: path, MinEntries: 1, MaxEntries: 1, byName: map[string]*Param{}, Pos: pos}
	m.Objects = append(m.Objects, o)
	m.byPath[path] = o
	delete(m.Deleted, path)
	return o, true
}

// deletedUnder reports whether the path or one of its ancestors was
// deleted.
func (m *Model) deletedUnder(path string) bool {
	for p := path; p != ""; p = parentPath(p) {
		if m.Deleted[p] {
			return true
		}
	}
	return false
}

// deleteObject removes an object and everything below it.
func (m *Model) deleteObject(path string) {
	kept := m.Objects[:0]
	for _, o := range m.Objects {
		if strings.HasPrefix(o.Path, path) {
			delete(m.byPath, o.Path)
			continue
		}
		kept = append(kept, o)
	}
	m.Objects = kept
	m.Deleted[path] = true
}

// copyFrom takes another object's attributes and parameters (a
// fallback's definition of an object whose file is missing).
func (o *Object) copyFrom(f *Object) {
	o.Writable, o.MinEntries, o.MaxEntries, o.NumEntries, o.Status = f.Writable, f.MinEntries, f.MaxEntries, f.NumEntries, f.Status
	for _, p := range f.Params {
		if o.byName[p.Name] == nil && !slices.Contains(o.deleted, p.Name) {
			cp := *p
			o.Params = append(o.Params, &cp)
			o.byName[cp.Name] = &cp
		}
	}
}

func (o *Object) addParam(p *Param) {
	if old := o.byName[p.Name]; old != nil {
		*old = *p
		return
	}
	o.Params = append(o.Params, p)
	o.byName[p.Name] = p
}

func (o *Object) deleteParam(name string) {
	if o.byName[name] == nil {
		return
	}
	o.deleted = append(o.deleted, name)
	delete(o.byName, name)
	kept := o.Params[:0]
	for _, p := range o.Params {
		if p.Name != name {
			kept = append(kept, p)
		}
	}
	o.Params = kept
}

// ordered returns the objects with every parent before its children,
// siblings in definition order.
func (m *Model) ordered() []*Object {
	children := map[string][]*Object{}
	var roots []*Object
	for _, o := range m.Objects {
		parent := parentPath(o.Path)
		if parent == "" || m.byPath[parent] == nil {
			roots = append(roots, o)
			continue
		}
		children[parent] = append(children[parent], o)
	}
	out := make([]*Object, 0, len(m.Objects))
	var walk func(o *Object)
	walk = func(o *Object) {
		out = append(out, o)
		for _, c := range children[o.Path] {
			walk(c)
		}
	}
	for _, r := range roots {
		walk(r)
	}
	return out
}

// parentPath is the path of an object's parent: "Device.IP." for
// "Device.IP.Interface.{i}.", "" for a root.
func parentPath(path string) string {
	p := strings.TrimSuffix(path, ".")
	p = strings.TrimSuffix(p, ".{i}")
	i := strings.LastIndexByte(p, '.')
	if i < 0 {
		return ""
	}
	return p[:i+1]
}

// NamedTypes resolves every named data type a file defines (TR-106's
// tr-106-types.xml) into its syntax, for Loader.Types.
func (l *Loader) NamedTypes(file string) (map[string]Syntax, error) {
	path := file
	if p, ok := l.find(file); ok {
		path = p
	}
	d, err := l.load(path)
	if err != nil {
		return nil, err
	}
	out := map[string]Syntax{}
	for name, n := range d.types {
		if strings.HasPrefix(name, "_") {
			continue
		}
		var s Syntax
		if err := l.dataType(d, n, name, &s, 0); err != nil {
			return nil, err
		}
		out[name] = s
	}
	return out, nil
}
