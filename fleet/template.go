package fleet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
)

// Template is a data-model template: the parameter values of a real device,
// as `cwmp-agent dump` writes them, one per line, either JSON
//
//	{"name":"Device.DeviceInfo.ModelName","type":"xsd:string","value":"HG-1"}
//
// or text ("Device.DeviceInfo.ModelName = HG-1", `dump --format text`).
// Blank lines and lines starting with # are ignored.
type Template struct {
	// Values are the factory values the fleet's CPEs share.
	Values map[string]string
	// Skipped counts the lines left out, by reason: not in the data model,
	// derived (NumberOfEntries), computed by the agent, or a value the
	// parameter's type refuses.
	Skipped map[string]int
}

// MaxTemplateLine caps one line of a template.
const MaxTemplateLine = 64 << 10

// ParseTemplate reads a template against the schema of the root in use.
// A line that is neither form is an error naming its number; values that
// do not fit the data model are skipped and counted, so that a dump of a
// richer device (vendor extensions, other versions) still serves.
func ParseTemplate(r io.Reader, s *datamodel.Schema) (*Template, error) {
	t := &Template{Values: map[string]string{}, Skipped: map[string]int{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), MaxTemplateLine)
	root := s.RootName() + "."
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		var name, value string
		if strings.HasPrefix(text, "{") {
			var v struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			}
			dec := json.NewDecoder(bytes.NewReader([]byte(text)))
			if err := dec.Decode(&v); err != nil {
				return nil, fmt.Errorf("template line %d: %v", line, err)
			}
			name, value = v.Name, v.Value
		} else {
			n, val, ok := strings.Cut(text, " = ")
			if !ok {
				if n2, ok2 := strings.CutSuffix(text, " ="); ok2 {
					n, val, ok = n2, "", true
				}
			}
			if !ok {
				return nil, fmt.Errorf("template line %d: want JSON or \"name = value\"", line)
			}
			name, value = strings.TrimSpace(n), val
		}
		if name == "" || strings.HasSuffix(name, ".") {
			return nil, fmt.Errorf("template line %d: %q is not a parameter name", line, name)
		}
		if !strings.HasPrefix(name, root) {
			t.Skipped["not in the data model"]++
			continue
		}
		p := s.Param(datamodel.SchemaPath(name))
		switch {
		case p == nil:
			t.Skipped["not in the data model"]++
			continue
		case p.CountOf != nil:
			t.Skipped["derived (NumberOfEntries)"]++
			continue
		case p.Computed:
			t.Skipped["computed by the agent"]++
			continue
		}
		if _, err := p.Type.Canonical(value); err != nil {
			t.Skipped["value refused by its type"]++
			continue
		}
		t.Values[name] = value
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("template line %d: longer than %d bytes", line+1, MaxTemplateLine)
		}
		return nil, err
	}
	// The values must build a tree together (instances within limits).
	if _, err := datamodel.New(s, datamodel.Options{Factory: t.Values}); err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	return t, nil
}
