package cwmp

import (
	"errors"
	"fmt"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// CPE fault codes (TR-069 A.5.1, cwmp-1-x.xsd FaultCodeType). This file is
// the only place that knows them.
var faultStrings = map[int]string{
	9000: "Method not supported",
	9001: "Request denied",
	9002: "Internal error",
	9003: "Invalid arguments",
	9004: "Resources exceeded",
	9005: "Invalid parameter name",
	9006: "Invalid parameter type",
	9007: "Invalid parameter value",
	9008: "Attempt to set a non-writable parameter",
	9009: "Notification request rejected",
	9010: "Download failure",
	9011: "Upload failure",
	9012: "File transfer server authentication failure",
	9013: "Unsupported protocol for file transfer",
	9014: "Download failure: unable to join multicast group",
	9015: "Download failure: unable to contact file server",
	9016: "Download failure: unable to access file",
	9017: "Download failure: unable to complete download",
	9018: "Download failure: file corrupted",
	9019: "Download failure: file authentication failure",
	9020: "Download failure: unable to complete download within specified time windows",
	9021: "Cancelation of file transfer not permitted in current transfer state",
	9022: "Invalid UUID Format",
	9023: "Unknown Execution Environment",
	9024: "Disabled Execution Environment",
	9025: "Deployment Unit to Execution Environment Mismatch",
	9026: "Duplicate Deployment Unit",
	9027: "System Resources Exceeded",
	9028: "Unknown Deployment Unit",
	9029: "Invalid Deployment Unit State",
	9030: "Invalid Deployment Unit Update - Downgrade not permitted",
	9031: "Invalid Deployment Unit Update - Version not specified",
	9032: "Invalid Deployment Unit Update - Version already exists",
}

// The CPE fault codes by name; the rest of the package uses these.
const (
	faultMethodNotSupported  = 9000
	faultRequestDenied       = 9001
	faultInternal            = 9002
	faultInvalidArguments    = 9003
	faultResources           = 9004
	faultInvalidName         = 9005
	faultInvalidType         = 9006
	faultInvalidValue        = 9007
	faultNotWritable         = 9008
	faultNotifyRejected      = 9009
	faultDownload            = 9010
	faultUpload              = 9011
	faultTransferAuth        = 9012
	faultUnsupportedProtocol = 9013
	faultMulticast           = 9014
	faultServerUnreachable   = 9015
	faultFileAccess          = 9016
	faultIncomplete          = 9017
	faultCorrupted           = 9018
	faultFileAuth            = 9019
	faultWindow              = 9020
	faultCancelNotPermitted  = 9021
)

// faultError is a fault the agent decides itself.
type faultError struct {
	code int
	msg  string
}

func (e *faultError) Error() string { return fmt.Sprintf("cwmp fault %d: %s", e.code, e.msg) }

func faultf(code int, format string, args ...any) error {
	return &faultError{code: code, msg: fmt.Sprintf(format, args...)}
}

// opFault tells faultFor which RPC failed, where the same data-model error
// maps to different codes.
type opFault struct {
	op  string
	err error
}

func (e *opFault) Error() string { return e.err.Error() }
func (e *opFault) Unwrap() error { return e.err }

// codeOf maps a data-model error to a fault code.
func codeOf(err error, op string) int {
	switch {
	case errors.Is(err, datamodel.ErrInvalidName):
		return 9005
	case errors.Is(err, datamodel.ErrInvalidType):
		return 9006
	case errors.Is(err, datamodel.ErrInvalidValue):
		return 9007
	case errors.Is(err, datamodel.ErrNotWritable):
		if op == "add" || op == "delete" {
			return 9005 // not an object the ACS may create or delete
		}
		return 9008
	case errors.Is(err, datamodel.ErrNotifyDenied):
		return 9009
	case errors.Is(err, datamodel.ErrResources):
		return 9004
	case errors.Is(err, datamodel.ErrInvalidArgument), errors.Is(err, datamodel.ErrDuplicate):
		return 9003
	}
	return 9002
}

// faultFor turns any handler or decoding error into the fault to send.
func faultFor(err error, v soap.Version) *soap.Fault {
	var fe *faultError
	var se *datamodel.SetError
	var me *soap.MethodError
	var ae *soap.ArgError
	var pe *datamodel.PathError
	switch {
	case errors.As(err, &fe):
		return newFault(fe.code, fe.msg)
	case errors.As(err, &se):
		// 9003 when names or values were refused; 9002 when every fault
		// is a value that could not be applied (a backend failed).
		top := 9002
		var pfs []soap.ParameterFault
		for _, pf := range se.Faults {
			c := codeOf(pf, "set")
			if c != 9002 {
				top = 9003
			}
			pfs = append(pfs, soap.ParameterFault{ParameterName: pf.Path, FaultCode: c, FaultString: faultStrings[c]})
		}
		f := newFault(top, "")
		f.SetParameterValuesFault = pfs
		return f
	case errors.As(err, &me):
		return newFault(9000, "")
	case errors.As(err, &ae):
		return newFault(9003, ae.Error())
	case errors.Is(err, soap.ErrMustUnderstand):
		f := newFault(9003, err.Error())
		f.FaultCode = "MustUnderstand"
		return f
	case errors.As(err, &pe):
		c := codeOf(pe, pe.Op)
		return newFault(c, "")
	}
	return newFault(9002, err.Error())
}

func newFault(code int, detail string) *soap.Fault {
	s := faultStrings[code]
	if detail != "" && detail != s {
		s += ": " + detail
	}
	return &soap.Fault{Code: code, String: s}
}

// faultStructFor builds a TransferComplete FaultStruct for a CWMP version:
// the detailed download codes 9014-9019 exist from CWMP 1.1 on, 9020 from
// 1.2; before that they fall back to 9010. Code 0 is success.
func faultStructFor(v soap.Version, code int, detail string) soap.FaultStruct {
	if v < soap.V11 && code >= 9014 && code <= 9019 || v < soap.V12 && code == 9020 {
		code = 9010
	}
	if code == 0 {
		return soap.FaultStruct{}
	}
	s := faultStrings[code]
	if detail != "" {
		s += ": " + detail
	}
	if len(s) > 256 {
		s = s[:256]
	}
	return soap.FaultStruct{FaultCode: code, FaultString: s}
}

// errNotSaved is the 9002 of an RPC whose effect could not be stored.
func errNotSaved(err error) error {
	return faultf(faultInternal, "the agent's state cannot be saved: %v", err)
}

// Faults of deployment-unit operations (TR-069 A.5.1, CWMP 1.2), which the
// software modules report in DUStateChangeComplete's results.
const (
	FaultRequestDenied   = faultRequestDenied
	FaultInvalidArgs     = faultInvalidArguments
	FaultInvalidUUID     = 9022
	FaultUnknownExecEnv  = 9023
	FaultDisabledExecEnv = 9024
	FaultExecEnvMismatch = 9025
	FaultDuplicateDU     = 9026
	FaultResourcesDU     = 9027
	FaultUnknownDU       = 9028
	FaultInvalidDUState  = 9029
	FaultDowngrade       = 9030
	FaultNoVersion       = 9031
	FaultVersionExists   = 9032
)

// FaultText is the standard's text for a fault code.
func FaultText(code int) string { return faultStrings[code] }

// Fault makes an error that carries a fault code (FaultOf reads it back).
func Fault(code int, format string, args ...any) error { return faultf(code, format, args...) }
