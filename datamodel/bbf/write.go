package bbf

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
)

// WriteOptions tune the text a model is written as.
type WriteOptions struct {
	// Header lines, written as comments first.
	Header []string
	// Overlay adds or replaces flags by path (objects end in "."): the
	// agent's own knowledge of a parameter (computed, volatile, limit=...).
	// A flag "-NAME" removes the flag NAME.
	Overlay map[string][]string
	// Positions adds at=FILE:LINE to every line, so that errors found when
	// the text is read name the XML (vendors' files).
	Positions bool
	// Only, when set, writes only the objects it accepts.
	Only func(o *Object) bool
}

// Note is a definition written differently from the XML, and why.
type Note struct {
	Pos  Pos
	Path string
	Msg  string
}

// Write writes the model in the project's schema format. It returns the
// notes on what could not be kept as the XML says (a default the type
// refuses, a pattern Go cannot read).
func (m *Model) Write(w io.Writer, opt WriteOptions) ([]Note, error) {
	bw := bufio.NewWriter(w)
	var notes []Note
	for _, h := range opt.Header {
		if h == "" {
			bw.WriteString("#\n")
			continue
		}
		fmt.Fprintf(bw, "# %s\n", h)
	}
	fmt.Fprintf(bw, "model %s\n", m.Name)
	for _, o := range m.ordered() {
		if opt.Only != nil && !opt.Only(o) {
			continue
		}
		flags := objectFlags(o)
		flags = applyOverlay(flags, opt.Overlay[o.Path])
		if opt.Positions {
			flags = append(flags, "at="+quote(o.Pos.String()))
		}
		fmt.Fprintf(bw, "\nobject %s", o.Path)
		for _, f := range flags {
			bw.WriteString("  " + f)
		}
		bw.WriteByte('\n')
		for _, p := range o.Params {
			typ, flags, pn := paramLine(o, p)
			notes = append(notes, pn...)
			flags = applyOverlay(flags, opt.Overlay[o.Path+p.Name])
			if opt.Positions {
				flags = append(flags, "at="+quote(p.Pos.String()))
			}
			access := "R"
			if p.Writable {
				access = "W"
			}
			fmt.Fprintf(bw, "%s %s %s", p.Name, typ, access)
			for _, f := range flags {
				bw.WriteString("  " + f)
			}
			bw.WriteByte('\n')
		}
	}
	return notes, bw.Flush()
}

func objectFlags(o *Object) []string {
	var flags []string
	if !o.Table() {
		return nil
	}
	if o.Writable {
		flags = append(flags, "W")
	}
	if o.NumEntries != "" {
		flags = append(flags, "count="+o.NumEntries)
	}
	if o.MaxEntries > 0 {
		flags = append(flags, "max="+strconv.Itoa(o.MaxEntries))
	}
	return flags
}

// paramLine renders a parameter's type notation and flags.
func paramLine(o *Object, p *Param) (string, []string, []Note) {
	s := p.Syntax
	var notes []Note
	note := func(format string, a ...any) {
		notes = append(notes, Note{Pos: p.Pos, Path: o.Path + p.Name, Msg: fmt.Sprintf(format, a...)})
	}
	typ := s.Base
	switch s.Base {
	case "string", "base64", "hexBinary":
		switch {
		case s.MinLen > 0 && s.MaxLen > 0:
			typ += fmt.Sprintf("(%d:%d)", s.MinLen, s.MaxLen)
		case s.MinLen > 0:
			typ += fmt.Sprintf("(%d:)", s.MinLen)
		case s.MaxLen > 0:
			typ += fmt.Sprintf("(%d)", s.MaxLen)
		}
	case "int", "unsignedInt", "long", "unsignedLong":
		if r := rangeNotation(s.Base, s.Ranges); r != "" {
			typ += r
		}
	}
	var flags []string
	if p.Forced {
		flags = append(flags, "forced")
	}
	if s.Hidden {
		flags = append(flags, "hidden")
	}
	if s.Command {
		flags = append(flags, "command")
	}
	switch p.ActiveNotify {
	case "canDeny", "willDeny":
		flags = append(flags, "canDeny")
	case "forceEnabled":
		flags = append(flags, "activeForced")
	case "forceDefaultEnabled":
		flags = append(flags, "notify=2")
	}
	if s.List != nil {
		l := s.List
		flags = append(flags, fmt.Sprintf("list=%s:%s:%s", num(l.MinItems), num(l.MaxItems), num(l.MaxLen)))
	}
	switch s.DataType {
	case "IPAddress", "IPv4Address", "IPv6Address":
		flags = append(flags, "format=ip")
	case "MACAddress":
		flags = append(flags, "format=mac")
	}
	if s.DataType != "" {
		flags = append(flags, "dt="+s.DataType)
	}
	if len(s.Enum) > 0 {
		ok := true
		for _, e := range s.Enum {
			if strings.Contains(e, "|") {
				ok = false
			}
		}
		if ok {
			flags = append(flags, "enum="+quote(strings.Join(s.Enum, "|")))
			if w := writableEnum(p.Name, s); w != nil {
				flags = append(flags, "wenum="+quote(strings.Join(w, "|")))
			}
		} else {
			note("an enumeration value holds '|': the enumeration is not checked")
		}
	}
	var good []string
	for _, pat := range s.Patterns {
		if _, ok := datamodel.CompilePatterns([]string{pat}); ok {
			good = append(good, pat)
		} else {
			note("pattern %q is not a Go regular expression: not checked", pat)
		}
	}
	if len(s.Enum) == 0 {
		for _, pat := range good {
			flags = append(flags, "pattern="+quote(pat))
		}
	}
	if s.Default != nil {
		def := *s.Default
		if s.List != nil && strings.HasPrefix(def, "[") && strings.HasSuffix(def, "]") {
			// Newer files write list defaults as [a,b]; CWMP's form is a,b.
			def = def[1 : len(def)-1]
		}
		if t, err := datamodel.ParseType(typ); err == nil {
			t.List = nil
			if s.List != nil {
				t.List = &datamodel.ListFacet{MinItems: s.List.MinItems, MaxItems: s.List.MaxItems, MaxLen: s.List.MaxLen}
			}
			t.Enum = s.Enum
			if len(s.Enum) == 0 && len(good) > 0 {
				t.Patterns, _ = datamodel.CompilePatterns(good)
			}
			if _, err := t.Canonical(def); err != nil {
				note("default %q dropped: %v", def, err)
			} else {
				flags = append(flags, "default="+quote(def))
			}
		}
	}
	return typ, flags, notes
}

// rangeNotation writes ranges as [MIN:MAX,...]; bounds the type cannot
// exceed anyway (unsignedLong's 2^64-1) are left open.
func rangeNotation(base string, rs []Range) string {
	if len(rs) == 0 {
		return ""
	}
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, bound(r.Min)+":"+bound(r.Max))
	}
	if len(parts) == 1 && parts[0] == ":" {
		return ""
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func bound(v string) string {
	if v == "" {
		return ""
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n != math.MaxInt64 && n != math.MinInt64 {
		return v
	}
	return ""
}

func num(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

// quote writes a flag value the schema reader gets back whole: in double
// quotes, with \ and " escaped, when it holds anything but plain text.
func quote(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\"\\#") {
		return v
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
}

// applyOverlay replaces flags by key (the part before '='), adds new
// ones, and drops those named "-KEY".
func applyOverlay(flags, over []string) []string {
	if len(over) == 0 {
		return flags
	}
	key := func(f string) string { k, _, _ := strings.Cut(f, "="); return k }
	out := append([]string(nil), flags...)
	for _, o := range over {
		if strings.HasPrefix(o, "-") {
			k := o[1:]
			kept := out[:0]
			for _, f := range out {
				if key(f) != k {
					kept = append(kept, f)
				}
			}
			out = kept
			continue
		}
		replaced := false
		for i, f := range out {
			if key(f) == key(o) {
				out[i], replaced = o, true
			}
		}
		if !replaced {
			out = append(out, o)
		}
	}
	return out
}

// writableEnum is the part of an enumeration the ACS may write, nil when
// it may write any value. The XML says so with access="readOnly" on the
// values only the device sets. The models of 2005 (TR-106 Amendment 1,
// TR-098 Amendment 1) carry no such attribute, but their DiagnosticsState
// descriptions say the same in words: "When writing, the only allowed value
// is Requested".
func writableEnum(name string, s Syntax) []string {
	ro := s.ReadOnlyEnum
	if len(ro) == 0 && strings.HasSuffix(name, "DiagnosticsState") && slices.Contains(s.Enum, "Requested") {
		for _, e := range s.Enum {
			if e != "Requested" && e != "Canceled" {
				ro = append(ro, e)
			}
		}
	}
	if len(ro) == 0 {
		return nil
	}
	var w []string
	for _, e := range s.Enum {
		if !slices.Contains(ro, e) {
			w = append(w, e)
		}
	}
	return w
}
