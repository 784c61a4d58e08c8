// Package tr111 implements DSL Forum TR-111, "Applying TR-069 to Remote
// Management of Home Networking Devices".
//
// Part 2 (Connection Request via NAT Gateway): the STUN messages of RFC 3489
// as TR-111 uses them (CONNECTION-REQUEST-BINDING, BINDING-CHANGE,
// RESPONSE-ADDRESS, the RFC 3489 MESSAGE-INTEGRITY), the UDP Connection
// Request format and its validation (sections 2.2.1.4 and 2.2.2.3), the CPE
// side (Client: binding discovery, keep-alive and binding-timeout discovery
// on one UDP socket shared with UDP Connection Requests, section 2.2.1) and
// the ACS side (Server: a STUN server that records bindings and sends UDP
// Connection Requests from its own address, section 2.2.2).
//
// The package reaches the parameter tree only through the small Store
// interface and never imports cwmp.
package tr111
