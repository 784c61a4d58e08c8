// Package confkit decodes the commands' configuration once: one YAML file
// read into a yaml.v3 node tree, then the environment (CWMP_AGENT_<KEY>)
// and the flags, into plain structs whose `yaml` tags name the keys. Every
// problem is an *Error naming the key, and the file and line when the key
// is in the file. Unknown keys are errors.
//
// It is written for this project rather than taken from viper, which the
// first releases used: viper folds keys to lower case and splits them on
// dots (the `parameters` map has case-sensitive dotted parameter paths as
// keys), loses line numbers, and so needed the file read three times and
// every value converted by hand. Here the YAML parsing is yaml.v3's; what
// is ours is the walk from nodes to struct fields.
package confkit

import (
	"encoding"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is one configuration problem.
type Error struct {
	Key  string // dotted, as written in YAML ("acs.url")
	Err  error
	File string
	Line int // 0: not in the file (a default, the environment, a flag)
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("config: %s:%d: %s: %v", e.File, e.Line, e.Key, e.Err)
	}
	return "config: " + e.Key + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// ErrUnknownKey is the problem of a key no field has.
var ErrUnknownKey = errors.New("unknown key")

// Doc is a configuration file, parsed once.
type Doc struct {
	File  string
	root  *yaml.Node     // the top mapping; nil for an empty file
	lines map[string]int // dotted key (lower case, parameters as written) -> line
}

// Read parses a YAML file. A file that is not YAML is an *Error naming it.
func Read(file string) (*Doc, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, &Error{Key: "--config " + file, Err: err}
	}
	return Parse(file, data)
}

// Parse is Read of data already in memory.
func Parse(file string, data []byte) (*Doc, error) {
	d := &Doc{File: file, lines: map[string]int{}}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{Key: "--config " + file, Err: err}
	}
	if len(doc.Content) == 0 {
		return d, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return d, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Key: "--config " + file, Err: fmt.Errorf("line %d: want a mapping of keys", root.Line)}
	}
	d.root = root
	return d, nil
}

// Line is the line of key in the file, or of its nearest parent there; 0
// when neither is.
func (d *Doc) Line(key string) int {
	if d == nil {
		return 0
	}
	for k := key; k != ""; {
		if l, ok := d.lines[k]; ok {
			return l
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return 0
}

// Locate gives errs the file and line of their keys.
func (d *Doc) Locate(errs []error) []error {
	if d == nil {
		return errs
	}
	for _, e := range errs {
		var ce *Error
		if errors.As(e, &ce) && ce.Line == 0 && d.File != "" {
			if l := d.Line(ce.Key); l > 0 {
				ce.File, ce.Line = d.File, l
			}
		}
	}
	return errs
}

// Options qualify Decode.
type Options struct {
	// Only, when set, decodes only these top-level keys and ignores the
	// others (they belong to another program reading the same file).
	Only []string
}

// Decode fills the struct v points to from the document. Fields keep their
// values (the defaults) where the document says nothing.
func Decode(d *Doc, v any, opt Options) []error {
	if d == nil || d.root == nil {
		return nil
	}
	rv := reflect.ValueOf(v).Elem()
	var errs []error
	only := map[string]bool{}
	for _, k := range opt.Only {
		only[k] = true
	}
	d.decodeStruct(d.root, rv, "", only, &errs)
	return errs
}

func (d *Doc) decodeStruct(n *yaml.Node, rv reflect.Value, prefix string, only map[string]bool, errs *[]error) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		name := strings.ToLower(kn.Value)
		key := prefix + name
		if prefix == "" && len(only) > 0 && !only[name] {
			continue
		}
		d.lines[key] = kn.Line
		f, ok := fieldByKey(rv, name)
		if !ok {
			*errs = append(*errs, &Error{Key: key, Err: ErrUnknownKey, File: d.File, Line: kn.Line})
			continue
		}
		d.decodeValue(vn, f, key, errs)
	}
}

func (d *Doc) decodeValue(vn *yaml.Node, f reflect.Value, key string, errs *[]error) {
	fail := func(err error) { *errs = append(*errs, &Error{Key: key, Err: err, File: d.File, Line: vn.Line}) }
	if vn.Kind == yaml.AliasNode {
		vn = vn.Alias
	}
	switch {
	case f.Kind() == reflect.Struct && !isScalarType(f.Type()):
		if vn.Kind == yaml.ScalarNode && vn.Tag == "!!null" {
			return
		}
		if vn.Kind != yaml.MappingNode {
			fail(errors.New("must be a mapping of keys"))
			return
		}
		d.decodeStruct(vn, f, key+".", nil, errs)
	case f.Kind() == reflect.Map:
		// A map of scalars whose keys are kept as written (parameters).
		if vn.Kind == yaml.ScalarNode && vn.Tag == "!!null" {
			return
		}
		if vn.Kind != yaml.MappingNode {
			fail(errors.New("must be a map of parameter path to value"))
			return
		}
		if f.IsNil() {
			f.Set(reflect.MakeMap(f.Type()))
		}
		for i := 0; i+1 < len(vn.Content); i += 2 {
			kn, en := vn.Content[i], vn.Content[i+1]
			sub := key + "." + kn.Value
			d.lines[sub] = kn.Line
			if en.Kind != yaml.ScalarNode {
				*errs = append(*errs, &Error{Key: sub, Err: errors.New("must be a single value (a whole dotted path as the key)"), File: d.File, Line: kn.Line})
				continue
			}
			val := en.Value
			if en.Tag == "!!null" {
				val = ""
			}
			f.SetMapIndex(reflect.ValueOf(kn.Value), reflect.ValueOf(val))
		}
	case f.Type() == stringsType && vn.Kind == yaml.SequenceNode:
		// A list of strings (file names); the environment and flags give
		// the same as one comma-separated value (setScalar).
		list := make([]string, 0, len(vn.Content))
		for _, en := range vn.Content {
			if en.Kind != yaml.ScalarNode {
				*errs = append(*errs, &Error{Key: key, Err: errors.New("must be a list of single values"), File: d.File, Line: en.Line})
				return
			}
			if v := strings.TrimSpace(en.Value); v != "" && en.Tag != "!!null" {
				list = append(list, v)
			}
		}
		f.Set(reflect.ValueOf(list))
	default:
		if vn.Kind != yaml.ScalarNode {
			fail(errors.New("must be a single value"))
			return
		}
		val := vn.Value
		if vn.Tag == "!!null" {
			val = ""
		}
		if err := setScalar(f, val); err != nil {
			fail(err)
		}
	}
}

// fieldByKey finds the field whose yaml tag is name (case folded).
func fieldByKey(rv reflect.Value, name string) (reflect.Value, bool) {
	t := rv.Type()
	for i := 0; i < t.NumField(); i++ {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" && strings.EqualFold(tag, name) {
			return rv.Field(i), true
		}
	}
	return reflect.Value{}, false
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	ipType       = reflect.TypeOf(net.IP(nil))
	ipsType      = reflect.TypeOf([]net.IP(nil))
	stringsType  = reflect.TypeOf([]string(nil))
	textType     = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

func isScalarType(t reflect.Type) bool { return reflect.PointerTo(t).Implements(textType) }

// setScalar converts a string to the field's type, with an error a user
// understands.
func setScalar(f reflect.Value, s string) error {
	if f.CanAddr() && f.Addr().Type().Implements(textType) {
		return f.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	}
	s = strings.TrimSpace(s)
	switch f.Type() {
	case durationType:
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 30s)", s)
		}
		f.SetInt(int64(d))
		return nil
	case ipType:
		if s == "" {
			f.Set(reflect.Zero(ipType))
			return nil
		}
		ip := net.ParseIP(s).To4()
		if ip == nil {
			return fmt.Errorf("%q is not an IPv4 address", s)
		}
		f.Set(reflect.ValueOf(ip))
		return nil
	case stringsType:
		var list []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				list = append(list, p)
			}
		}
		f.Set(reflect.ValueOf(list))
		return nil
	case ipsType:
		var ips []net.IP
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			ip := net.ParseIP(p).To4()
			if ip == nil {
				return fmt.Errorf("%q is not an IPv4 address", p)
			}
			ips = append(ips, ip)
		}
		f.Set(reflect.ValueOf(ips))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean", s)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		f.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		f.SetFloat(x)
	default:
		return fmt.Errorf("unsupported type %s", f.Type())
	}
	return nil
}

// Lookup finds the field of a dotted key in the struct v points to.
func Lookup(v any, key string) (reflect.Value, bool) {
	rv := reflect.ValueOf(v).Elem()
	for _, part := range strings.Split(key, ".") {
		if rv.Kind() != reflect.Struct || isScalarType(rv.Type()) {
			return reflect.Value{}, false
		}
		f, ok := fieldByKey(rv, part)
		if !ok {
			return reflect.Value{}, false
		}
		rv = f
	}
	return rv, true
}

// Set sets one key from a string (a flag, an environment variable).
func Set(v any, key, value string) error {
	f, ok := Lookup(v, key)
	if !ok || f.Kind() == reflect.Map || f.Kind() == reflect.Struct && !isScalarType(f.Type()) {
		return &Error{Key: key, Err: ErrUnknownKey}
	}
	if err := setScalar(f, value); err != nil {
		return &Error{Key: key, Err: err}
	}
	return nil
}

// EnvName is the environment variable of a key: CWMP_AGENT_ACS_URL for
// acs.url (upper case, dots become underscores).
func EnvName(prefix, key string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// ApplyEnv sets every key of v that has an environment variable.
func ApplyEnv(v any, prefix string, lookup func(string) (string, bool)) []error {
	var errs []error
	for _, k := range Keys(v) {
		if k.Map {
			continue
		}
		if val, ok := lookup(EnvName(prefix, k.Name)); ok {
			if err := Set(v, k.Name, val); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// Key describes one configuration key of a struct: its dotted name, its
// help (the `help` tag) and its default (the value v holds).
type Key struct {
	Name    string
	Help    string
	Default string
	Map     bool // a map of values (parameters)
}

// Keys lists the keys of the struct v points to, in field order.
func Keys(v any) []Key {
	var out []Key
	var walk func(rv reflect.Value, prefix string)
	walk = func(rv reflect.Value, prefix string) {
		t := rv.Type()
		for i := 0; i < t.NumField(); i++ {
			sf := t.Field(i)
			tag, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			f := rv.Field(i)
			name := prefix + tag
			switch {
			case f.Kind() == reflect.Struct && !isScalarType(f.Type()):
				walk(f, name+".")
			default:
				out = append(out, Key{Name: name, Help: sf.Tag.Get("help"), Default: show(f), Map: f.Kind() == reflect.Map})
			}
		}
	}
	walk(reflect.ValueOf(v).Elem(), "")
	return out
}

func show(f reflect.Value) string {
	switch f.Type() {
	case durationType:
		return time.Duration(f.Int()).String()
	case ipType:
		if f.IsNil() {
			return ""
		}
	}
	if f.Kind() == reflect.Map {
		return "{}"
	}
	if t, ok := f.Interface().(fmt.Stringer); ok {
		return t.String()
	}
	return fmt.Sprint(f.Interface())
}

// Sorted returns errs sorted by their text (a stable report).
func Sorted(errs []error) []error {
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errs
}
