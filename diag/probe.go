package diag

import (
	"context"
	"net"
	"time"
)

// Prober runs the tests themselves. Real sends probes from this host
// (Linux); Simulated computes believable results without sending anything
// (a fleet's virtual CPEs). A returned *Failure names the DiagnosticsState
// error the test ended with; any other error is Error_Internal.
type Prober interface {
	Ping(ctx context.Context, r PingRequest) (PingResult, error)
	TraceRoute(ctx context.Context, r TraceRequest) (TraceResult, error)
	Download(ctx context.Context, r TransferRequest) (TransferResult, error)
	Upload(ctx context.Context, r TransferRequest) (TransferResult, error)
	UDPEcho(ctx context.Context, r EchoRequest) (EchoResult, error)
	NSLookup(ctx context.Context, r LookupRequest) (LookupResult, error)
}

// Failure is a test that ended in one of the DiagnosticsState error values
// (TR-181 names them per object: Error_CannotResolveHostName...).
type Failure struct {
	State string
	Err   error
}

func (f *Failure) Error() string {
	if f.Err == nil {
		return f.State
	}
	return f.State + ": " + f.Err.Error()
}

func (f *Failure) Unwrap() error { return f.Err }

func fail(state string, err error) error { return &Failure{State: state, Err: err} }

// The error states the probes report; the engine writes the nearest one
// the object's enumeration has.
const (
	ErrCannotResolve     = "Error_CannotResolveHostName"
	ErrNoRoute           = "Error_NoRouteToHost"
	ErrMaxHopCount       = "Error_MaxHopCountExceeded"
	ErrInitConnection    = "Error_InitConnectionFailed"
	ErrNoResponse        = "Error_NoResponse"
	ErrTransferFailed    = "Error_TransferFailed"
	ErrIncorrectSize     = "Error_IncorrectSize"
	ErrDNSServerNotFound = "Error_DNSServerNotResolved"
	ErrInternal          = "Error_Internal"
	ErrOther             = "Error_Other"
)

// Target is what every IP test shares.
type Target struct {
	Host string
	// Version is "Any", "IPv4" or "IPv6" (ProtocolVersion).
	Version string
	// Source is the address to send from (the Interface parameter's),
	// nil: the routing table's choice.
	Source net.IP
	// Interface is the Linux name of the Interface parameter's interface,
	// "" when none was given.
	Interface string
	DSCP      int
}

// PingRequest is IPPing's input (TR-181 IPPingDiagnosticsInput).
type PingRequest struct {
	Target
	Count   int
	Timeout time.Duration // per echo request
	Size    int           // DataBlockSize: bytes of ICMP data
}

// PingResult is IPPing's output.
type PingResult struct {
	Address   net.IP // IPAddressUsed: the address the host resolved to
	Success   int
	Failure   int
	RTTs      []time.Duration // of the answered requests
	Responder []net.IP        // who answered each (a test's own check)
}

// TraceRequest is TraceRoute's input.
type TraceRequest struct {
	Target
	Tries   int
	Timeout time.Duration // per try
	Size    int
	MaxHops int
}

// Hop is one RouteHops entry.
type Hop struct {
	Address   net.IP // nil: no answer at this TTL
	ErrorCode int    // the ICMP code of an unreachable answer, 0 otherwise
	RTTs      []time.Duration
}

// TraceResult is TraceRoute's output: the hops in order, the last one the
// host itself when it was reached.
type TraceResult struct {
	Address net.IP
	Hops    []Hop
	Reached bool
}

// TransferRequest is DownloadDiagnostics' and UploadDiagnostics' input.
type TransferRequest struct {
	Target
	URL         string
	Connections int
	// Length is UploadDiagnostics' TestFileLength.
	Length int64
	// Duration, when not 0, ends the test after that time
	// (TimeBasedTestDuration); Interval and Offset make the incremental
	// results (TimeBasedTestMeasurementInterval and ...Offset).
	Duration, Interval, Offset time.Duration
}

// Connection is one connection's figures (PerConnectionResult).
type Connection struct {
	ROM, BOM, EOM        time.Time
	TCPOpenRequest       time.Time
	TCPOpenResponse      time.Time
	TestBytes            int64 // received (download) or sent (upload), headers included
	TotalRecv, TotalSent int64 // IP-layer bytes on the interface between BOM and EOM
}

// Increment is one IncrementalResult entry.
type Increment struct {
	Start, End           time.Time
	TestBytes            int64
	TotalRecv, TotalSent int64
}

// TransferResult is a transfer test's output.
type TransferResult struct {
	Address     net.IP
	Connections []Connection
	Increments  []Increment
	// TotalRecv and TotalSent are the interface's counters between the
	// earliest BOM and the latest EOM; 0 when no interface was given (TR-181:
	// "If Interface is empty, this parameter cannot be determined and
	// SHOULD be 0").
	TotalRecv, TotalSent int64
	// The same while every connection was transferring at once (the
	// *UnderFullLoading results).
	FullTestBytes, FullRecv, FullSent int64
}

// EchoRequest is UDPEchoDiagnostics' input (TR-143 UDP Echo Plus client).
type EchoRequest struct {
	Target
	Port     int
	Count    int
	Timeout  time.Duration
	Size     int
	Interval time.Duration // InterTransmissionTime
	// Individual asks for each packet's figures (at most MaxResults).
	Individual bool
	MaxResults int
}

// EchoPacket is one IndividualPacketResult entry.
type EchoPacket struct {
	Success           bool
	Sent, Received    time.Time
	GenSN, RespSN     uint32
	RespRecvTimestamp uint32 // the server's microseconds
	RespReplyTime     uint32
	RespFailureCount  uint32
}

// EchoResult is UDPEchoDiagnostics' output.
type EchoResult struct {
	Address net.IP
	Success int
	Failure int
	RTTs    []time.Duration
	Packets []EchoPacket
}

// LookupRequest is NSLookupDiagnostics' input.
type LookupRequest struct {
	Interface string
	Source    net.IP
	HostName  string
	Server    string // "" the system's first resolver
	Timeout   time.Duration
	Count     int
}

// Lookup is one Result entry.
type Lookup struct {
	Status        string // Success, Error_DNSServerNotAvailable, Error_HostNameNotResolved, Error_Timeout, Error_Other
	Authoritative bool
	Answered      bool // AnswerType is None without an answer
	HostName      string
	Addresses     []net.IP
	Server        net.IP
	RTT           time.Duration
}

// LookupResult is NSLookupDiagnostics' output.
type LookupResult struct {
	Results []Lookup
}
