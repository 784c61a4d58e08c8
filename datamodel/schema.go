package datamodel

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// NotifyRule says how a parameter treats requests for Active Notification
// (TR-069 A.3.2.4, the activeNotify attribute of the BBF data-model XML).
type NotifyRule uint8

const (
	// NotifyNormal: active and passive notification may be set freely.
	NotifyNormal NotifyRule = iota
	// NotifyCanDeny: a request for Active Notification is refused (9009).
	NotifyCanDeny
	// NotifyForced: Active Notification is always on and cannot be changed.
	NotifyForced
)

// ParamDef defines one parameter of the schema. Definitions are immutable
// once the schema is built and are shared by every tree built from it.
type ParamDef struct {
	Name     string // last path segment
	Path     string // schema path, e.g. "Device.LAN.DHCPOption.{i}.Tag"
	Type     Type
	Writable bool
	Hidden   bool // reads back as an empty string (passwords)
	Forced   bool // in every Inform (forcedInform)
	Notify   NotifyRule
	// DefaultNotify is the Notification attribute a parameter starts with
	// and returns to on factory reset and ResetNotification.
	DefaultNotify int
	Volatile      bool   // never persisted: learned again at every start
	Computed      bool   // value comes from a getter bound with Tree.Bind
	Default       string // factory default (canonical form)
	// Limit is the schema path of the parameter holding the minimum number
	// of seconds between Active Notifications of this one, if any
	// (TR-111 1.2.1 and 2.2.1.3).
	Limit string
	// ParameterKey marks ManagementServer.ParameterKey, which a successful
	// SetParameterValues, AddObject or DeleteObject sets (TR-069 A.3.2.1).
	ParameterKey bool
	// CountOf is set on a NumberOfEntries parameter: the table it counts.
	CountOf *ObjectDef
	// Reboot: a new value takes effect only after a reboot, so a
	// SetParameterValues writing it answers Status 1 (TR-069 A.3.2.1).
	Reboot bool
	// Command: writing it triggers an action; it reads back as its type's
	// null value (TR-106 A.2.3.5, the command attribute).
	Command bool

	obj *ObjectDef
	idx int
}

// Object returns the object that contains the parameter.
func (p *ParamDef) Object() *ObjectDef { return p.obj }

// ObjectDef defines an object, single or multi-instance (a table, "{i}").
type ObjectDef struct {
	Name     string // last segment ("DHCPOption"); "" for the root
	Path     string // schema path ending in "." ("Device.LAN.DHCPOption.{i}.")
	Multi    bool   // a table of instances
	Writable bool   // instances may be added and deleted by the ACS
	Volatile bool   // instances are not persisted
	// MaxEntries caps the number of instances (0 = no cap).
	MaxEntries int
	// Instances is the number of instances a factory tree has.
	Instances int
	Count     *ParamDef // the NumberOfEntries parameter counting this table
	Params    []*ParamDef
	Children  []*ObjectDef
	Parent    *ObjectDef

	idx     int
	byName  map[string]*ParamDef
	objName map[string]*ObjectDef
}

// TablePath is the path used with AddObject: the schema path without the
// trailing "{i}.", e.g. "Device.LAN.DHCPOption.".
func (o *ObjectDef) TablePath() string {
	return strings.TrimSuffix(o.Path, "{i}.")
}

// Schema is an immutable data model definition. Trees are built from it.
type Schema struct {
	Model string // e.g. "Device:1.1"
	Root  *ObjectDef

	params  map[string]*ParamDef
	objects map[string]*ObjectDef
	order   []*ParamDef
	objList []*ObjectDef

	// forcedIn holds the objects with a forcedInform parameter in them or
	// below them, so that an Inform's walk skips the rest of the tree.
	forcedOnce sync.Once
	forcedIn   map[*ObjectDef]bool
}

// holdsForced reports whether o or an object below it has a forcedInform
// parameter.
func (s *Schema) holdsForced(o *ObjectDef) bool {
	s.forcedOnce.Do(func() {
		s.forcedIn = map[*ObjectDef]bool{}
		for _, p := range s.order {
			if !p.Forced {
				continue
			}
			for o := s.objects[strings.TrimSuffix(p.Path, p.Name)]; o != nil && !s.forcedIn[o]; o = o.Parent {
				s.forcedIn[o] = true
			}
		}
	})
	return s.forcedIn[o]
}

// Param returns the definition at a schema path, or nil.
func (s *Schema) Param(path string) *ParamDef { return s.params[path] }

// Object returns the object definition at a schema path, or nil.
func (s *Schema) Object(path string) *ObjectDef { return s.objects[path] }

// Params lists every parameter definition in schema order.
func (s *Schema) Params() []*ParamDef { return s.order }

// Objects lists every object definition in schema order.
func (s *Schema) Objects() []*ObjectDef { return s.objList }

// RootName is the name of the root object ("Device" or "InternetGatewayDevice").
func (s *Schema) RootName() string { return s.Root.Name }

// SchemaPath turns a concrete path into its schema path by replacing every
// instance number with "{i}": "Device.LAN.DHCPOption.3.Tag" gives
// "Device.LAN.DHCPOption.{i}.Tag".
func SchemaPath(p string) string {
	if !strings.ContainsAny(p, "0123456789[") {
		return p
	}
	var b strings.Builder
	b.Grow(len(p) + 8)
	for i := 0; i < len(p); {
		j := strings.IndexByte(p[i:], '.')
		seg := p[i:]
		if j >= 0 {
			seg = p[i : i+j]
		}
		if isInstance(seg) || len(seg) > 2 && seg[0] == '[' && seg[len(seg)-1] == ']' { // a number or an [alias]
			b.WriteString("{i}")
		} else {
			b.WriteString(seg)
		}
		if j < 0 {
			break
		}
		b.WriteByte('.')
		i += j + 1
	}
	return b.String()
}

func isInstance(seg string) bool {
	if seg == "" || seg[0] == '0' {
		return false
	}
	for i := 0; i < len(seg); i++ {
		if seg[i] < '0' || seg[i] > '9' {
			return false
		}
	}
	return len(seg) <= 10
}

// ParseSchema reads a schema in the project's definition format (see
// schemas/README.md): "model", "object" lines, and one line per parameter
// with its name, type, access (R or W) and flags.
func ParseSchema(r io.Reader) (*Schema, error) {
	return ParseSchemaExtended(r)
}

// ParseSchemaExtended reads a schema and extensions of it (vendors'
// objects and parameters, written from their data-model XML): in an
// extension, "object PATH" naming an object of the schema adds the
// parameters that follow to it, and model lines are ignored. A parameter
// the schema already defines is an error.
func ParseSchemaExtended(base io.Reader, exts ...io.Reader) (*Schema, error) {
	ps := &schemaParser{s: &Schema{params: map[string]*ParamDef{}, objects: map[string]*ObjectDef{}}}
	for i, r := range append([]io.Reader{base}, exts...) {
		ps.extending, ps.line, ps.cur = i > 0, 0, nil
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			ps.line++
			text := strings.TrimSpace(sc.Text())
			if text == "" || text[0] == '#' {
				continue
			}
			if err := ps.parseLine(text); err != nil {
				return nil, err
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("datamodel: schema: %w", err)
		}
	}
	if ps.s.Root == nil {
		return nil, fmt.Errorf("datamodel: schema has no root object")
	}
	if err := ps.resolve(); err != nil {
		return nil, err
	}
	return ps.s, nil
}

// schemaParser holds what ParseSchema knows between lines.
type schemaParser struct {
	s      *Schema
	line   int
	cur    *ObjectDef     // the object the parameter lines belong to
	counts []pendingCount // count= flags, resolved at the end
	limits []*ParamDef    // limit= flags, resolved at the end
	pats   map[string]*Patterns
	at     string // the current line's at=, if any
	// extending: reading an extension of the schema read first.
	extending bool
}

// pendingCount is an object's count= flag, naming a parameter of its
// parent that may come later in the file.
type pendingCount struct {
	obj   *ObjectDef
	count string
	line  int
}

func (ps *schemaParser) errf(format string, a ...any) error {
	if ps.at != "" {
		return fmt.Errorf("datamodel: %s: %s", ps.at, fmt.Sprintf(format, a...))
	}
	return fmt.Errorf("datamodel: schema line %d: %s", ps.line, fmt.Sprintf(format, a...))
}

func (ps *schemaParser) parseLine(text string) error {
	fields, err := splitFields(text)
	if err != nil {
		return fmt.Errorf("datamodel: schema line %d: %w", ps.line, err)
	}
	// at=FILE:LINE (a line written from a data-model XML file) is where
	// errors point.
	ps.at = ""
	for i := len(fields) - 1; i > 0; i-- {
		if v, ok := strings.CutPrefix(fields[i], "at="); ok {
			ps.at = v
			fields = append(fields[:i], fields[i+1:]...)
			break
		}
	}
	switch fields[0] {
	case "model":
		if len(fields) != 2 {
			return ps.errf("model takes one name")
		}
		if !ps.extending {
			ps.s.Model = fields[1]
		}
		return nil
	case "object":
		return ps.parseObject(fields)
	}
	return ps.parseParam(fields)
}

// parseObject reads "object PATH [flags]" and makes it the current object.
func (ps *schemaParser) parseObject(fields []string) error {
	s := ps.s
	if len(fields) < 2 || !strings.HasSuffix(fields[1], ".") {
		return ps.errf("object needs a path ending in '.'")
	}
	o := &ObjectDef{Path: fields[1], byName: map[string]*ParamDef{}, objName: map[string]*ObjectDef{}}
	if old, dup := s.objects[o.Path]; dup {
		if ps.extending && len(fields) == 2 {
			ps.cur = old // an extension adds parameters to it
			return nil
		}
		if ps.extending {
			return ps.errf("object %s is defined by the model: an extension cannot change it", o.Path)
		}
		return ps.errf("object %s defined twice", o.Path)
	}
	segs := strings.Split(strings.TrimSuffix(o.Path, "."), ".")
	if segs[len(segs)-1] == "{i}" {
		o.Multi = true
		segs = segs[:len(segs)-1]
	}
	o.Name = segs[len(segs)-1]
	if err := ps.attach(o, segs); err != nil {
		return err
	}
	if !o.Multi {
		o.Instances = 1
	}
	if err := ps.objectFlags(o, fields[2:]); err != nil {
		return err
	}
	s.objects[o.Path] = o
	s.objList = append(s.objList, o)
	ps.cur = o
	return nil
}

// attach makes o the root or a child of its parent, which must be defined.
func (ps *schemaParser) attach(o *ObjectDef, segs []string) error {
	s := ps.s
	if len(segs) == 1 && !o.Multi {
		if s.Root != nil {
			return ps.errf("second root object %s", o.Path)
		}
		s.Root = o
		return nil
	}
	parentPath := strings.Join(segs[:len(segs)-1], ".") + "."
	parent := s.objects[parentPath]
	if parent == nil {
		return ps.errf("object %s comes before its parent %s", o.Path, parentPath)
	}
	if _, dup := parent.objName[o.Name]; dup {
		return ps.errf("object %s defined twice", o.Path)
	}
	if _, clash := parent.byName[o.Name]; clash {
		return ps.errf("object %s clashes with a parameter", o.Path)
	}
	o.Parent = parent
	o.idx = len(parent.Children)
	parent.Children = append(parent.Children, o)
	parent.objName[o.Name] = o
	return nil
}

func (ps *schemaParser) objectFlags(o *ObjectDef, flags []string) error {
	for _, f := range flags {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "R":
		case "W":
			if !o.Multi {
				return ps.errf("only a table can be writable")
			}
			o.Writable = true
		case "volatile":
			o.Volatile = true
		case "count":
			ps.counts = append(ps.counts, pendingCount{o, v, ps.line})
		case "max":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return ps.errf("bad max %q", v)
			}
			o.MaxEntries = n
		case "instances":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || !o.Multi {
				return ps.errf("bad instances %q", v)
			}
			o.Instances = n
		default:
			return ps.errf("unknown object flag %q", f)
		}
	}
	return nil
}

// parseParam reads "NAME TYPE ACCESS [flags]" of the current object.
func (ps *schemaParser) parseParam(fields []string) error {
	cur := ps.cur
	if cur == nil {
		return ps.errf("parameter before any object")
	}
	if len(fields) < 3 {
		return ps.errf("a parameter needs a name, a type and an access")
	}
	p := &ParamDef{Name: fields[0], Path: cur.Path + fields[0], obj: cur, idx: len(cur.Params)}
	if strings.ContainsAny(p.Name, ".{} ") {
		return ps.errf("bad parameter name %q", p.Name)
	}
	if _, dup := cur.byName[p.Name]; dup {
		if ps.extending {
			return ps.errf("parameter %s is defined by the model already", p.Path)
		}
		return ps.errf("parameter %s defined twice", p.Path)
	}
	t, err := ParseType(fields[1])
	if err != nil {
		return ps.errf("%v", err)
	}
	p.Type = t
	switch fields[2] {
	case "R":
	case "W":
		p.Writable = true
	default:
		return ps.errf("access must be R or W, not %q", fields[2])
	}
	def, err := ps.paramFlags(p, fields[3:])
	if err != nil {
		return err
	}
	if def != nil {
		c, err := p.Type.Canonical(*def)
		if err != nil {
			return ps.errf("default of %s: %v", p.Name, err)
		}
		p.Default = c
	} else {
		p.Default = zeroValue(p.Type)
	}
	cur.byName[p.Name] = p
	cur.Params = append(cur.Params, p)
	ps.s.params[p.Path] = p
	ps.s.order = append(ps.s.order, p)
	return nil
}

// paramFlags applies a parameter's flags; it returns the default= value
// (nil: none), checked by the caller once the type's enum is known.
func (ps *schemaParser) paramFlags(p *ParamDef, flags []string) (*string, error) {
	var def *string
	var pats []string
	defer func() {
		if len(pats) > 0 {
			p.Type.Patterns = ps.patterns(pats)
		}
	}()
	for _, f := range flags {
		k, v, hasV := strings.Cut(f, "=")
		switch k {
		case "forced":
			p.Forced = true
		case "hidden":
			p.Hidden = true
		case "volatile":
			p.Volatile = true
		case "computed":
			p.Computed = true
			p.Volatile = true
		case "canDeny":
			p.Notify = NotifyCanDeny
		case "activeForced":
			p.Notify = NotifyForced
			p.DefaultNotify = 2
		case "paramkey":
			p.ParameterKey = true
		case "reboot":
			p.Reboot = true
		case "notify":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 2 {
				return nil, ps.errf("bad notify %q", v)
			}
			p.DefaultNotify = n
		case "limit":
			p.Limit = v
			ps.limits = append(ps.limits, p)
		case "default":
			if !hasV {
				return nil, ps.errf("default needs a value")
			}
			d := v
			def = &d
		case "enum":
			p.Type.Enum = strings.Split(v, "|")
		case "wenum":
			p.Type.WriteEnum = strings.Split(v, "|")
		case "pattern":
			pats = append(pats, v)
		case "list":
			// list or list=MINITEMS:MAXITEMS:MAXLEN (each may be empty)
			l := &ListFacet{}
			if hasV {
				parts := strings.Split(v, ":")
				if len(parts) != 3 {
					return nil, ps.errf("bad list %q: want MINITEMS:MAXITEMS:MAXLEN", v)
				}
				for i, dst := range []*int{&l.MinItems, &l.MaxItems, &l.MaxLen} {
					if parts[i] == "" {
						continue
					}
					n, err := strconv.Atoi(parts[i])
					if err != nil || n < 0 {
						return nil, ps.errf("bad list %q", v)
					}
					*dst = n
				}
			}
			p.Type.List = l
		case "format":
			switch v {
			case "ip":
				p.Type.Format = FormatIPAddress
			case "mac":
				p.Type.Format = FormatMACAddress
			default:
				return nil, ps.errf("bad format %q (ip or mac)", v)
			}
		case "dt":
			// The named data type the definition comes from: informative.
			p.Type.Name = v
		case "command":
			// TR-106 A.2.3.5: setting it triggers an action; it always
			// reads back as its type's null value and is not kept.
			p.Command = true
			p.Volatile = true
		default:
			return nil, ps.errf("unknown parameter flag %q", f)
		}
	}
	return def, nil
}

// patterns compiles a pattern set once per schema: TR-181 gives the same
// few (IPv4Address, IPv6Prefix...) to hundreds of parameters.
func (ps *schemaParser) patterns(src []string) *Patterns {
	key := strings.Join(src, "\x00")
	if p, ok := ps.pats[key]; ok {
		return p
	}
	p, _ := CompilePatterns(src)
	if ps.pats == nil {
		ps.pats = map[string]*Patterns{}
	}
	ps.pats[key] = p
	return p
}

// resolve checks the references that may point forward: count= names a
// parameter of the table's parent, limit= a numeric parameter.
func (ps *schemaParser) resolve() error {
	for _, c := range ps.counts {
		parent := c.obj.Parent
		p := parent.byName[c.count]
		if p == nil {
			return fmt.Errorf("datamodel: schema line %d: count parameter %s%s is not defined", c.line, parent.Path, c.count)
		}
		if p.Type.Kind != UnsignedInt || p.Writable {
			return fmt.Errorf("datamodel: schema line %d: count parameter %s must be a read-only unsignedInt", c.line, p.Path)
		}
		p.CountOf = c.obj
		p.Computed = true
		p.Volatile = true
		c.obj.Count = p
	}
	for _, p := range ps.limits {
		lp := ps.s.params[p.Limit]
		if lp == nil || (lp.Type.Kind != UnsignedInt && lp.Type.Kind != Int) {
			return fmt.Errorf("datamodel: schema: limit of %s names %q, which is not a numeric parameter", p.Path, p.Limit)
		}
	}
	return nil
}

// NullValue is the null value of a type's base data type (TR-106
// A.2.3.5): what a hidden or command parameter reads back as.
func NullValue(t Type) string {
	switch t.Kind {
	case Int, UnsignedInt, Long, UnsignedLong, Decimal:
		return "0"
	case Boolean:
		return "false"
	case DateTime:
		return UnknownTime
	}
	return ""
}

func zeroValue(t Type) string {
	if t.List != nil && t.List.MinItems == 0 {
		return "" // an empty list, whatever its items' type
	}
	switch t.Kind {
	case Int, UnsignedInt, Long, UnsignedLong:
		if t.Min != nil && *t.Min > 0 {
			return strconv.FormatInt(*t.Min, 10)
		}
		return "0"
	case Boolean:
		return "false"
	case DateTime:
		return UnknownTime
	case String:
		if len(t.Enum) > 0 {
			return t.Enum[0]
		}
	}
	return ""
}

// splitFields splits a schema line on blanks, keeping "double quoted" parts
// (with \" and \\ escapes) together so that default="a b" is one field.
func splitFields(s string) ([]string, error) {
	var out []string
	var b strings.Builder
	inQ, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQ && c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == '"':
			inQ = !inQ
			have = true
		case !inQ && (c == ' ' || c == '\t'):
			if have {
				out = append(out, b.String())
				b.Reset()
				have = false
			}
		case !inQ && c == '#' && !have:
			return out, nil
		default:
			b.WriteByte(c)
			have = true
		}
	}
	if inQ {
		return nil, fmt.Errorf("unterminated quote")
	}
	if have {
		out = append(out, b.String())
	}
	return out, nil
}
