// Package backend serves parameters of a real device from the system: a
// mapping file (YAML) binds parameters or whole subtrees to a file, a
// command, or the device's own daemon on the control socket. The tree
// mounts them (datamodel.Tree.Mount) and takes care of the transaction:
// validate all, apply all, roll back on a failure.
package backend

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
)

// Entry is one mount of a mapping file.
type Entry struct {
	Path string // a parameter, or a subtree ending in "."; {i} allowed
	Line int    // where it is in the file
	// Exactly one of the following.
	File    string
	Command *CommandSpec
	Control bool
}

// CommandSpec is a command backend.
type CommandSpec struct {
	// Get runs with the mounted path appended; it prints the value (a
	// single parameter) or one JSON object per line {"name":..,"value":..}
	// for a subtree. Set runs with the parameter path and the value
	// appended; a non-zero exit refuses the value.
	Get, Set []string
	Timeout  time.Duration // default 5 s
	Cache    time.Duration // default 2 s: one run serves a whole GetParameterValues
}

// LineError is a problem in a mapping file, with its line.
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// MaxMappingSize caps a mapping file.
const MaxMappingSize = 1 << 20

// Load reads a mapping file:
//
//	mounts:
//	  - path: Device.DeviceInfo.ModelName
//	    file: /etc/model
//	  - path: Device.LAN.
//	    command:
//	      get: [/usr/libexec/cwmp-agent/lan, get]
//	      set: [/usr/libexec/cwmp-agent/lan, set]
//	      timeout: 5s
//	      cache: 2s
//	  - path: Device.Services.
//	    control: true
//
// Every problem is reported with its line, all of them at once; paths are
// checked against the schema of the root in use.
func Load(r io.Reader, s *datamodel.Schema) ([]Entry, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxMappingSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxMappingSize {
		return nil, fmt.Errorf("mapping: larger than %d bytes", MaxMappingSize)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file mounts nothing
		}
		return nil, fmt.Errorf("mapping: %w", err)
	}
	var errs []error
	bad := func(n *yaml.Node, format string, a ...any) {
		errs = append(errs, &LineError{Line: n.Line, Err: fmt.Errorf(format, a...)})
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return nil, &LineError{Line: root.Line, Err: errors.New("want a mapping with the key \"mounts\"")}
	}
	var mounts *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k := root.Content[i]
		if k.Value != "mounts" {
			bad(k, "unknown key %q", k.Value)
			continue
		}
		mounts = root.Content[i+1]
	}
	if mounts == nil {
		if len(errs) == 0 {
			return nil, nil
		}
		return nil, errors.Join(errs...)
	}
	if mounts.Kind != yaml.SequenceNode {
		return nil, errors.Join(append(errs, &LineError{Line: mounts.Line, Err: errors.New("mounts: want a list")})...)
	}
	var out []Entry
	seen := map[string]int{}
	for _, m := range mounts.Content {
		if m.Kind != yaml.MappingNode {
			bad(m, "a mount is a mapping (path and one backend)")
			continue
		}
		e := Entry{Line: m.Line}
		kinds := 0
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			switch k.Value {
			case "path":
				e.Path = strings.TrimSpace(v.Value)
			case "file":
				kinds++
				if v.Kind != yaml.ScalarNode || v.Value == "" || !strings.HasPrefix(v.Value, "/") {
					bad(v, "file: want an absolute path")
				}
				e.File = v.Value
			case "control":
				kinds++
				if v.Kind != yaml.ScalarNode || (v.Value != "true" && v.Value != "false") {
					bad(v, "control: want true or false")
				}
				e.Control = v.Value == "true"
				if !e.Control {
					kinds--
				}
			case "command":
				kinds++
				e.Command = commandSpec(v, bad)
			default:
				bad(k, "unknown key %q", k.Value)
			}
		}
		switch {
		case e.Path == "":
			bad(m, "path: required")
			continue
		case kinds == 0:
			bad(m, "%s: give one backend: file, command or control", e.Path)
			continue
		case kinds > 1:
			bad(m, "%s: give only one backend", e.Path)
			continue
		}
		sp := datamodel.SchemaPath(e.Path)
		if strings.HasSuffix(sp, ".") {
			if s.Object(sp) == nil && sp != s.RootName()+"." {
				bad(m, "%s: no such object in %s", e.Path, s.Model)
				continue
			}
		} else if s.Param(sp) == nil {
			bad(m, "%s: no such parameter in %s", e.Path, s.Model)
			continue
		}
		if e.File != "" && strings.HasSuffix(e.Path, ".") {
			bad(m, "%s: a file holds one parameter, not a subtree", e.Path)
			continue
		}
		if l, dup := seen[e.Path]; dup {
			bad(m, "%s: already mounted at line %d", e.Path, l)
			continue
		}
		seen[e.Path] = e.Line
		out = append(out, e)
	}
	if len(errs) > 0 {
		sort.SliceStable(errs, func(i, j int) bool { return errs[i].(*LineError).Line < errs[j].(*LineError).Line })
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func commandSpec(v *yaml.Node, bad func(*yaml.Node, string, ...any)) *CommandSpec {
	c := &CommandSpec{Timeout: 5 * time.Second, Cache: 2 * time.Second}
	if v.Kind != yaml.MappingNode {
		bad(v, "command: want get, set, timeout and cache")
		return c
	}
	argv := func(n *yaml.Node) []string {
		switch n.Kind {
		case yaml.ScalarNode:
			return strings.Fields(n.Value)
		case yaml.SequenceNode:
			var out []string
			for _, a := range n.Content {
				if a.Kind != yaml.ScalarNode {
					bad(a, "command: arguments are strings")
					return nil
				}
				out = append(out, a.Value)
			}
			return out
		}
		bad(n, "command: want a command line or a list of arguments")
		return nil
	}
	dur := func(n *yaml.Node, name string) time.Duration {
		d, err := time.ParseDuration(n.Value)
		if err != nil || d < 0 || d > time.Hour {
			bad(n, "command.%s: %q is not a duration up to 1h (e.g. 5s)", name, n.Value)
		}
		return d
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		switch k.Value {
		case "get":
			c.Get = argv(val)
		case "set":
			c.Set = argv(val)
		case "timeout":
			c.Timeout = dur(val, "timeout")
		case "cache":
			c.Cache = dur(val, "cache")
		default:
			bad(k, "command: unknown key %q", k.Value)
		}
	}
	if len(c.Get) == 0 {
		bad(v, "command.get: required")
	} else if !strings.HasPrefix(c.Get[0], "/") {
		bad(v, "command.get: %q must be an absolute path", c.Get[0])
	}
	if len(c.Set) > 0 && !strings.HasPrefix(c.Set[0], "/") {
		bad(v, "command.set: %q must be an absolute path", c.Set[0])
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	return c
}
