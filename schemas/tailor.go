package schemas

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
)

// Required are the parameters a CPE keeps in a tailored model whatever the
// template says: what the agent itself reads and writes (the ACS and
// Connection Request settings, the periodic Inform, the identity an Inform
// carries). Paths are below the root, which is prepended.
var Required = []string{
	"ManagementServer.URL", "ManagementServer.Username", "ManagementServer.Password",
	"ManagementServer.PeriodicInformEnable", "ManagementServer.PeriodicInformInterval", "ManagementServer.PeriodicInformTime",
	"ManagementServer.ParameterKey", "ManagementServer.ConnectionRequestURL", "ManagementServer.ConnectionRequestUsername",
	"ManagementServer.ConnectionRequestPassword", "ManagementServer.UDPConnectionRequestAddress",
	"DeviceInfo.Manufacturer", "DeviceInfo.ManufacturerOUI", "DeviceInfo.ProductClass", "DeviceInfo.SerialNumber",
	"DeviceInfo.HardwareVersion", "DeviceInfo.SoftwareVersion", "DeviceInfo.ProvisioningCode",
}

// Tailor returns the model (with its vendors' files) cut down to the
// objects and parameters keep names (schema paths: "Device.IP.Interface.{i}.",
// "Device.IP.Interface.{i}.Name"), with what extra defines added (schema
// text extending the model: a template's own vendor parameters). A
// fleet cloned from a real device serves exactly that device's tree; the
// model's definitions win for what both name. Kept besides: the
// ancestors of what is kept, the NumberOfEntries of kept tables, the
// limit= parameters, the forced Inform parameters and Required.
func Tailor(model string, files []string, keep map[string]bool, extra []byte) (*datamodel.Schema, error) {
	base, err := Model(model)
	if err != nil {
		return nil, err
	}
	text, exts, err := texts(base, files)
	if err != nil {
		return nil, err
	}
	root := base.RootName() + "."
	want := map[string]bool{}
	for p := range keep {
		want[p] = true
	}
	for _, r := range Required {
		want[root+r] = true
	}
	parts := append([][]byte{text}, exts...)
	// The forced Inform parameters of the objects served; then what the
	// kept definitions refer to (the NumberOfEntries of a table, the
	// limit= of a parameter); then every ancestor.
	objs := ancestors(want)
	for _, part := range parts {
		eachLine(part, func(obj, name string, fields []string) {
			if name == "" || !objs[obj] {
				return
			}
			for _, f := range fields[3:] {
				if f == "forced" {
					want[obj+name] = true
				}
			}
		})
	}
	for round := 0; round < 3; round++ {
		for _, part := range parts {
			eachLine(part, func(obj, name string, fields []string) {
				if name == "" { // an object line
					if !objs[obj] {
						return
					}
					for _, f := range fields[2:] {
						if c, ok := strings.CutPrefix(f, "count="); ok {
							want[parentOf(obj)+c] = true
						}
					}
					return
				}
				if !want[obj+name] {
					return
				}
				for _, f := range fields[3:] {
					if l, ok := strings.CutPrefix(f, "limit="); ok {
						want[l] = true
					}
				}
			})
		}
		objs = ancestors(want)
	}
	readers := make([]io.Reader, 0, len(parts))
	for _, part := range parts {
		var b bytes.Buffer
		keepObj := false
		sc := bufio.NewScanner(bytes.NewReader(part))
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		obj := ""
		for sc.Scan() {
			line := sc.Text()
			t := strings.TrimSpace(line)
			switch {
			case t == "" || t[0] == '#':
				continue
			case strings.HasPrefix(t, "model "):
			case strings.HasPrefix(t, "object "):
				obj = strings.Fields(t)[1]
				keepObj = objs[obj]
				if !keepObj {
					continue
				}
			default:
				name := strings.Fields(t)[0]
				if !keepObj || !want[obj+name] {
					continue
				}
			}
			b.WriteString(line)
			b.WriteByte('\n')
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
		readers = append(readers, &b)
	}
	if len(extra) > 0 {
		readers = append(readers, bytes.NewReader(extra))
	}
	s, err := datamodel.ParseSchemaExtended(readers[0], readers[1:]...)
	if err != nil {
		return nil, fmt.Errorf("schemas: tailoring %s: %w", model, err)
	}
	return s, nil
}

// ancestors is the set of objects holding what is wanted, with theirs.
func ancestors(want map[string]bool) map[string]bool {
	objs := map[string]bool{}
	for p := range want {
		o := p
		if !strings.HasSuffix(o, ".") {
			o = o[:strings.LastIndexByte(o, '.')+1]
		}
		for ; o != "" && !objs[o]; o = parentOf(o) {
			objs[o] = true
		}
	}
	return objs
}

// eachLine calls fn for each object line (name "") and parameter line of
// a schema text, with the object it belongs to.
func eachLine(text []byte, fn func(obj, name string, fields []string)) {
	obj := ""
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		if t == "" || t[0] == '#' || strings.HasPrefix(t, "model ") {
			continue
		}
		f := strings.Fields(t)
		if f[0] == "object" && len(f) >= 2 {
			obj = f[1]
			fn(obj, "", f)
			continue
		}
		if len(f) >= 3 {
			fn(obj, f[0], f)
		}
	}
}

// parentOf is the path of an object's parent ("" for the root).
func parentOf(path string) string {
	p := strings.TrimSuffix(path, ".")
	p = strings.TrimSuffix(p, ".{i}")
	i := strings.LastIndexByte(p, '.')
	if i < 0 {
		return ""
	}
	return p[:i+1]
}
