// Package schemas holds the data models the agent serves, generated from
// the Broadband Forum's data-model XML by gen.go (go generate) with the
// agent's own flags from the .overlay files: Device:1.1 (TR-106 Amendment
// 1 with TR-111), InternetGatewayDevice:1.2 (TR-098 Amendment 1 with
// TR-111) and Device:2.19 (TR-181 Issue 2 Amendment 19), each whole. They
// are embedded in the binary gzipped and parsed once, on first use.
package schemas

//go:generate go run gen.go

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/datamodel/bbf"
)

//go:embed device-1.1.schema.gz
var device11Text []byte

//go:embed igd-1.2.schema.gz
var igd12Text []byte

//go:embed device-2.19.schema.gz
var device219Text []byte

// Root names.
const (
	RootDevice = "Device"
	RootIGD    = "InternetGatewayDevice"
)

// Model names.
const (
	Device11 = "Device:1.1"
	IGD12    = "InternetGatewayDevice:1.2"
	Device2  = "Device:2.19"
)

type entry struct {
	name string
	text []byte
	once sync.Once
	s    *datamodel.Schema
	err  error
}

var models = []*entry{
	{name: Device11, text: device11Text},
	{name: IGD12, text: igd12Text},
	{name: Device2, text: device219Text},
}

func (e *entry) schema() *datamodel.Schema {
	e.once.Do(func() {
		zr, err := gzip.NewReader(bytes.NewReader(e.text))
		if err != nil {
			e.err = err
			return
		}
		e.s, e.err = datamodel.ParseSchema(zr)
	})
	if e.err != nil {
		panic(fmt.Sprintf("schemas: embedded %s schema is invalid: %v", e.name, e.err))
	}
	return e.s
}

// plain is the schema's text, uncompressed.
func (e *entry) plain() ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(e.text))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// Names lists the models served, oldest first.
func Names() []string {
	out := make([]string, len(models))
	for i, e := range models {
		out[i] = e.name
	}
	return out
}

// Model returns a model by name: "Device:1.1", "InternetGatewayDevice:1.2"
// or "Device:2.19" ("Device:2" and "TR-181" name the latter too).
// Schemas are immutable and shared.
func Model(name string) (*datamodel.Schema, error) {
	switch strings.TrimSpace(name) {
	case "Device:2", "TR-181", "tr-181":
		name = Device2
	case "Device", "Device:1", "TR-106":
		name = Device11
	case "InternetGatewayDevice", "InternetGatewayDevice:1", "TR-098":
		name = IGD12
	}
	for _, e := range models {
		if e.name == name {
			return e.schema(), nil
		}
	}
	return nil, fmt.Errorf("schemas: unknown data model %q (want %s)", name, strings.Join(Names(), ", "))
}

// Device returns the Device:1.1 schema.
func Device() *datamodel.Schema { return models[0].schema() }

// IGD returns the InternetGatewayDevice:1.2 schema.
func IGD() *datamodel.Schema { return models[1].schema() }

// Device219 returns the Device:2.19 schema.
func Device219() *datamodel.Schema { return models[2].schema() }

// For returns the schema of a root name as releases before Device:2 named
// it: "Device" is Device:1.1, "InternetGatewayDevice" is
// InternetGatewayDevice:1.2.
func For(root string) (*datamodel.Schema, error) {
	switch root {
	case RootDevice, "":
		return Device(), nil
	case RootIGD:
		return IGD(), nil
	}
	return nil, fmt.Errorf("schemas: unknown root %q (want %s or %s)", root, RootDevice, RootIGD)
}

// IsDevice2 reports whether a schema is a TR-181 Device:2 model, where
// one root holds both the device and the gateway side of TR-111.
func IsDevice2(s *datamodel.Schema) bool { return strings.HasPrefix(s.Model, "Device:2") }

// Extend returns a model with the objects and parameters of vendors'
// data-model files added (BBF format, TR-106 Annex: "X_OUI_" names). A
// file's <object base=> naming an object of the model adds parameters to
// it; its imports of the standard's files are not needed. Errors name the
// file, the line and the element.
func Extend(model string, files []string) (*datamodel.Schema, error) {
	base, err := Model(model)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return base, nil
	}
	text, exts, err := texts(base, files)
	if err != nil {
		return nil, err
	}
	readers := make([]io.Reader, len(exts))
	for i, e := range exts {
		readers[i] = bytes.NewReader(e)
	}
	s, err := datamodel.ParseSchemaExtended(bytes.NewReader(text), readers...)
	if err != nil {
		return nil, fmt.Errorf("schemas: %w", err)
	}
	return s, nil
}

// texts returns a model's schema text and its vendors' files written as
// extensions of it.
func texts(base *datamodel.Schema, files []string) ([]byte, [][]byte, error) {
	var text []byte
	for _, e := range models {
		if e.s == base {
			t, err := e.plain()
			if err != nil {
				return nil, nil, err
			}
			text = t
		}
	}
	exists := func(path string) bool { return base.Object(path) != nil }
	var exts [][]byte
	for _, f := range files {
		l := &bbf.Loader{Dirs: []string{filepath.Dir(f)}, Exists: exists, Types: tr106Types}
		m, err := l.Model(f, "")
		if err != nil {
			return nil, nil, fmt.Errorf("schemas: %w", err)
		}
		var b bytes.Buffer
		if _, err := m.Write(&b, bbf.WriteOptions{Positions: true}); err != nil {
			return nil, nil, err
		}
		exts = append(exts, b.Bytes())
	}
	return text, exts, nil
}
