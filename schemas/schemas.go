// Package schemas holds the project's own definitions of the data models the
// agent serves: Device:1.1 (TR-106 Amendment 1 + TR-111) and
// InternetGatewayDevice:1.2 (TR-098 Amendment 1 + TR-111), in the text
// format described in README.md, embedded in the binary and parsed once.
//
// schemas_test.go holds every definition against the Broadband Forum's
// data-model XML (names, types, access) when ../shared/spec/bbf is present.
package schemas

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
)

//go:embed device-1.1.schema
var deviceText []byte

//go:embed igd-1.2.schema
var igdText []byte

// Root names accepted by For.
const (
	RootDevice = "Device"
	RootIGD    = "InternetGatewayDevice"
)

var (
	deviceOnce, igdOnce     sync.Once
	deviceSchema, igdSchema *datamodel.Schema
	deviceErr, igdErr       error
)

// Device returns the Device:1.1 schema. Schemas are immutable and shared.
func Device() *datamodel.Schema {
	deviceOnce.Do(func() { deviceSchema, deviceErr = datamodel.ParseSchema(bytes.NewReader(deviceText)) })
	if deviceErr != nil {
		panic(fmt.Sprintf("schemas: embedded Device:1.1 schema is invalid: %v", deviceErr))
	}
	return deviceSchema
}

// IGD returns the InternetGatewayDevice:1.2 schema.
func IGD() *datamodel.Schema {
	igdOnce.Do(func() { igdSchema, igdErr = datamodel.ParseSchema(bytes.NewReader(igdText)) })
	if igdErr != nil {
		panic(fmt.Sprintf("schemas: embedded InternetGatewayDevice:1.2 schema is invalid: %v", igdErr))
	}
	return igdSchema
}

// For returns the schema of a root name ("Device" or "InternetGatewayDevice").
func For(root string) (*datamodel.Schema, error) {
	switch root {
	case RootDevice, "":
		return Device(), nil
	case RootIGD:
		return IGD(), nil
	}
	return nil, fmt.Errorf("schemas: unknown root %q (want %s or %s)", root, RootDevice, RootIGD)
}
