// Package datamodel holds a CWMP parameter tree: the Device:1.1 and
// InternetGatewayDevice:1.2 data models of TR-106 Amendment 1 and TR-098
// Amendment 1 with the TR-111 extensions, or any other model written in the
// schema format of schemas/README.md.
//
// A Schema is an immutable set of object and parameter definitions with the
// TR-106 types and facets (TR-106 Amendment 1 section 3.2). A Tree is one
// device's parameters built from a schema: objects, tables with instance
// numbers that are never reused, stored parameters that persist in a state
// directory, and computed parameters read through a Getter. Writes go
// through an all-or-nothing transaction (TR-069 A.3.2.1); every committed
// change is reported to watchers with its Origin, so that the notify engine
// can tell the device's own changes from the ACS's.
//
// The package knows nothing of SOAP, sockets or CWMP fault numbers: errors
// are the sentinels of errors.go, which the cwmp package maps to faults.
package datamodel
