package soap

import (
	"fmt"
	"strings"

	"github.com/beevik/etree"
)

// ParameterFault is one SetParameterValuesFault entry.
type ParameterFault struct {
	ParameterName string
	FaultCode     int
	FaultString   string
}

// Fault is a SOAP Fault with a cwmp:Fault detail (TR-069 A.5). Code is the
// CWMP fault code (9000-9899 from a CPE, 8000-8899 from an ACS).
type Fault struct {
	// FaultCode is the SOAP faultcode: "Client" or "Server" (or
	// "MustUnderstand"). Empty encodes as the usual split for Code.
	FaultCode string
	// FaultString is the SOAP faultstring; empty encodes as "CWMP fault".
	FaultString string
	Code        int
	String      string
	// SetParameterValuesFault holds one entry per failing parameter of a
	// SetParameterValues answered with 9003.
	SetParameterValuesFault []ParameterFault

	ns string // namespace of the decoded cwmp:Fault
}

func (*Fault) Method() string { return "Fault" }

func (f *Fault) Error() string {
	return fmt.Sprintf("cwmp fault %d: %s", f.Code, f.String)
}

// DefaultFaultCode gives the SOAP faultcode TR-069 associates with a CWMP
// fault: "Client" for faults caused by the request's content (9003, 9005-9008,
// 8003, 8005), "Server" otherwise.
func DefaultFaultCode(code int) string {
	switch code {
	case 9003, 9005, 9006, 9007, 9008, 8003, 8005:
		return "Client"
	}
	return "Server"
}

func (f *Fault) encode(w *writer) {
	fc := f.FaultCode
	if fc == "" {
		fc = DefaultFaultCode(f.Code)
	}
	fs := f.FaultString
	if fs == "" {
		fs = "CWMP fault"
	}
	w.raw("<soap-env:Fault>\n")
	w.elem("faultcode", fc)
	w.elem("faultstring", fs)
	w.raw("<detail>\n<cwmp:Fault>\n")
	w.int("FaultCode", int64(f.Code))
	w.elem("FaultString", f.String)
	for _, p := range f.SetParameterValuesFault {
		w.raw("<SetParameterValuesFault>\n")
		w.elem("ParameterName", p.ParameterName)
		w.int("FaultCode", int64(p.FaultCode))
		w.elem("FaultString", p.FaultString)
		w.raw("</SetParameterValuesFault>\n")
	}
	w.raw("</cwmp:Fault>\n</detail>\n</soap-env:Fault>\n")
}

func (f *Fault) decode(e *etree.Element) error {
	d := &dec{method: "Fault", e: e}
	f.FaultCode = strings.TrimSpace(d.str("faultcode"))
	if i := strings.IndexByte(f.FaultCode, ':'); i >= 0 {
		f.FaultCode = f.FaultCode[i+1:]
	}
	f.FaultString = d.str("faultstring")
	det := child(e, "detail")
	cf := child(det, "Fault")
	if cf == nil {
		// A SOAP fault without CWMP detail still fails what it answers.
		return nil
	}
	f.ns = cf.NamespaceURI()
	cd := d.sub(cf)
	f.Code = cd.int("FaultCode")
	f.String = cd.str("FaultString")
	for _, c := range cf.ChildElements() {
		if c.Tag != "SetParameterValuesFault" {
			continue
		}
		pd := d.sub(c)
		f.SetParameterValuesFault = append(f.SetParameterValuesFault, ParameterFault{
			ParameterName: strings.TrimSpace(pd.str("ParameterName")),
			FaultCode:     pd.int("FaultCode"),
			FaultString:   pd.str("FaultString"),
		})
		if pd.err != nil {
			return pd.err
		}
	}
	return cd.err
}
