package bbf

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Model resolves the model of that name defined in a file ("" for the
// file's last model).
func (l *Loader) Model(file, name string) (*Model, error) {
	path := file
	if !filepath.IsAbs(path) && !strings.ContainsRune(path, filepath.Separator) {
		if p, ok := l.find(file); ok {
			path = p
		}
	}
	d, err := l.load(path)
	if err != nil {
		return nil, err
	}
	defer func() { l.Fallback = nil }() // only for the top model
	n := d.last
	if name != "" {
		_, n, err = l.lookup(d, "model", name)
		if err != nil {
			return nil, err
		}
	}
	if n == nil {
		return nil, fmt.Errorf("%s: no model", d.name)
	}
	m, err := l.resolveModel(d, n)
	if err != nil {
		return nil, err
	}
	if l.Fallback != nil {
		l.fill(m)
	}
	return m, nil
}

// fill adds what only the fallback defines: parameters of objects whose
// definition is partly in a missing file, and objects no present file
// defines.
func (l *Loader) fill(m *Model) {
	f := l.Fallback
	for _, o := range m.Objects {
		if fo := f.byPath[o.Path]; fo != nil && o.partial {
			for _, p := range fo.Params {
				if o.byName[p.Name] == nil && !slices.Contains(o.deleted, p.Name) {
					cp := *p
					o.Params = append(o.Params, &cp)
					o.byName[cp.Name] = &cp
				}
			}
		}
	}
	for _, fo := range f.Objects {
		if m.byPath[fo.Path] != nil || m.deletedUnder(fo.Path) {
			continue
		}
		o, _ := m.addObject(fo.Path, fo.Pos)
		o.copyFrom(fo)
	}
}

func (l *Loader) pos(d *doc, n *node) Pos { return Pos{File: d.name, Line: n.line} }

func (l *Loader) errAt(d *doc, n *node, format string, a ...any) error {
	return &Error{Pos: l.pos(d, n), Element: n.tag, Msg: fmt.Sprintf(format, a...)}
}

func (l *Loader) resolveModel(d *doc, n *node) (*Model, error) {
	key := d.path + "\x00" + n.attr("name")
	if m := l.models[key]; m != nil {
		return m, nil
	}
	if l.resolving[key] {
		return nil, l.errAt(d, n, "model %q is built on itself", n.attr("name"))
	}
	if l.resolving == nil {
		l.resolving = map[string]bool{}
	}
	l.resolving[key] = true
	defer delete(l.resolving, key)
	name := n.attr("name")
	var m *Model
	if base := n.attr("base"); base != "" {
		bd, bn, err := l.lookup(d, "model", base)
		switch {
		case err == nil:
			bm, err := l.resolveModel(bd, bn)
			if err != nil {
				return nil, err
			}
			m = bm.clone(name)
		case l.Exists != nil:
			// A vendor's model on top of the one the agent serves,
			// whose files are not here: base= objects are checked
			// against the served model instead.
			m = newModel(name)
		default:
			return nil, l.errAt(d, n, "base model %q: %v", base, err)
		}
	} else {
		m = newModel(name)
	}
	if err := l.items(d, m, n.children, scope{}); err != nil {
		return nil, err
	}
	l.models[key] = m
	return m, nil
}

// scope is where items are: the prefix of object names, and the object
// parameters go to (nil at model level); depth counts the components
// expanded to get there.
type scope struct {
	path  string
	obj   *Object
	depth int
}

// maxComponentDepth bounds components within components (TR-181 nests a
// few); a component that includes itself stops there.
const maxComponentDepth = 32

// items applies the children of a model, component or object.
func (l *Loader) items(d *doc, m *Model, nodes []*node, sc scope) error {
	for _, n := range nodes {
		var err error
		switch n.tag {
		case "component":
			err = l.component(d, m, n, sc)
		case "object":
			err = l.object(d, m, n, sc)
		case "parameter":
			err = l.parameter(d, m, n, sc)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// component expands a reference to a component where it stands. Its
// object names are relative to the scope's path and its own path=.
func (l *Loader) component(d *doc, m *Model, n *node, sc scope) error {
	ref := n.attr("ref")
	if ref == "" {
		return nil // a definition, not a reference
	}
	cd, cn, err := l.lookup(d, "component", ref)
	if err != nil {
		if l.Lenient && errors.Is(err, errMissing) {
			if sc.obj != nil {
				sc.obj.partial = true
			}
			return nil
		}
		return l.errAt(d, n, "%v", err)
	}
	// Parameters a component holds at its top go to the object its path
	// names (or the object the reference is in).
	if sc.depth >= maxComponentDepth {
		return l.errAt(d, n, "components nested deeper than %d (does %q include itself?)", maxComponentDepth, ref)
	}
	sub := scope{path: sc.path + n.attr("path"), obj: sc.obj, depth: sc.depth + 1}
	if sc.obj != nil {
		sub.path = sc.obj.Path + n.attr("path")
	}
	if n.attr("path") != "" {
		sub.obj = m.byPath[sub.path]
	}
	return l.items(cd, m, cn.children, sub)
}

func (l *Loader) object(d *doc, m *Model, n *node, sc scope) error {
	name, base := n.attr("name"), n.attr("base")
	rel := name
	if rel == "" {
		rel = base
	}
	if rel == "" || !strings.HasSuffix(rel, ".") {
		return l.errAt(d, n, "an object needs a name or base ending in '.'")
	}
	path := sc.path + rel
	if n.attr("status") == "deleted" {
		m.deleteObject(path)
		return nil
	}
	o, isNew := m.addObject(path, l.pos(d, n))
	if base != "" && isNew {
		switch {
		case l.Exists != nil && l.Exists(path):
			o.Extends = true
		case l.Lenient:
			// Its definition was in a missing file.
			o.partial = true
			if l.Fallback != nil {
				if fo := l.Fallback.byPath[path]; fo != nil {
					o.copyFrom(fo)
				}
			}
		default:
			m.deleteObject(path)
			delete(m.Deleted, path)
			return l.errAt(d, n, "base object %s is not defined", path)
		}
	}
	if parent := parentPath(path); parent != "" && m.byPath[parent] == nil && (l.Exists == nil || !l.Exists(parent)) && !l.Lenient {
		return l.errAt(d, n, "object %s: its parent %s is not defined", path, parent)
	}
	if v := n.attr("access"); v != "" {
		o.Writable = v == "readWrite"
	}
	if v := n.attr("minEntries"); v != "" {
		o.MinEntries, _ = strconv.Atoi(v)
	}
	if v := n.attr("maxEntries"); v != "" {
		if v == "unbounded" {
			o.MaxEntries = -1
		} else if k, err := strconv.Atoi(v); err == nil {
			o.MaxEntries = k
		} else {
			return l.errAt(d, n, "bad maxEntries %q", v)
		}
	}
	if v := n.attr("numEntriesParameter"); v != "" {
		o.NumEntries = v
	}
	if v := n.attr("status"); v != "" {
		o.Status = v
	}
	return l.items(d, m, n.children, scope{path: path, obj: o, depth: sc.depth})
}

func (l *Loader) parameter(d *doc, m *Model, n *node, sc scope) error {
	if sc.obj == nil {
		return l.errAt(d, n, "a parameter outside any object")
	}
	name, base := n.attr("name"), n.attr("base")
	if name == "" {
		name = base
	}
	if name == "" || strings.ContainsAny(name, ".{} ") {
		return l.errAt(d, n, "bad parameter name %q", name)
	}
	if n.attr("status") == "deleted" {
		sc.obj.deleteParam(name)
		return nil
	}
	var p *Param
	if base != "" {
		p = sc.obj.byName[base]
		if p == nil {
			if sc.obj.Extends {
				return l.errAt(d, n, "modifying the served parameter %s%s is not supported: define a new one", sc.obj.Path, base)
			}
			if !l.Lenient {
				return l.errAt(d, n, "base parameter %s%s is not defined", sc.obj.Path, base)
			}
			p = &Param{Name: base, ActiveNotify: "normal"}
			if l.Fallback != nil {
				if fo := l.Fallback.byPath[sc.obj.Path]; fo != nil && fo.byName[base] != nil {
					cp := *fo.byName[base]
					p = &cp
				}
			}
		}
	} else {
		if old := sc.obj.byName[name]; old != nil {
			p = old
		} else {
			p = &Param{Name: name, ActiveNotify: "normal"}
		}
	}
	p.Pos = l.pos(d, n)
	if v := n.attr("access"); v != "" {
		p.Writable = v == "readWrite" || v == "writeOnceReadOnly"
	}
	if v := n.attr("activeNotify"); v != "" {
		p.ActiveNotify = v
	}
	if v := n.attr("forcedInform"); v != "" {
		p.Forced = v == "true" || v == "1"
	}
	if v := n.attr("status"); v != "" {
		p.Status = v
	}
	if sn := n.child("syntax"); sn != nil {
		if err := l.syntax(d, sn, &p.Syntax, base != ""); err != nil {
			return err
		}
	}
	if p.Syntax.Base == "" {
		if l.Lenient {
			// A change to a parameter defined in a missing file, with
			// no fallback to start from: left out.
			return nil
		}
		return l.errAt(d, n, "parameter %s%s has no type", sc.obj.Path, name)
	}
	sc.obj.addParam(p)
	return nil
}

var baseTypes = map[string]bool{"string": true, "int": true, "unsignedInt": true, "long": true, "unsignedLong": true,
	"boolean": true, "dateTime": true, "base64": true, "hexBinary": true, "decimal": true}

// syntax reads a <syntax> element into s, on top of what s holds (a
// parameter modified with base= keeps what the change does not name).
func (l *Loader) syntax(d *doc, n *node, s *Syntax, modify bool) error {
	if v := n.attr("hidden"); v == "true" {
		s.Hidden = true
	}
	if v := n.attr("secured"); v == "true" {
		// CWMP cannot read a secured value either (DM schema: "the same
		// as hidden" unless the protocol permits reading).
		s.Hidden = true
	}
	if v := n.attr("command"); v == "true" {
		s.Command = true
	}
	for _, c := range n.children {
		switch {
		case c.tag == "list":
			lf := &List{}
			lf.MinItems, _ = strconv.Atoi(c.attr("minItems"))
			if v := c.attr("maxItems"); v != "" && v != "unbounded" {
				lf.MaxItems, _ = strconv.Atoi(v)
			}
			if sz := c.child("size"); sz != nil {
				lf.MaxLen, _ = strconv.Atoi(sz.attr("maxLength"))
			}
			s.List = lf
		case c.tag == "default":
			if t := c.attr("type"); t == "object" || t == "factory" || t == "" {
				if c.attr("status") != "deleted" {
					v := c.attr("value")
					s.Default = &v
				}
			}
		case c.tag == "dataType":
			// ref= names a data type; base= derives an anonymous one
			// from it, with the facets inside.
			ref := c.attr("ref")
			if ref == "" {
				ref = c.attr("base")
			}
			if ref == "" {
				continue
			}
			if err := l.dataType(d, c, ref, s, 0); err != nil {
				return err
			}
			l.facets(c, s, false)
		case baseTypes[c.tag]:
			if s.Base != c.tag {
				// A new type replaces the facets of the old one.
				*s = Syntax{Hidden: s.Hidden, Command: s.Command, List: s.List, Default: s.Default}
				modify = false
			}
			s.Base = c.tag
			l.facets(c, s, modify)
		}
	}
	return nil
}

// dataType applies a named data type (and the types it derives from) to s.
func (l *Loader) dataType(d *doc, at *node, name string, s *Syntax, depth int) error {
	if depth > 16 {
		return l.errAt(d, at, "data type %q derives from itself", name)
	}
	td, tn, err := l.lookup(d, "dataType", name)
	if err != nil {
		if bt, ok := l.Types[name]; ok {
			bt.Default, bt.Hidden, bt.Command = s.Default, s.Hidden, s.Command
			if s.List != nil {
				bt.List = s.List
			}
			*s = bt
			return nil
		}
		return l.errAt(d, at, "%v", err)
	}
	if base := tn.attr("base"); base != "" {
		if err := l.dataType(td, tn, base, s, depth+1); err != nil {
			return err
		}
	}
	for _, c := range tn.children {
		switch {
		case c.tag == "list":
			lf := &List{}
			lf.MinItems, _ = strconv.Atoi(c.attr("minItems"))
			if v := c.attr("maxItems"); v != "" && v != "unbounded" {
				lf.MaxItems, _ = strconv.Atoi(v)
			}
			if sz := c.child("size"); sz != nil {
				lf.MaxLen, _ = strconv.Atoi(sz.attr("maxLength"))
			}
			s.List = lf
		case baseTypes[c.tag]:
			s.Base = c.tag
			l.facets(c, s, false)
		}
	}
	// Facets written directly under a derived type restrict its base.
	l.facets(tn, s, false)
	if !strings.HasPrefix(name, "_") {
		s.DataType = name
	}
	return nil
}

// facets reads size, range, enumeration and pattern children. A type
// derived from another restricts it: a new enumeration or pattern set
// replaces the inherited one. A later version's change to a parameter
// (modify) adds its enumeration values and patterns to the old ones.
func (l *Loader) facets(n *node, s *Syntax, modify bool) {
	var enum, roEnum, pats []string
	var ranges []Range
	sawEnum, sawPat := false, false
	for _, c := range n.children {
		switch c.tag {
		case "size":
			if v := c.attr("minLength"); v != "" {
				s.MinLen, _ = strconv.Atoi(v)
			}
			if v := c.attr("maxLength"); v != "" {
				s.MaxLen, _ = strconv.Atoi(v)
			}
		case "range":
			ranges = append(ranges, Range{Min: c.attr("minInclusive"), Max: c.attr("maxInclusive")})
		case "enumeration":
			sawEnum = true
			if st := c.attr("status"); st != "deleted" {
				enum = append(enum, c.attr("value"))
				if c.attr("access") == "readOnly" {
					roEnum = append(roEnum, c.attr("value"))
				}
			}
		case "pattern":
			sawPat = true
			if st := c.attr("status"); st != "deleted" {
				pats = append(pats, c.attr("value"))
			}
		}
	}
	if len(ranges) > 0 {
		s.Ranges = ranges
	}
	if sawEnum {
		if modify {
			for _, e := range enum {
				if !slices.Contains(s.Enum, e) {
					s.Enum = append(s.Enum, e)
				}
			}
			for _, e := range roEnum {
				if !slices.Contains(s.ReadOnlyEnum, e) {
					s.ReadOnlyEnum = append(s.ReadOnlyEnum, e)
				}
			}
		} else {
			s.Enum, s.ReadOnlyEnum = enum, roEnum
		}
	}
	if sawPat {
		if modify {
			s.Patterns = append(s.Patterns, pats...)
		} else {
			s.Patterns = pats
		}
	}
}
