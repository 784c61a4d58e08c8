// Package cwmp is the CPE side of the CPE WAN Management Protocol (TR-069,
// CWMP 1.0 to 1.4): sessions with the ACS over HTTP(S), every CPE RPC, the
// event queue with its delivery rules, retry back-off, periodic and
// scheduled Informs, file transfers, and HTTP Connection Requests.
//
// An Agent's state (events, transfers, schedule, retry) has one owner, the
// goroutine that runs Agent.Run: sessions and RPC handlers run on it and
// use the state directly. Everything else posts messages to it through a
// mailbox (tasks.go): Trigger and ConnectionRequest, the tree hooks, the
// transfer runner's outcomes. The constructor takes everything the agent
// works with (tree, notifier, URL refresher); nothing is attached later.
//
// The parameter tree is reached through the DataModel interface and
// changed parameters through Notifier, so the package depends on no
// concrete component. RPC handlers are registered by their message type
// (handlers.go), and CWMP fault numbers are named only in fault.go.
//
// Files: agent.go (the agent and its loop), session.go (one session),
// handlers.go and transfer.go (the RPCs), events.go (event rules),
// connreq.go and authguard.go (HTTP Connection Requests), transport.go
// and sessionconn.go (HTTP), fault.go (fault codes).
package cwmp
