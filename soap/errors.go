package soap

import (
	"errors"
	"fmt"
)

// Sentinel errors of Decode. The cwmp package turns them into faults or a
// failed session; soap itself knows no fault policy.
var (
	// ErrMalformed: the bytes are not a SOAP 1.1 envelope (not XML, no
	// Envelope or Body). A session receiving this fails (TR-069 3.7.1.4).
	ErrMalformed = errors.New("soap: malformed envelope")
	// ErrTooLarge: the message exceeds MaxMessageSize.
	ErrTooLarge = errors.New("soap: message too large")
	// ErrNamespace: the body element is not in a CWMP namespace this codec
	// knows (urn:dslforum-org:cwmp-1-0 ... -1-3).
	ErrNamespace = errors.New("soap: unknown CWMP namespace")
	// ErrMustUnderstand: a header element marked mustUnderstand="1" is unknown.
	ErrMustUnderstand = errors.New("soap: header element not understood")
	// ErrEmptyBody: the Body holds no element.
	ErrEmptyBody = errors.New("soap: empty body")
)

// MethodError reports a body element that names no method this codec knows,
// or a known one in a namespace it does not know. cwmp answers it with fault
// 9000 (Method not supported).
type MethodError struct {
	Method    string
	Namespace string
	Err       error // ErrNamespace when the namespace is the problem
}

func (e *MethodError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("soap: method %s in namespace %q: %v", e.Method, e.Namespace, e.Err)
	}
	return fmt.Sprintf("soap: unknown method %s", e.Method)
}

func (e *MethodError) Unwrap() error { return e.Err }

// ArgError reports an argument of a known method that could not be decoded
// (cwmp answers fault 9003, Invalid arguments).
type ArgError struct {
	Method string
	Arg    string
	Err    error
}

func (e *ArgError) Error() string {
	return fmt.Sprintf("soap: %s argument %s: %v", e.Method, e.Arg, e.Err)
}

func (e *ArgError) Unwrap() error { return e.Err }
