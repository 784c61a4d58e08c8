package soap

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// dec reads the unqualified children of a message element, leniently: what
// real ACSs send varies (missing arrayType, odd whitespace, 0/1 booleans, a
// missing Value). The first error sticks and later reads return zero values.
type dec struct {
	method string
	e      *etree.Element
	err    error
}

// child returns the first child element with the local name, whatever its
// namespace (children are unqualified, but some ACSs qualify them).
func child(e *etree.Element, name string) *etree.Element {
	if e == nil {
		return nil
	}
	for _, c := range e.Child {
		if el, ok := c.(*etree.Element); ok && el.Tag == name {
			return el
		}
	}
	return nil
}

func (d *dec) fail(arg string, err error) {
	if d.err == nil {
		d.err = &ArgError{Method: d.method, Arg: arg, Err: err}
	}
}

var errMissing = errors.New("missing")

// str returns the text of a child, "" when absent.
func (d *dec) str(name string) string {
	c := child(d.e, name)
	if c == nil {
		return ""
	}
	return c.Text()
}

// req returns the text of a child that must be present.
func (d *dec) req(name string) string {
	c := child(d.e, name)
	if c == nil {
		d.fail(name, errMissing)
		return ""
	}
	return c.Text()
}

func (d *dec) u32(name string) uint32 {
	s := strings.TrimSpace(d.str(name))
	if s == "" {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		d.fail(name, fmt.Errorf("%q is not an unsignedInt", s))
	}
	return uint32(n)
}

func (d *dec) int(name string) int {
	s := strings.TrimSpace(d.str(name))
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		d.fail(name, fmt.Errorf("%q is not an int", s))
	}
	return int(n)
}

func (d *dec) bool(name string) bool {
	s := strings.TrimSpace(d.str(name))
	switch s {
	case "1", "true", "True", "TRUE":
		return true
	case "0", "false", "False", "FALSE", "":
		return false
	}
	d.fail(name, fmt.Errorf("%q is not a boolean", s))
	return false
}

func (d *dec) time(name string) time.Time {
	t, err := ParseTime(d.str(name))
	if err != nil {
		d.fail(name, err)
	}
	return t
}

// ParseTime reads an xsd:dateTime. "", the TR-106 Unknown Time and the
// IGD:1.0 "0000-00-00T00:00:00" give the zero time; no zone means UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "", "0001-01-01T00:00:00Z", "0000-00-00T00:00:00", "0000-00-00T00:00:00Z":
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a dateTime", s)
}

func parseBool(s string) bool {
	switch strings.TrimSpace(s) {
	case "1", "true", "True", "TRUE":
		return true
	}
	return false
}

// elems returns the child elements of the named child (an array), or nil.
func (d *dec) elems(name string) []*etree.Element {
	c := child(d.e, name)
	if c == nil {
		return nil
	}
	return c.ChildElements()
}

// strs reads a string array (ParameterNames, MethodList, AccessList): every
// child element's text, whatever the element is called.
func (d *dec) strs(name string) []string {
	els := d.elems(name)
	out := make([]string, 0, len(els))
	for _, e := range els {
		out = append(out, strings.TrimSpace(e.Text()))
	}
	return out
}

func (d *dec) sub(e *etree.Element) *dec {
	return &dec{method: d.method, e: e}
}

// xsiType returns the xsi:type of e ("xsd:string"), or "".
func xsiType(e *etree.Element) string {
	for i := range e.Attr {
		a := &e.Attr[i]
		if a.Key == "type" && (a.Space == "xsi" || a.NamespaceURI() == NSXSI) {
			return strings.TrimSpace(a.Value)
		}
	}
	return ""
}

func (d *dec) paramValues(name string) []ParameterValue {
	els := d.elems(name)
	out := make([]ParameterValue, 0, len(els))
	for _, e := range els {
		n := child(e, "Name")
		if n == nil {
			d.fail(name, fmt.Errorf("%s without Name", e.Tag))
			return nil
		}
		pv := ParameterValue{Name: strings.TrimSpace(n.Text())}
		if v := child(e, "Value"); v != nil {
			pv.Value = v.Text()
			pv.Type = xsiType(v)
		}
		out = append(out, pv)
	}
	return out
}
