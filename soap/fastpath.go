package soap

import (
	"bytes"
	"strconv"
	"strings"
	"sync"
)

// The fast path decodes the requests that carry long name lists
// (GetParameterValues, GetParameterAttributes) without building an etree
// DOM: for 10,000 names etree takes about 15 ms of the 25 ms budget of
// TR-069 GetParameterValues handling, this scanner about 1 ms
// (BenchmarkDecodeGPV10k, BenchmarkDecodeGPV10kEtree). It accepts only a
// plain subset of XML 1.0 (ASCII, no DOCTYPE, CDATA, comments or CR inside
// the envelope, the five predefined entities and character references) and
// gives up on anything else, in which case DecodeBytes uses etree. When it
// succeeds its result equals etree's; FuzzFastPathMatchesEtree holds it to
// that.

type fastTok struct {
	kind  byte // 's' start, 'e' end, 't' text
	name  string
	attrs []fastAttr
	empty bool   // <x/>
	text  string // decoded text for 't'
}

type fastAttr struct{ name, value string }

type fastScanner struct {
	b   []byte
	i   int
	bad bool
}

func isNameStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':'
}

func isNameChar(c byte) bool {
	return isNameStart(c) || c >= '0' && c <= '9' || c == '-' || c == '.'
}

func (s *fastScanner) name() string {
	start := s.i
	if s.i >= len(s.b) || !isNameStart(s.b[s.i]) {
		s.bad = true
		return ""
	}
	colons := 0
	for s.i < len(s.b) && isNameChar(s.b[s.i]) {
		if s.b[s.i] == ':' {
			colons++
		}
		s.i++
	}
	n := s.b[start:s.i]
	// One colon at most, between a prefix and a local name.
	if colons > 1 || colons == 1 && (n[0] == ':' || n[len(n)-1] == ':') {
		s.bad = true
		return ""
	}
	return intern(n)
}

// common holds the names and attribute values that recur in every
// envelope (element names, prefixes, namespaces, xsi:type values), so
// that the scanner does not allocate a string for each occurrence.
var common = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{
		"soap-env:Envelope", "soap-env:Header", "soap-env:Body", "soap-env:Fault", "soap:Envelope", "soap:Header", "soap:Body",
		"SOAP-ENV:Envelope", "SOAP-ENV:Header", "SOAP-ENV:Body", "SOAP-ENV:Fault", "cwmp:ID", "cwmp:HoldRequests",
		"cwmp:Inform", "cwmp:InformResponse", "cwmp:GetParameterValues", "cwmp:GetParameterValuesResponse",
		"cwmp:SetParameterValues", "cwmp:SetParameterValuesResponse", "cwmp:SessionTimeout", "cwmp:SupportedCWMPVersions",
		"cwmp:UseCWMPVersion", "cwmp:Fault", "DeviceId", "Manufacturer", "OUI", "ProductClass", "SerialNumber", "Event",
		"EventStruct", "EventCode", "CommandKey", "MaxEnvelopes", "CurrentTime", "RetryCount", "ParameterList",
		"ParameterValueStruct", "Name", "Value", "ParameterNames", "string", "Status", "ParameterKey",
		"xmlns:soap-env", "xmlns:soap-enc", "xmlns:xsd", "xmlns:xsi", "xmlns:cwmp", "xmlns:soap", "xmlns:SOAP-ENV",
		"xmlns:SOAP-ENC", "soap-env:mustUnderstand", "soap:mustUnderstand", "SOAP-ENV:mustUnderstand", "soap-enc:arrayType",
		"SOAP-ENC:arrayType", "xsi:type", "1", "0",
		NSEnvelope, NSEncoding, NSXSD, NSXSI, NS10, NS11, NS12, "urn:dslforum-org:cwmp-1-3", "urn:dslforum-org:cwmp-1-4",
		"xsd:string", "xsd:unsignedInt", "xsd:int", "xsd:boolean", "xsd:dateTime", "xsd:base64",
	} {
		m[s] = s
	}
	return m
}()

func intern(b []byte) string {
	if s, ok := common[string(b)]; ok {
		return s
	}
	return string(b)
}

func (s *fastScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n':
			s.i++
		default:
			return
		}
	}
}

// decodeText resolves entities in raw text; ok is false for anything the
// fast path does not handle.
func decodeText(raw []byte) (string, bool) {
	if bytes.IndexByte(raw, '&') < 0 {
		return string(raw), true
	}
	var out strings.Builder
	out.Grow(len(raw))
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '&' {
			out.WriteByte(c)
			i++
			continue
		}
		j := bytes.IndexByte(raw[i:], ';')
		if j < 0 {
			return "", false
		}
		ent := string(raw[i+1 : i+j])
		i += j + 1
		switch ent {
		case "lt":
			out.WriteByte('<')
		case "gt":
			out.WriteByte('>')
		case "amp":
			out.WriteByte('&')
		case "quot":
			out.WriteByte('"')
		case "apos":
			out.WriteByte('\'')
		default:
			var n uint64
			var err error
			switch {
			case strings.HasPrefix(ent, "#x"):
				n, err = strconv.ParseUint(ent[2:], 16, 8)
			case strings.HasPrefix(ent, "#"):
				n, err = strconv.ParseUint(ent[1:], 10, 8)
			default:
				return "", false
			}
			// Only printable ASCII and tab/newline: everything else goes to etree.
			if err != nil || !(n >= 0x20 && n < 0x7f || n == '\t' || n == '\n') {
				return "", false
			}
			out.WriteByte(byte(n))
		}
	}
	return out.String(), true
}

// next returns the next token; ok false at the end or on anything the fast
// path does not handle (s.bad set).
func (s *fastScanner) next() (fastTok, bool) {
	if s.bad || s.i >= len(s.b) {
		return fastTok{}, false
	}
	if s.b[s.i] != '<' {
		j := bytes.IndexByte(s.b[s.i:], '<')
		if j < 0 {
			j = len(s.b) - s.i
		}
		raw := s.b[s.i : s.i+j]
		s.i += j
		if bytes.IndexByte(raw, '>') >= 0 {
			s.bad = true // legal XML, but keep the subset small
			return fastTok{}, false
		}
		txt, ok := decodeText(raw)
		if !ok {
			s.bad = true
			return fastTok{}, false
		}
		return fastTok{kind: 't', text: txt}, true
	}
	s.i++
	if s.i >= len(s.b) {
		s.bad = true
		return fastTok{}, false
	}
	switch s.b[s.i] {
	case '/':
		s.i++
		n := s.name()
		s.space()
		if s.bad || s.i >= len(s.b) || s.b[s.i] != '>' {
			s.bad = true
			return fastTok{}, false
		}
		s.i++
		return fastTok{kind: 'e', name: n}, true
	case '?', '!':
		s.bad = true // declarations are skipped by the caller before the root only
		return fastTok{}, false
	}
	t := fastTok{kind: 's', name: s.name()}
	for !s.bad {
		s.space()
		if s.i >= len(s.b) {
			s.bad = true
			break
		}
		switch s.b[s.i] {
		case '/':
			if s.i+1 >= len(s.b) || s.b[s.i+1] != '>' {
				s.bad = true
				return fastTok{}, false
			}
			s.i += 2
			t.empty = true
			return t, true
		case '>':
			s.i++
			return t, true
		}
		start := s.i
		an := s.name()
		if s.bad || s.i == start {
			s.bad = true
			break
		}
		s.space()
		if s.i >= len(s.b) || s.b[s.i] != '=' {
			s.bad = true
			break
		}
		s.i++
		s.space()
		if s.i >= len(s.b) || (s.b[s.i] != '"' && s.b[s.i] != '\'') {
			s.bad = true
			break
		}
		q := s.b[s.i]
		s.i++
		j := bytes.IndexByte(s.b[s.i:], q)
		if j < 0 {
			s.bad = true
			break
		}
		val := s.b[s.i : s.i+j]
		s.i += j + 1
		if bytes.IndexAny(val, "&<\t\n") >= 0 {
			s.bad = true
			break
		}
		if s.i < len(s.b) && isNameStart(s.b[s.i]) {
			s.bad = true // attributes must be separated by white space
			break
		}
		t.attrs = append(t.attrs, fastAttr{an, intern(val)})
	}
	return fastTok{}, false
}

// fastElem is one open element: its name split at the prefix and the
// prefixes it declares (their bindings are in fastDecoder.ns).
type fastElem struct {
	prefix, local string
	declared      []string
}

// maxDepth is etree's limit on nesting (ReadSettings.MaxDepth's default):
// deeper input goes to etree, which refuses it, so that both paths accept
// the same documents.
const maxDepth = 1024

type fastDecoder struct {
	s     fastScanner
	stack []fastElem
	// ns holds, per prefix, the URIs bound by the open elements, innermost
	// last: resolving a prefix costs the same at any depth (walking the
	// stack instead made deep input quadratic: 40,000 levels took 2 s).
	ns map[string][]string
}

func (d *fastDecoder) resolve(prefix string) (string, bool) {
	if b := d.ns[prefix]; len(b) > 0 {
		return b[len(b)-1], true
	}
	if prefix == "" {
		return "", true
	}
	return "", false
}

// bind declares a prefix on the innermost element.
func (d *fastDecoder) bind(e *fastElem, prefix, uri string) {
	if d.ns == nil {
		d.ns = map[string][]string{}
	}
	d.ns[prefix] = append(d.ns[prefix], uri)
	e.declared = append(e.declared, prefix)
}

// drop closes the innermost element, undoing its declarations.
func (d *fastDecoder) drop() {
	top := d.stack[len(d.stack)-1]
	for _, p := range top.declared {
		b := d.ns[p]
		d.ns[p] = b[:len(b)-1]
	}
	d.stack = d.stack[:len(d.stack)-1]
}

// push opens an element and returns its namespace URI.
func (d *fastDecoder) push(t fastTok) (string, bool) {
	if len(d.stack) >= maxDepth {
		return "", false
	}
	e := fastElem{local: t.name}
	if len(d.stack) < cap(d.stack) {
		e.declared = d.stack[:len(d.stack)+1][len(d.stack)].declared[:0] // the slot's array, reused
	}
	if i := strings.IndexByte(t.name, ':'); i >= 0 {
		e.prefix, e.local = t.name[:i], t.name[i+1:]
		if e.local == "" || strings.IndexByte(e.local, ':') >= 0 || e.prefix == "" {
			return "", false
		}
	}
	for _, a := range t.attrs {
		switch {
		case a.name == "xmlns":
			d.bind(&e, "", a.value)
		case strings.HasPrefix(a.name, "xmlns:"):
			p := a.name[6:]
			if p == "" || p == "xml" || p == "xmlns" || strings.IndexByte(p, ':') >= 0 {
				for _, q := range e.declared { // undo what this element bound
					d.ns[q] = d.ns[q][:len(d.ns[q])-1]
				}
				return "", false
			}
			d.bind(&e, p, a.value)
		}
	}
	d.stack = append(d.stack, e)
	ns, ok := d.resolve(e.prefix)
	return ns, ok
}

func (d *fastDecoder) pop(t fastTok) bool {
	if len(d.stack) == 0 {
		return false
	}
	top := d.stack[len(d.stack)-1]
	want := top.local
	if top.prefix != "" {
		want = top.prefix + ":" + top.local
	}
	d.drop()
	return t.name == want
}

// attrNS resolves a prefixed attribute of the innermost element.
func (d *fastDecoder) attr(t fastTok, ns, local string) string {
	for _, a := range t.attrs {
		p, l, ok := strings.Cut(a.name, ":")
		if !ok || l != local || p == "xmlns" {
			continue
		}
		if u, ok := d.resolve(p); ok && u == ns {
			return a.value
		}
	}
	return ""
}

// elemText reads the text of an element whose start tag was just read and
// consumes its end tag. ok is false if it has child elements.
func (d *fastDecoder) elemText(start fastTok) (string, bool) {
	if start.empty {
		d.drop()
		return "", true
	}
	var text string
	for {
		t, ok := d.s.next()
		if !ok {
			return "", false
		}
		switch t.kind {
		case 't':
			text += t.text
		case 'e':
			return text, d.pop(t)
		default:
			return "", false
		}
	}
}

// skip consumes the rest of an element whose start tag was just read.
func (d *fastDecoder) skip(start fastTok) bool {
	if start.empty {
		d.drop()
		return true
	}
	depth := len(d.stack)
	for len(d.stack) >= depth {
		t, ok := d.s.next()
		if !ok {
			return false
		}
		switch t.kind {
		case 's':
			if _, ok := d.push(t); !ok {
				return false
			}
			if t.empty {
				d.drop()
			}
		case 'e':
			if !d.pop(t) {
				return false
			}
		}
	}
	return true
}

// nextChild reads up to the next child element of the current element,
// skipping text. At the current element's end tag it pops it and returns
// done. ok is false when the fast path must give up.
func (d *fastDecoder) nextChild() (t fastTok, ns string, done, ok bool) {
	for {
		t, ok = d.s.next()
		if !ok {
			return t, "", false, false
		}
		switch t.kind {
		case 't':
			continue
		case 'e':
			return t, "", true, d.pop(t)
		}
		ns, ok = d.push(t)
		return t, ns, false, ok
	}
}

// fastStart checks the subset's byte rules (ASCII, no CR) and skips the
// prolog: an XML declaration at the very start (UTF-8 or no encoding
// named, version 1.0), then white space.
// decoders are reused: every session decodes a few envelopes, and a
// decoder's namespace table and stack were most of what that allocated.
var decoders = sync.Pool{New: func() any { return &fastDecoder{ns: map[string][]string{}} }}

// release returns the decoder to the pool, emptied (the slices keep their
// arrays) and holding none of the input.
func (d *fastDecoder) release() {
	if len(d.ns) > 64 || cap(d.stack) > 64 {
		return // a deep or wide document's tables: let them go
	}
	for k, v := range d.ns {
		d.ns[k] = v[:0]
	}
	for i := range d.stack[:cap(d.stack)] {
		e := &d.stack[:cap(d.stack)][i]
		e.prefix, e.local = "", ""
		e.declared = e.declared[:0]
	}
	d.stack = d.stack[:0]
	d.s = fastScanner{}
	decoders.Put(d)
}

func fastStart(data []byte) (*fastDecoder, bool) {
	for _, c := range data {
		if c >= 0x80 || c < 0x20 && c != '\t' && c != '\n' {
			return nil, false
		}
	}
	d := decoders.Get().(*fastDecoder)
	d.s = fastScanner{b: data}
	if bytes.HasPrefix(data, []byte("<?xml ")) {
		j := bytes.Index(data, []byte("?>"))
		if j < 0 {
			d.release()
			return nil, false
		}
		decl := string(data[5:j])
		if !strings.Contains(decl, `version="1.0"`) && !strings.Contains(decl, `version='1.0'`) {
			d.release()
			return nil, false
		}
		if strings.Contains(decl, "encoding") && !strings.Contains(decl, `encoding="UTF-8"`) && !strings.Contains(decl, `encoding="utf-8"`) {
			d.release()
			return nil, false
		}
		d.s.i = j + 2
	}
	d.s.space()
	return d, true
}

// fastDecode returns nil when the fast path does not apply or gives up.
func fastDecode(data []byte) *Envelope {
	// Cheap pre-checks: only ASCII without CR, and only the methods worth it.
	if !bytes.Contains(data, []byte("GetParameterValues")) && !bytes.Contains(data, []byte("GetParameterAttributes")) &&
		!bytes.Contains(data, []byte("InformResponse")) {
		return nil
	}
	d, ok := fastStart(data)
	if !ok {
		return nil
	}
	defer d.release()
	t, ok := d.s.next()
	if !ok || t.kind != 's' {
		return nil
	}
	if ns, ok := d.push(t); !ok || ns != NSEnvelope || d.stack[0].local != "Envelope" || t.empty {
		return nil
	}
	env := &Envelope{}
	var body Message
	sawBody := false
	for {
		t, ns, done, ok := d.nextChild()
		if !ok {
			return nil
		}
		if done {
			break // end of Envelope
		}
		local := d.stack[len(d.stack)-1].local
		switch {
		case ns == NSEnvelope && local == "Header":
			if !d.header(t, env) {
				return nil
			}
		case ns == NSEnvelope && local == "Body":
			if sawBody {
				return nil // etree keeps the last Body; leave such oddities to it
			}
			sawBody = true
			m, ok := d.body(t, env)
			if !ok {
				return nil
			}
			body = m
		default:
			if !d.skip(t) {
				return nil
			}
		}
	}
	// Only white space may follow the root.
	d.s.space()
	if d.s.i != len(data) || body == nil {
		return nil
	}
	env.Body = body
	return env
}

func (d *fastDecoder) header(start fastTok, env *Envelope) bool {
	if start.empty {
		d.drop()
		return true
	}
	for {
		t, ns, done, ok := d.nextChild()
		if !ok || done {
			return ok
		}
		local := d.stack[len(d.stack)-1].local
		if _, cwmp := VersionOf(ns); cwmp {
			if env.NS == "" {
				env.NS = ns
			}
			switch local {
			case "ID", "HoldRequests", "NoMoreRequests", "SessionTimeout", "sessionTimeout", "SupportedCWMPVersions", "UseCWMPVersion":
				txt, ok := d.elemText(t)
				if !ok {
					return false
				}
				switch local {
				case "ID":
					env.ID = txt
				case "HoldRequests":
					env.HoldRequests = parseBool(txt)
				case "NoMoreRequests":
					env.NoMoreRequests = parseBool(txt)
				case "SessionTimeout", "sessionTimeout":
					n, _ := strconv.ParseUint(strings.TrimSpace(txt), 10, 32)
					env.SessionTimeout = uint32(n)
				case "SupportedCWMPVersions":
					env.SupportedCWMPVersions = strings.TrimSpace(txt)
				case "UseCWMPVersion":
					env.UseCWMPVersion = strings.TrimSpace(txt)
				}
				continue
			}
		}
		if mu := d.attr(t, NSEnvelope, "mustUnderstand"); mu == "1" || mu == "true" {
			return false // etree reports ErrMustUnderstand
		}
		if !d.skip(t) {
			return false
		}
	}
}

func (d *fastDecoder) body(start fastTok, env *Envelope) (Message, bool) {
	if start.empty {
		return nil, false
	}
	var msg Message
	for {
		t, ns, done, ok := d.nextChild()
		if !ok {
			return nil, false
		}
		if done {
			return msg, msg != nil
		}
		if msg != nil {
			if !d.skip(t) { // etree reads the first element only
				return nil, false
			}
			continue
		}
		local := d.stack[len(d.stack)-1].local
		if _, cwmp := VersionOf(ns); !cwmp {
			return nil, false
		}
		var names *[]string
		switch local {
		case "InformResponse":
			// The answer to every Inform, so a fleet's most frequent
			// message: decoded without a DOM.
			m := &InformResponse{}
			msg = m
			env.NS = ns
			if !d.informResponse(t, m) {
				return nil, false
			}
			continue
		case "GetParameterValues":
			m := &GetParameterValues{}
			msg, names = m, &m.ParameterNames
		case "GetParameterAttributes":
			m := &GetParameterAttributes{}
			msg, names = m, &m.ParameterNames
		default:
			return nil, false
		}
		env.NS = ns
		if !d.nameList(t, names) {
			return nil, false
		}
	}
}

// informResponse reads InformResponse's MaxEnvelopes as the DOM decoder
// does (the first such child; empty is 0); anything it would refuse, or
// markup inside the number, is left to it.
func (d *fastDecoder) informResponse(start fastTok, m *InformResponse) bool {
	if start.empty {
		d.drop()
		return true
	}
	seen := false
	for {
		t, _, done, ok := d.nextChild()
		if !ok || done {
			return ok
		}
		if seen || d.stack[len(d.stack)-1].local != "MaxEnvelopes" {
			if !d.skip(t) {
				return false
			}
			continue
		}
		seen = true
		txt, ok := d.elemText(t)
		if !ok {
			return false
		}
		if v := strings.TrimSpace(txt); v != "" {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return false
			}
			m.MaxEnvelopes = uint32(n)
		}
	}
}

// nameList reads the method element holding ParameterNames.
func (d *fastDecoder) nameList(start fastTok, names *[]string) bool {
	if start.empty {
		return false // etree: missing ParameterNames
	}
	found := false
	for {
		t, _, done, ok := d.nextChild()
		if !ok {
			return false
		}
		if done {
			return found
		}
		if d.stack[len(d.stack)-1].local != "ParameterNames" || found {
			if !d.skip(t) {
				return false
			}
			continue
		}
		found = true
		*names = make([]string, 0, 64)
		if t.empty {
			d.drop()
			continue
		}
		for {
			it, _, done, ok := d.nextChild()
			if !ok {
				return false
			}
			if done {
				break
			}
			txt, ok := d.elemText(it)
			if !ok {
				return false
			}
			*names = append(*names, strings.TrimSpace(txt))
		}
	}
}
