package datamodel

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind is a TR-106 base data type (TR-106 Amendment 1 section 3.2).
type Kind uint8

// The TR-106 data types a parameter can have.
const (
	String Kind = iota
	Int
	UnsignedInt
	Boolean
	DateTime
	Base64
	Long
	UnsignedLong
	HexBinary // TR-106 Amendment 3 on; TR-181 uses it
	Decimal   // TR-106 Amendment 8 on; TR-181 uses it
)

var kindNames = [...]string{"string", "int", "unsignedInt", "boolean", "dateTime", "base64", "long", "unsignedLong", "hexBinary", "decimal"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// XSD returns the xsi:type a value of this kind carries on the wire
// (TR-069 Table 3 via cwmp-digest section 11).
func (k Kind) XSD() string {
	return "xsd:" + k.String()
}

// KindFromXSD maps an xsi:type such as "xsd:unsignedInt" (any prefix, or
// none) to a Kind. ok is false for a type name it does not know.
func KindFromXSD(t string) (k Kind, ok bool) {
	if i := strings.IndexByte(t, ':'); i >= 0 {
		t = t[i+1:]
	}
	switch t {
	case "string", "anySimpleType":
		return String, true
	case "int", "integer":
		return Int, true
	case "unsignedInt":
		return UnsignedInt, true
	case "boolean":
		return Boolean, true
	case "dateTime":
		return DateTime, true
	case "base64", "base64Binary":
		return Base64, true
	case "long":
		return Long, true
	case "unsignedLong":
		return UnsignedLong, true
	case "hexBinary":
		return HexBinary, true
	case "decimal":
		return Decimal, true
	}
	return 0, false
}

// Format names a string sub-type with its own lexical rules.
type Format uint8

// String formats from the TR-106 named data types.
const (
	FormatNone Format = iota
	FormatIPAddress
	FormatMACAddress
)

// Type is a data type with its facets, e.g. string(64) or unsignedInt[1:].
type Type struct {
	Kind Kind
	// MinLen and MaxLen bound a string's characters, or a base64 or
	// hexBinary value's decoded bytes; 0 = none.
	MinLen, MaxLen int
	Min            *int64 // numeric lower bound, inclusive
	Max            *int64 // numeric upper bound, inclusive
	// Ranges, when a type has more than one range (TR-106 allows several:
	// a value must be in one of them); Min and Max are then the first.
	Ranges []Range
	Enum   []string // allowed string values; empty = any
	// WriteEnum, when set, are the only values of Enum the ACS may write
	// (the others only the device sets: DiagnosticsState's None, Complete
	// and errors); schema flag wenum=.
	WriteEnum []string
	// Patterns are XSD regular expressions of which a string must match
	// one (whole); those Go's regexp cannot read are left out.
	Patterns *Patterns
	Format   Format
	// Name is the named data type the type came from ("IPAddress"), if any.
	Name string
	// List makes the value a comma-separated list of items, each of the
	// type without List (TR-106 3.2.3).
	List *ListFacet
}

// Range is one numeric range, inclusive; a nil bound is open.
type Range struct{ Min, Max *int64 }

// ListFacet bounds a list: its item count, and the characters of the
// whole value (0 = no bound).
type ListFacet struct {
	MinItems, MaxItems, MaxLen int
}

// Patterns is a compiled set of XSD patterns, shared by the definitions
// that use it.
type Patterns struct {
	Source []string
	res    []*regexp.Regexp
}

// CompilePatterns compiles XSD patterns (TR-106 3.2.3: a value must match
// one of them as a whole). A pattern Go's regexp cannot read (XSD's
// character class subtraction, \i and \c) is dropped; ok is false then.
func CompilePatterns(src []string) (p *Patterns, ok bool) {
	ok = true
	p = &Patterns{}
	for _, s := range src {
		re, err := regexp.Compile("^(?:" + s + ")$")
		if err != nil {
			ok = false
			continue
		}
		p.Source = append(p.Source, s)
		p.res = append(p.res, re)
	}
	if len(p.res) == 0 {
		return nil, ok
	}
	return p, ok
}

func (p *Patterns) match(v string) bool {
	for _, re := range p.res {
		if re.MatchString(v) {
			return true
		}
	}
	return false
}

// UnknownTime is the TR-106 value of a dateTime that is not known.
const UnknownTime = "0001-01-01T00:00:00Z"

// ParseType reads the type notation of the schema files: string, string(64),
// unsignedInt[1:], int[-1:], unsignedInt[0:65535], boolean, dateTime,
// base64(4095), long, unsignedLong, IPAddress, MACAddress.
func ParseType(s string) (Type, error) {
	name, facet := s, ""
	if i := strings.IndexAny(s, "(["); i >= 0 {
		name, facet = s[:i], s[i:]
	}
	var t Type
	switch name {
	case "IPAddress":
		t = Type{Kind: String, MaxLen: 45, Format: FormatIPAddress, Name: name}
	case "MACAddress":
		t = Type{Kind: String, MaxLen: 17, Format: FormatMACAddress, Name: name}
	default:
		k, ok := KindFromXSD(name)
		if !ok || name == "anySimpleType" || name == "integer" || name == "base64Binary" {
			return Type{}, fmt.Errorf("datamodel: unknown type %q", s)
		}
		t.Kind = k
	}
	if facet == "" {
		return t, nil
	}
	switch {
	case facet[0] == '(' && strings.HasSuffix(facet, ")") && (t.Kind == String || t.Kind == Base64 || t.Kind == HexBinary):
		// (MAX) or (MIN:MAX)
		in := facet[1 : len(facet)-1]
		lo, hi, two := strings.Cut(in, ":")
		if !two {
			lo, hi = "", in
		}
		if lo != "" {
			n, err := strconv.Atoi(lo)
			if err != nil || n < 0 {
				return Type{}, fmt.Errorf("datamodel: bad size in type %q", s)
			}
			t.MinLen = n
		}
		if hi != "" {
			n, err := strconv.Atoi(hi)
			if err != nil || n < 0 {
				return Type{}, fmt.Errorf("datamodel: bad size in type %q", s)
			}
			t.MaxLen = n
		}
		if !two && hi == "" {
			return Type{}, fmt.Errorf("datamodel: bad size in type %q", s)
		}
	case facet[0] == '[' && strings.HasSuffix(facet, "]") && t.isNumeric():
		// [MIN:MAX] or [MIN:MAX,MIN:MAX...]
		for i, part := range strings.Split(facet[1:len(facet)-1], ",") {
			lo, hi, ok := strings.Cut(part, ":")
			if !ok {
				return Type{}, fmt.Errorf("datamodel: bad range in type %q", s)
			}
			var r Range
			if lo != "" {
				v, err := strconv.ParseInt(lo, 10, 64)
				if err != nil {
					return Type{}, fmt.Errorf("datamodel: bad range in type %q", s)
				}
				r.Min = &v
			}
			if hi != "" {
				v, err := strconv.ParseInt(hi, 10, 64)
				if err != nil {
					return Type{}, fmt.Errorf("datamodel: bad range in type %q", s)
				}
				r.Max = &v
			}
			if i == 0 {
				t.Min, t.Max = r.Min, r.Max
			}
			t.Ranges = append(t.Ranges, r)
		}
		if len(t.Ranges) == 1 {
			t.Ranges = nil
		}
	default:
		return Type{}, fmt.Errorf("datamodel: bad facet in type %q", s)
	}
	return t, nil
}

// Wire is the kind a value goes over CWMP as: a list is a string
// (TR-106 3.2.3), whatever its items are.
func (t Type) Wire() Kind {
	if t.List != nil {
		return String
	}
	return t.Kind
}

func (t Type) isNumeric() bool {
	switch t.Kind {
	case Int, UnsignedInt, Long, UnsignedLong:
		return true
	}
	return false
}

// String renders the type in schema notation (without its enumeration,
// patterns and list facets, which the schema writes as flags).
func (t Type) String() string {
	s := t.Kind.String()
	if t.Name != "" {
		return t.Name
	}
	switch {
	case t.MinLen > 0:
		s += "(" + strconv.Itoa(t.MinLen) + ":" + strconv.Itoa(t.MaxLen) + ")"
	case t.MaxLen > 0:
		s += "(" + strconv.Itoa(t.MaxLen) + ")"
	}
	bound := func(p *int64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatInt(*p, 10)
	}
	switch {
	case len(t.Ranges) > 1:
		parts := make([]string, len(t.Ranges))
		for i, r := range t.Ranges {
			parts[i] = bound(r.Min) + ":" + bound(r.Max)
		}
		s += "[" + strings.Join(parts, ",") + "]"
	case t.Min != nil || t.Max != nil:
		s += "[" + bound(t.Min) + ":" + bound(t.Max) + "]"
	}
	return s
}

// Canonical checks v against the type and its facets and returns the form the
// tree stores and emits: booleans as true/false, dateTime in UTC with Z
// (a fraction of a second kept with the digits written), integers without sign or leading zeros. A value that breaks the
// type gives an error wrapping ErrInvalidValue.
func (t Type) Canonical(v string) (string, error) {
	if t.List != nil {
		return t.canonicalList(v)
	}
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %s", ErrInvalidValue, why)
	}
	switch t.Kind {
	case String:
		if !utf8.ValidString(v) {
			return bad("not UTF-8")
		}
		if n := utf8.RuneCountInString(v); t.MaxLen > 0 && n > t.MaxLen {
			return bad(fmt.Sprintf("longer than %d characters", t.MaxLen))
		} else if n < t.MinLen && v != "" {
			// An empty string stands for "not set" throughout TR-181
			// (its defaults are often empty below a minimum length).
			return bad(fmt.Sprintf("shorter than %d characters", t.MinLen))
		}
		if len(t.Enum) > 0 && !contains(t.Enum, v) {
			return bad(fmt.Sprintf("%q is not one of %s", v, strings.Join(t.Enum, ", ")))
		}
		if t.Patterns != nil && len(t.Enum) == 0 && v != "" && !t.Patterns.match(v) {
			return bad(fmt.Sprintf("%q does not match the pattern %s", v, strings.Join(t.Patterns.Source, " or ")))
		}
		switch t.Format {
		case FormatIPAddress:
			if v != "" {
				if _, err := netip.ParseAddr(v); err != nil {
					return bad(fmt.Sprintf("%q is not an IP address", v))
				}
			}
		case FormatMACAddress:
			if v != "" && !isMAC(v) {
				return bad(fmt.Sprintf("%q is not a MAC address", v))
			}
		}
		return v, nil
	case Boolean:
		switch strings.TrimSpace(v) {
		case "1", "true", "True", "TRUE":
			return "true", nil
		case "0", "false", "False", "FALSE":
			return "false", nil
		}
		return bad(fmt.Sprintf("%q is not a boolean", v))
	case Int, Long:
		bits := 32
		if t.Kind == Long {
			bits = 64
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, bits)
		if err != nil {
			return bad(fmt.Sprintf("%q is not a %d-bit integer", v, bits))
		}
		if err := t.checkRange(n); err != nil {
			return "", err
		}
		return strconv.FormatInt(n, 10), nil
	case UnsignedInt, UnsignedLong:
		bits := 32
		if t.Kind == UnsignedLong {
			bits = 64
		}
		s := strings.TrimPrefix(strings.TrimSpace(v), "+")
		n, err := strconv.ParseUint(s, 10, bits)
		if err != nil {
			return bad(fmt.Sprintf("%q is not an unsigned %d-bit integer", v, bits))
		}
		if n <= 1<<62 {
			if err := t.checkRange(int64(n)); err != nil {
				return "", err
			}
		} else if t.Max != nil {
			return bad(fmt.Sprintf("%s is above %d", v, *t.Max))
		}
		return strconv.FormatUint(n, 10), nil
	case DateTime:
		return canonicalTime(strings.TrimSpace(v))
	case Base64:
		s := strings.TrimSpace(v)
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return bad("not base64")
		}
		if t.MaxLen > 0 && len(b) > t.MaxLen {
			return bad(fmt.Sprintf("longer than %d bytes", t.MaxLen))
		}
		return s, nil
	case HexBinary:
		s := strings.TrimSpace(v)
		if len(s)%2 != 0 {
			return bad("not hexBinary: an odd number of digits")
		}
		for i := 0; i < len(s); i++ {
			if !isHex(s[i]) {
				return bad("not hexBinary")
			}
		}
		if t.MaxLen > 0 && len(s)/2 > t.MaxLen {
			return bad(fmt.Sprintf("longer than %d bytes", t.MaxLen))
		}
		return s, nil
	case Decimal:
		s := strings.TrimSpace(v)
		if !isDecimal(s) {
			return bad(fmt.Sprintf("%q is not a decimal number", v))
		}
		return s, nil
	}
	return bad("unknown type")
}

// canonicalList checks each item of a comma-separated list (TR-106 3.2.3)
// and keeps the value as written: an ACS reads back what it wrote.
func (t Type) canonicalList(v string) (string, error) {
	l := t.List
	if !utf8.ValidString(v) {
		return "", fmt.Errorf("%w: not UTF-8", ErrInvalidValue)
	}
	if l.MaxLen > 0 && utf8.RuneCountInString(v) > l.MaxLen {
		return "", fmt.Errorf("%w: list longer than %d characters", ErrInvalidValue, l.MaxLen)
	}
	item := t
	item.List = nil
	n := 0
	if strings.TrimSpace(v) != "" {
		for _, it := range strings.Split(v, ",") {
			if _, err := item.Canonical(strings.TrimSpace(it)); err != nil {
				return "", fmt.Errorf("list item %d: %w", n+1, err)
			}
			n++
		}
	}
	if l.MaxItems > 0 && n > l.MaxItems {
		return "", fmt.Errorf("%w: more than %d items", ErrInvalidValue, l.MaxItems)
	}
	if n < l.MinItems && n > 0 {
		return "", fmt.Errorf("%w: fewer than %d items", ErrInvalidValue, l.MinItems)
	}
	return v, nil
}

func (t Type) checkRange(n int64) error {
	if len(t.Ranges) > 1 {
		for _, r := range t.Ranges {
			if (r.Min == nil || n >= *r.Min) && (r.Max == nil || n <= *r.Max) {
				return nil
			}
		}
		return fmt.Errorf("%w: %d is outside the ranges %s", ErrInvalidValue, n, t.String())
	}
	if t.Min != nil && n < *t.Min {
		return fmt.Errorf("%w: %d is below %d", ErrInvalidValue, n, *t.Min)
	}
	if t.Max != nil && n > *t.Max {
		return fmt.Errorf("%w: %d is above %d", ErrInvalidValue, n, *t.Max)
	}
	return nil
}

// isDecimal accepts the xsd:decimal lexical form: an optional sign,
// digits with at most one decimal point, at least one digit.
func isDecimal(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	digits, dot := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.' && !dot:
			dot = true
		default:
			return false
		}
	}
	return digits > 0
}

// canonicalTime accepts ISO 8601 date-times with or without fraction and
// zone (no zone is read as UTC), the TR-106 Unknown Time and the IGD:1.0
// "0000-00-00T00:00:00" spelling of it.
func canonicalTime(v string) (string, error) {
	if v == "0000-00-00T00:00:00" || v == "0000-00-00T00:00:00Z" {
		return UnknownTime, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if tm, err := time.Parse(layout, v); err == nil {
			// TR-106 dateTime allows fractional seconds; an ACS that wrote
			// them (GenieACS stores milliseconds) reads back the digits it
			// wrote, else it sees a change and writes the value again.
			out := tm.UTC().Format("2006-01-02T15:04:05")
			if n := fractionDigits(v); n > 0 {
				out += "." + fmt.Sprintf("%09d", tm.Nanosecond())[:n]
			}
			return out + "Z", nil
		}
	}
	return "", fmt.Errorf("%w: %q is not a dateTime", ErrInvalidValue, v)
}

// fractionDigits counts the digits after the seconds' decimal point
// (at most 9, what time.Time holds).
func fractionDigits(v string) int {
	i := strings.IndexByte(v, 'T')
	if i < 0 {
		return 0
	}
	j := strings.IndexByte(v[i:], '.')
	if j < 0 {
		return 0
	}
	n := 0
	for k := i + j + 1; k < len(v) && v[k] >= '0' && v[k] <= '9'; k++ {
		n++
	}
	return min(n, 9)
}

func isMAC(v string) bool {
	if len(v) != 17 {
		return false
	}
	for i := 0; i < 17; i++ {
		c := v[i]
		if i%3 == 2 {
			if c != ':' {
				return false
			}
			continue
		}
		if !isHex(c) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
