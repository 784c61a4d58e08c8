package soap

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/beevik/etree"
)

// Namespaces of the SOAP 1.1 envelope and of what CWMP messages use.
const (
	NSEnvelope = "http://schemas.xmlsoap.org/soap/envelope/"
	NSEncoding = "http://schemas.xmlsoap.org/soap/encoding/"
	NSXSD      = "http://www.w3.org/2001/XMLSchema"
	NSXSI      = "http://www.w3.org/2001/XMLSchema-instance"
)

// CWMP namespaces. CWMP 1.2, 1.3 and 1.4 share cwmp-1-2 (the cwmp-1-3 and
// cwmp-1-4 XSDs keep that targetNamespace); cwmp-1-3 is not standard but some
// ACSs send it, and GenieACS reads it as 1.4, so it is accepted and echoed.
const (
	NS10 = "urn:dslforum-org:cwmp-1-0"
	NS11 = "urn:dslforum-org:cwmp-1-1"
	NS12 = "urn:dslforum-org:cwmp-1-2"
	NS13 = "urn:dslforum-org:cwmp-1-3"
)

// Version is a CWMP protocol version (TR-069 Amendment 1 to 6).
type Version uint8

const (
	V10 Version = iota + 10
	V11
	V12
	V13
	V14
)

func (v Version) String() string {
	if v < V10 || v > V14 {
		return "Version(" + strconv.Itoa(int(v)) + ")"
	}
	return "1." + strconv.Itoa(int(v-V10))
}

// Namespace is the SOAP namespace a version's messages use.
func (v Version) Namespace() string {
	switch v {
	case V10:
		return NS10
	case V11:
		return NS11
	}
	return NS12
}

// ParseVersion reads "1.0" ... "1.4".
func ParseVersion(s string) (Version, error) {
	switch strings.TrimSpace(s) {
	case "1.0":
		return V10, nil
	case "1.1":
		return V11, nil
	case "1.2":
		return V12, nil
	case "1.3":
		return V13, nil
	case "1.4":
		return V14, nil
	}
	return 0, fmt.Errorf("soap: unknown CWMP version %q", s)
}

// VersionOf maps a namespace to the lowest version that uses it; ok is false
// for a namespace that is not CWMP.
func VersionOf(ns string) (v Version, ok bool) {
	switch ns {
	case NS10:
		return V10, true
	case NS11:
		return V11, true
	case NS12:
		return V12, true
	case NS13:
		return V14, true
	}
	return 0, false
}

// SupportedVersions is what the agent announces in SupportedCWMPVersions.
const SupportedVersions = "1.0,1.1,1.2,1.3,1.4"

// MaxMessageSize caps what Decode reads. A CPE never needs more: the largest
// legitimate ACS request is a SetParameterValues or GetParameterValues with a
// few thousand names.
const MaxMessageSize = 8 << 20

// Envelope is one SOAP envelope: the CWMP header elements and one message.
type Envelope struct {
	// NS is the CWMP namespace of the message (NS10 ... NS13). Encode uses it
	// for the cwmp prefix; "" means NS10.
	NS string
	// ID is cwmp:ID; "" means the element is absent.
	ID string
	// HoldRequests (ACS to CPE): the CPE must not send requests.
	HoldRequests bool
	// NoMoreRequests (CWMP 1.0, deprecated): read, never written.
	NoMoreRequests bool
	// SessionTimeout (CPE to ACS, 1.3+): seconds; 0 means absent.
	SessionTimeout uint32
	// SupportedCWMPVersions (CPE to ACS in Inform, 1.4): e.g. "1.0,1.1,1.2,1.3,1.4".
	SupportedCWMPVersions string
	// UseCWMPVersion (ACS to CPE in InformResponse, 1.4): e.g. "1.4".
	UseCWMPVersion string
	// Body is the message; nil never decodes and encodes an empty Body.
	Body Message
}

// Message is a CWMP RPC request, response, or a Fault.
type Message interface {
	// Method is the element name: "Inform", "GetParameterValuesResponse", "Fault".
	Method() string
	encode(w *writer)
	decode(e *etree.Element) error
}

// Decode reads one envelope from r (at most MaxMessageSize bytes).
func Decode(r io.Reader) (*Envelope, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxMessageSize+1))
	if err != nil {
		return nil, fmt.Errorf("soap: read: %w", err)
	}
	return DecodeBytes(data)
}

// DecodeBytes decodes one envelope. When the envelope is understood but its
// message is not (unknown method, bad arguments, unknown mandatory header),
// the returned *Envelope is non-nil and carries the ID and namespace to
// answer with, alongside the error.
func DecodeBytes(data []byte) (*Envelope, error) {
	if len(data) > MaxMessageSize {
		return nil, ErrTooLarge
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: no content", ErrMalformed)
	}
	if env := fastDecode(data); env != nil {
		return env, nil
	}
	if root := fastTree(data); root != nil {
		return decodeRoot(root)
	}
	return decodeDOM(data)
}

// decodeDOM is the general decoder, through an etree DOM.
func decodeDOM(data []byte) (*Envelope, error) {
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	doc.ReadSettings.CharsetReader = charsetReader
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return decodeRoot(doc.Root())
}

// decodeRoot reads an envelope from its DOM.
func decodeRoot(root *etree.Element) (*Envelope, error) {
	if root == nil || root.Tag != "Envelope" || root.NamespaceURI() != NSEnvelope {
		return nil, fmt.Errorf("%w: root is not a SOAP 1.1 Envelope", ErrMalformed)
	}
	env := &Envelope{}
	var body *etree.Element
	var headerErr error
	for _, c := range root.ChildElements() {
		if c.NamespaceURI() != NSEnvelope {
			continue
		}
		switch c.Tag {
		case "Header":
			headerErr = env.decodeHeader(c)
		case "Body":
			body = c
		}
	}
	if body == nil {
		return nil, fmt.Errorf("%w: no Body", ErrMalformed)
	}
	kids := body.ChildElements()
	if len(kids) == 0 {
		return env, ErrEmptyBody
	}
	m := kids[0]
	ns := m.NamespaceURI()
	if ns == NSEnvelope && m.Tag == "Fault" {
		f := &Fault{}
		if err := f.decode(m); err != nil {
			return env, err
		}
		if env.NS == "" {
			env.NS = f.ns
		}
		env.Body = f
		return env, headerErr
	}
	if _, ok := VersionOf(ns); !ok {
		return env, &MethodError{Method: m.Tag, Namespace: ns, Err: ErrNamespace}
	}
	env.NS = ns
	if headerErr != nil {
		return env, headerErr
	}
	newMsg := registry[m.Tag]
	if newMsg == nil {
		return env, &MethodError{Method: m.Tag, Namespace: ns}
	}
	msg := newMsg()
	if err := msg.decode(m); err != nil {
		return env, err
	}
	env.Body = msg
	return env, nil
}

// charsetReader lets messages declared as ISO-8859-1 or US-ASCII through;
// every other encoding than UTF-8 is refused.
func charsetReader(label string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "iso-8859-1", "iso8859-1", "latin1", "l1":
		b, err := io.ReadAll(input)
		if err != nil {
			return nil, err
		}
		out := make([]rune, len(b))
		for i, c := range b {
			out[i] = rune(c)
		}
		return strings.NewReader(string(out)), nil
	case "us-ascii", "ascii":
		return input, nil
	}
	return nil, fmt.Errorf("unsupported encoding %q", label)
}

func (env *Envelope) decodeHeader(h *etree.Element) error {
	var err error
	for _, c := range h.ChildElements() {
		ns := c.NamespaceURI()
		if _, ok := VersionOf(ns); ok {
			if env.NS == "" {
				env.NS = ns
			}
			switch c.Tag {
			case "ID":
				env.ID = c.Text()
				continue
			case "HoldRequests":
				env.HoldRequests = parseBool(c.Text())
				continue
			case "NoMoreRequests":
				env.NoMoreRequests = parseBool(c.Text())
				continue
			case "SessionTimeout", "sessionTimeout":
				n, _ := strconv.ParseUint(strings.TrimSpace(c.Text()), 10, 32)
				env.SessionTimeout = uint32(n)
				continue
			case "SupportedCWMPVersions":
				env.SupportedCWMPVersions = strings.TrimSpace(c.Text())
				continue
			case "UseCWMPVersion":
				env.UseCWMPVersion = strings.TrimSpace(c.Text())
				continue
			}
		}
		if mu := attrNS(c, NSEnvelope, "mustUnderstand"); mu == "1" || mu == "true" {
			err = fmt.Errorf("%w: {%s}%s", ErrMustUnderstand, ns, c.Tag)
		}
	}
	return err
}

// attrNS returns the value of the attribute {ns}key of e.
func attrNS(e *etree.Element, ns, key string) string {
	for i := range e.Attr {
		a := &e.Attr[i]
		if a.Key == key && a.NamespaceURI() == ns {
			return a.Value
		}
	}
	return ""
}

// sizer is implemented by messages that can be large, so that Encode
// allocates once instead of growing the buffer many times.
type sizer interface{ sizeHint() int }

// Encode returns the envelope as bytes.
func (env *Envelope) Encode() []byte {
	n := 1024
	if s, ok := env.Body.(sizer); ok {
		n += s.sizeHint()
	}
	return env.AppendTo(make([]byte, 0, n))
}

// WriteTo writes the envelope to w.
func (env *Envelope) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(env.Encode())
	return int64(n), err
}

const envelopeOpen = `<soap-env:Envelope xmlns:soap-env="` + NSEnvelope + `" xmlns:soap-enc="` + NSEncoding +
	`" xmlns:xsd="` + NSXSD + `" xmlns:xsi="` + NSXSI + `" xmlns:cwmp="`

// AppendTo appends the encoded envelope to b. Prefixes are fixed
// (soap-env, soap-enc, xsd, xsi, cwmp); the message's children are
// unqualified as the CWMP XSDs require (elementFormDefault="unqualified").
func (env *Envelope) AppendTo(b []byte) []byte {
	w := writer{b: b}
	ns := env.NS
	if ns == "" {
		ns = NS10
	}
	w.raw(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	w.raw(envelopeOpen)
	w.raw(ns)
	w.raw("\">\n<soap-env:Header>\n")
	if env.ID != "" {
		w.raw(`<cwmp:ID soap-env:mustUnderstand="1">`)
		w.text(env.ID)
		w.raw("</cwmp:ID>\n")
	}
	if env.HoldRequests {
		w.raw(`<cwmp:HoldRequests soap-env:mustUnderstand="1">true</cwmp:HoldRequests>` + "\n")
	}
	if env.SessionTimeout > 0 {
		w.raw(`<cwmp:SessionTimeout soap-env:mustUnderstand="0">`)
		w.raw(strconv.FormatUint(uint64(env.SessionTimeout), 10))
		w.raw("</cwmp:SessionTimeout>\n")
	}
	if env.SupportedCWMPVersions != "" {
		w.raw(`<cwmp:SupportedCWMPVersions soap-env:mustUnderstand="0">`)
		w.text(env.SupportedCWMPVersions)
		w.raw("</cwmp:SupportedCWMPVersions>\n")
	}
	if env.UseCWMPVersion != "" {
		w.raw(`<cwmp:UseCWMPVersion soap-env:mustUnderstand="1">`)
		w.text(env.UseCWMPVersion)
		w.raw("</cwmp:UseCWMPVersion>\n")
	}
	w.raw("</soap-env:Header>\n<soap-env:Body>\n")
	if env.Body != nil {
		if f, ok := env.Body.(*Fault); ok {
			f.encode(&w)
		} else {
			name := env.Body.Method()
			w.raw("<cwmp:" + name + ">")
			mark := len(w.b)
			w.raw("\n")
			env.Body.encode(&w)
			if len(w.b) == mark+1 {
				// An argument-less message must be empty: the XSD types
				// them as empty content, which whitespace would break.
				w.b = w.b[:mark]
			}
			w.raw("</cwmp:" + name + ">\n")
		}
	}
	w.raw("</soap-env:Body>\n</soap-env:Envelope>\n")
	return w.b
}
