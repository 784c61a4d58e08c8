// Package e2e holds the end-to-end suites that run the project's binaries
// against real peers: GenieACS (the ACS most users run, built by
// ../shared/genieacs), with each step checked at both ends, GenieACS's NBI
// and debug log on one side and the agent's control socket on the other.
//
// The suites need the GenieACS lab (and root for the network labs); they
// skip with a message saying how to build it, and fail instead under
// CI=true. go test -short skips them.
package e2e
