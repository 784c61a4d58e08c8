package datamodel

import (
	"errors"
	"strings"
)

// Sentinel errors. The cwmp package maps them to CWMP faults (TR-069 A.5):
// ErrInvalidName to 9005, ErrInvalidType to 9006, ErrInvalidValue to 9007,
// ErrNotWritable to 9008, ErrNotifyDenied to 9009, ErrResources to 9004,
// ErrInvalidArgument and ErrDuplicate to 9003, ErrApply to 9002. The data
// model itself knows nothing of fault numbers.
var (
	ErrInvalidName     = errors.New("invalid parameter name")
	ErrInvalidType     = errors.New("invalid parameter type")
	ErrInvalidValue    = errors.New("invalid parameter value")
	ErrNotWritable     = errors.New("parameter is not writable")
	ErrNotifyDenied    = errors.New("notification request rejected")
	ErrResources       = errors.New("resources exceeded")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrDuplicate       = errors.New("parameter given more than once")
	ErrApply           = errors.New("value could not be applied")
)

// PathError records an error and the parameter or object path it concerns.
type PathError struct {
	Op   string // "get", "set", "add", "delete", "attr", "names"
	Path string
	Err  error
}

func (e *PathError) Error() string {
	return "datamodel: " + e.Op + " " + quote(e.Path) + ": " + e.Err.Error()
}

func (e *PathError) Unwrap() error { return e.Err }

func quote(p string) string {
	if p == "" {
		return `""`
	}
	return p
}

// SetError is returned by a SetParameterValues transaction that failed
// validation: nothing was changed, and Faults holds one entry per failing
// parameter.
type SetError struct {
	Faults []*PathError
}

func (e *SetError) Error() string {
	var b strings.Builder
	b.WriteString("datamodel: set refused:")
	for i, f := range e.Faults {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(" " + quote(f.Path) + ": " + f.Err.Error())
	}
	return b.String()
}

// Unwrap exposes each fault so that errors.Is works on the whole set.
func (e *SetError) Unwrap() []error {
	errs := make([]error, len(e.Faults))
	for i, f := range e.Faults {
		errs[i] = f
	}
	return errs
}
