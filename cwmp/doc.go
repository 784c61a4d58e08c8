// Package cwmp is the CPE side of the CPE WAN Management Protocol (TR-069,
// CWMP 1.0 to 1.4): sessions with the ACS over HTTP(S), every CPE RPC, the
// event queue with its delivery rules, retry back-off, periodic and
// scheduled Informs, file transfers, and HTTP Connection Requests.
//
// An Agent owns its sessions on one goroutine (Run); other goroutines only
// post events (Trigger, ConnectionRequest). The parameter tree is reached
// through the DataModel interface and changed parameters through Notifier,
// so the package depends on no concrete component. RPC handlers live in a
// map keyed by method name, and CWMP fault numbers are chosen only in
// fault.go.
package cwmp
