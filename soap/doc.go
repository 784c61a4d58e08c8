// Package soap encodes and decodes the CWMP SOAP messages of TR-069 (CWMP
// 1.0 to 1.4) as pure functions over bytes: no HTTP, no sessions, no data
// model.
//
// Decoding uses github.com/beevik/etree and matches elements by namespace
// URI and local name, never by prefix. It is lenient where real ACSs are
// sloppy (missing arrayType, booleans as 0/1, odd whitespace, a missing
// Value) and strict where a wrong guess would do harm: an unknown method
// gives a *MethodError (fault 9000), a bad argument an *ArgError (9003), and
// anything that is not a SOAP envelope ErrMalformed. Encoding writes the
// envelope by hand with fixed prefixes and unqualified children, as the
// BBF cwmp-1-x.xsd files require (elementFormDefault="unqualified").
package soap
