package fleet

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/schemas"
)

// Template is a data-model template: the tree of a real device that a
// fleet's CPEs are cloned from. ParseTemplate reads, by their content:
//
//   - a dump of the agent (`cwmp-agent dump`): JSON lines
//     {"name":"Device.DeviceInfo.ModelName","type":"xsd:string","value":"HG-1"}
//     or text lines "Device.DeviceInfo.ModelName = HG-1";
//   - a genieacs-sim data-model CSV (header
//     "Parameter,Object,Writable,Value,Value type"), or SimulaTR69's
//     (the same with "Type"): one row per parameter or object, objects
//     without their trailing dot;
//   - a device document exported from GenieACS's NBI (GET /devices/?query=
//     {"_id":"..."}): JSON with _value, _type, _writable and _object per
//     node (the array the NBI answers, or one document).
type Template struct {
	// Format is what was read: "dump", "genieacs-sim", "simulatr69" or
	// "genieacs".
	Format string
	// Values are the factory values the fleet's CPEs share.
	Values map[string]string
	// Names are the schema paths of every object and parameter the
	// device has (objects end in "."): a fleet serves those.
	Names map[string]bool
	// Skipped counts what was left out, by reason.
	Skipped map[string]int
	// own are the parameters and objects no schema defines (vendors'),
	// typed from the template, by schema path.
	own map[string]ownDef
}

type ownDef struct {
	object   bool
	writable bool
	kind     datamodel.Kind
}

// MaxTemplateLine caps one line of a template; MaxTemplateSize the whole
// (a GenieACS document is one JSON value).
const (
	MaxTemplateLine = 64 << 10
	MaxTemplateSize = 64 << 20
	maxTemplateRows = 1 << 20
	maxJSONDepth    = 64
)

// entry is one row of any format.
type entry struct {
	name     string // objects end in "."
	object   bool
	writable *bool // nil: not said
	value    string
	typ      string // xsi:type, "" not said
}

// ParseTemplate reads a template against the model in use. Rows that do
// not fit the model (a value its type refuses, a NumberOfEntries, a path
// outside the root) are skipped and counted; a value the agent computes
// (UpTime) is kept for a CPE where nothing computes it (a virtual CPE's
// interface addresses);
// parameters and objects the model does not define are the device's own
// (vendor extensions): typed from the template, writable as it says.
func ParseTemplate(r io.Reader, s *datamodel.Schema) (*Template, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxTemplateSize+1))
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	if len(data) > MaxTemplateSize {
		return nil, fmt.Errorf("template: larger than %d MiB", MaxTemplateSize>>20)
	}
	format, entries, err := readEntries(data)
	if err != nil {
		return nil, err
	}
	t := &Template{Format: format, Values: map[string]string{}, Names: map[string]bool{}, Skipped: map[string]int{},
		own: map[string]ownDef{}}
	root := s.RootName() + "."
	for _, e := range entries {
		t.add(s, root, e)
	}
	t.finish()
	return t, nil
}

func (t *Template) add(s *datamodel.Schema, root string, e entry) {
	if !strings.HasPrefix(e.name, root) {
		// DeviceID.*, VirtualParameters.*, another root.
		t.Skipped["outside "+strings.TrimSuffix(root, ".")]++
		return
	}
	sp := datamodel.SchemaPath(e.name)
	if e.object {
		t.addObject(s, sp, e.writable)
		return
	}
	obj := sp[:strings.LastIndexByte(sp, '.')+1]
	t.addObject(s, obj, nil)
	p := s.Param(sp)
	if p == nil {
		if o := s.Object(obj); o == nil && t.own[obj].kind == 0 && !t.own[obj].object {
			// The parent object is neither the model's nor the device's:
			// the shape does not fit (an instance under a single object).
			t.Skipped["object not in the model's shape"]++
			return
		}
		k, ok := datamodel.KindFromXSD(e.typ)
		if e.typ == "" || !ok {
			k = datamodel.String
		}
		w := e.writable != nil && *e.writable
		if _, err := (datamodel.Type{Kind: k}).Canonical(e.value); err != nil {
			t.Skipped["value refused by its type"]++
			return
		}
		if _, dup := t.own[sp]; !dup {
			t.own[sp] = ownDef{writable: w, kind: k}
		}
		t.Names[sp] = true
		t.Values[e.name] = e.value
		return
	}
	t.Names[sp] = true
	switch {
	case p.CountOf != nil:
		t.Skipped["derived (NumberOfEntries)"]++
		return
	case p.Hidden && e.value == "":
		// A password read from a device reads back empty: no value.
		return
	}
	if _, err := p.Type.Canonical(e.value); err != nil {
		t.Skipped["value refused by its type"]++
		return
	}
	t.Values[e.name] = e.value
}

// addObject records an object path and its ancestors; one the model does
// not define becomes the device's own. A row that names a table itself
// (genieacs-sim's "Hosts.Host", then its instances) is resolved by finish.
func (t *Template) addObject(s *datamodel.Schema, sp string, writable *bool) {
	if s.Object(sp) == nil && s.Object(sp+"{i}.") != nil {
		sp += "{i}."
	}
	for o := sp; o != "" && !t.Names[o]; o = parentPath(o) {
		t.Names[o] = true
		if s.Object(o) == nil && s.Object(o+"{i}.") == nil {
			if _, ok := t.own[o]; !ok {
				t.own[o] = ownDef{object: true}
			}
		}
	}
	if writable != nil && *writable && s.Object(sp) == nil {
		d := t.own[sp]
		d.writable = true
		t.own[sp] = d
	}
}

// finish folds the rows that named a table of the device's own into the
// table: "X_Rule" and "X_Rule.1" are the table X_Rule.{i}., writable if
// either row said so.
func (t *Template) finish() {
	for p, d := range t.own {
		if !d.object || strings.HasSuffix(p, "{i}.") {
			continue
		}
		tab, ok := t.own[p+"{i}."]
		if !ok {
			continue
		}
		tab.writable = tab.writable || d.writable
		t.own[p+"{i}."] = tab
		delete(t.own, p)
		delete(t.Names, p)
	}
}

func parentPath(path string) string {
	p := strings.TrimSuffix(path, ".")
	p = strings.TrimSuffix(p, ".{i}")
	i := strings.LastIndexByte(p, '.')
	if i < 0 {
		return ""
	}
	return p[:i+1]
}

// Own lists the schema paths the template defines itself (vendors'),
// sorted.
func (t *Template) Own() []string {
	out := make([]string, 0, len(t.own))
	for p := range t.own {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Extension writes the device's own objects and parameters as schema text
// extending the model (schemas.Tailor), parents first.
func (t *Template) Extension() []byte {
	paths := t.Own()
	sort.Slice(paths, func(i, j int) bool {
		di, dj := strings.Count(paths[i], "."), strings.Count(paths[j], ".")
		if strings.HasSuffix(paths[i], ".") != strings.HasSuffix(paths[j], ".") && di == dj {
			return strings.HasSuffix(paths[i], ".")
		}
		if di != dj {
			return di < dj
		}
		return paths[i] < paths[j]
	})
	byObj := map[string][]string{}
	var objs []string
	for _, p := range paths {
		if strings.HasSuffix(p, ".") {
			objs = append(objs, p)
			continue
		}
		o := p[:strings.LastIndexByte(p, '.')+1]
		byObj[o] = append(byObj[o], p)
	}
	var b bytes.Buffer
	written := map[string]bool{}
	for _, o := range objs {
		flags := ""
		if strings.HasSuffix(o, "{i}.") && t.own[o].writable {
			flags = "  W"
		}
		fmt.Fprintf(&b, "object %s%s\n", o, flags)
		written[o] = true
		for _, p := range byObj[o] {
			writeOwnParam(&b, p, t.own[p])
		}
	}
	// Parameters of the model's objects.
	var rest []string
	for o := range byObj {
		if !written[o] {
			rest = append(rest, o)
		}
	}
	sort.Strings(rest)
	for _, o := range rest {
		fmt.Fprintf(&b, "object %s\n", o)
		for _, p := range byObj[o] {
			writeOwnParam(&b, p, t.own[p])
		}
	}
	return b.Bytes()
}

func writeOwnParam(b *bytes.Buffer, path string, d ownDef) {
	access := "R"
	if d.writable {
		access = "W"
	}
	fmt.Fprintf(b, "%s %s %s\n", path[strings.LastIndexByte(path, '.')+1:], d.kind, access)
}

// Schema is the model tailored to the template: exactly the device's tree
// (with the parameters the agent needs, and those named by also), its own
// parameters added. The template's values are checked to build a tree.
func (t *Template) Schema(model string, files []string, also ...string) (*datamodel.Schema, error) {
	keep := t.Names
	if len(also) > 0 {
		keep = make(map[string]bool, len(t.Names)+len(also))
		for k := range t.Names {
			keep[k] = true
		}
		for _, a := range also {
			keep[datamodel.SchemaPath(a)] = true
		}
	}
	s, err := schemas.Tailor(model, files, keep, t.Extension())
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	if _, err := datamodel.New(s, datamodel.Options{Factory: t.Values}); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	return s, nil
}

// readEntries detects the format and reads its rows.
func readEntries(data []byte) (string, []entry, error) {
	first := bytes.TrimSpace(firstLine(data))
	switch {
	case bytes.HasPrefix(first, []byte("Parameter,Object,Writable,Value")):
		return readCSV(data)
	case bytes.HasPrefix(first, []byte("[")):
		return readGenieACS(data)
	case bytes.HasPrefix(first, []byte("{")):
		var probe map[string]json.RawMessage
		if json.Unmarshal(first, &probe) == nil {
			if _, ok := probe["name"]; ok {
				return readDump(data)
			}
		}
		return readGenieACS(data)
	}
	return readDump(data)
}

func firstLine(data []byte) []byte {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			return t
		}
	}
	return nil
}

// readDump reads `cwmp-agent dump` output, JSON lines or text lines.
func readDump(data []byte) (string, []entry, error) {
	var out []entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 4096), MaxTemplateLine)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if len(out) >= maxTemplateRows {
			return "", nil, fmt.Errorf("template: more than %d rows", maxTemplateRows)
		}
		var e entry
		if strings.HasPrefix(text, "{") {
			var v struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Value string `json:"value"`
			}
			if err := json.Unmarshal([]byte(text), &v); err != nil {
				return "", nil, fmt.Errorf("template line %d: %v", line, err)
			}
			e = entry{name: v.Name, value: v.Value, typ: v.Type}
		} else {
			n, val, ok := strings.Cut(text, " = ")
			if !ok {
				if n2, ok2 := strings.CutSuffix(text, " ="); ok2 {
					n, val, ok = n2, "", true
				}
			}
			if !ok {
				return "", nil, fmt.Errorf("template line %d: want JSON or \"name = value\"", line)
			}
			e = entry{name: strings.TrimSpace(n), value: val}
		}
		if e.name == "" || strings.HasSuffix(e.name, ".") {
			return "", nil, fmt.Errorf("template line %d: %q is not a parameter name", line, e.name)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return "", nil, fmt.Errorf("template line %d: longer than %d bytes", line+1, MaxTemplateLine)
		}
		return "", nil, fmt.Errorf("template: %w", err)
	}
	return "dump", out, nil
}

// readCSV reads genieacs-sim's and SimulaTR69's data-model CSV.
func readCSV(data []byte) (string, []entry, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	head, err := r.Read()
	if err != nil {
		return "", nil, fmt.Errorf("template: %w", err)
	}
	format := "genieacs-sim"
	if len(head) >= 5 && strings.TrimSpace(head[4]) == "Type" {
		format = "simulatr69"
	}
	var out []entry
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			return "", nil, fmt.Errorf("template line %d: %v", line, err)
		}
		if len(out) >= maxTemplateRows {
			return "", nil, fmt.Errorf("template: more than %d rows", maxTemplateRows)
		}
		if len(rec) < 4 {
			return "", nil, fmt.Errorf("template line %d: want Parameter,Object,Writable,Value[,Type]", line)
		}
		obj, err1 := strconv.ParseBool(strings.TrimSpace(rec[1]))
		w, err2 := strconv.ParseBool(strings.TrimSpace(rec[2]))
		if err1 != nil || err2 != nil {
			return "", nil, fmt.Errorf("template line %d: Object and Writable must be true or false", line)
		}
		e := entry{name: strings.TrimSpace(rec[0]), object: obj, writable: &w, value: rec[3]}
		if len(rec) >= 5 {
			e.typ = strings.TrimSpace(rec[4])
		}
		if e.name == "" {
			return "", nil, fmt.Errorf("template line %d: no parameter name", line)
		}
		if e.object && !strings.HasSuffix(e.name, ".") {
			e.name += "."
		}
		out = append(out, e)
	}
	return format, out, nil
}

// readGenieACS reads a device document of GenieACS's NBI.
func readGenieACS(data []byte) (string, []entry, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", nil, fmt.Errorf("template: GenieACS device document: %v", err)
	}
	if arr, ok := v.([]any); ok {
		if len(arr) == 0 {
			return "", nil, errors.New("template: GenieACS answered no device")
		}
		v = arr[0]
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return "", nil, errors.New("template: GenieACS device document: not a JSON object")
	}
	var out []entry
	var walk func(prefix string, n map[string]any, depth int) error
	walk = func(prefix string, n map[string]any, depth int) error {
		if depth > maxJSONDepth {
			return fmt.Errorf("template: GenieACS device document deeper than %d", maxJSONDepth)
		}
		keys := make([]string, 0, len(n))
		for k := range n {
			if !strings.HasPrefix(k, "_") {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			c, ok := n[k].(map[string]any)
			if !ok || strings.Contains(k, ".") {
				continue
			}
			if len(out) >= maxTemplateRows {
				return fmt.Errorf("template: more than %d rows", maxTemplateRows)
			}
			name := prefix + k
			var w *bool
			if wv, ok := c["_writable"].(bool); ok {
				w = &wv
			}
			if isObj, _ := c["_object"].(bool); isObj {
				out = append(out, entry{name: name + ".", object: true, writable: w})
				if err := walk(name+".", c, depth+1); err != nil {
					return err
				}
				continue
			}
			val, has := c["_value"]
			if !has {
				continue // known only by name: GenieACS never read it
			}
			e := entry{name: name, writable: w, value: scalar(val)}
			if ty, ok := c["_type"].(string); ok {
				e.typ = ty
			}
			out = append(out, e)
		}
		return nil
	}
	if err := walk("", doc, 0); err != nil {
		return "", nil, err
	}
	return "genieacs", out, nil
}

// scalar renders a GenieACS value: strings (dates too) as they are,
// booleans and numbers in their JSON form.
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case json.Number:
		return x.String()
	case nil:
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}
