package tr111

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net"
	"strings"
	"sync"

	"github.com/pion/stun/v3"
)

// STUN attributes TR-111 uses that pion/stun does not name (RFC 3489
// section 11.2, TR-111 Table 5).
const (
	AttrResponseAddress          stun.AttrType = 0x0002
	AttrChangeRequest            stun.AttrType = 0x0003
	AttrSourceAddress            stun.AttrType = 0x0004
	AttrChangedAddress           stun.AttrType = 0x0005
	AttrReflectedFrom            stun.AttrType = 0x000B
	AttrConnectionRequestBinding stun.AttrType = 0xC001
	AttrBindingChange            stun.AttrType = 0xC002
)

// ConnectionRequestBindingValue is the exact value of CONNECTION-REQUEST-
// BINDING (TR-111 Table 5: 20 bytes, the last a space).
const ConnectionRequestBindingValue = "dslforum.org/TR-111 "

const magicCookie = 0x2112A442

// TxID is a 16-byte RFC 3489 transaction ID (for RFC 5389 messages its
// first four bytes are the magic cookie).
type TxID [16]byte

// NewTxID returns a random RFC 3489 transaction ID; with cookie, one that
// starts with the RFC 5389 magic cookie.
func NewTxID(cookie bool) TxID {
	var id TxID
	rand.Read(id[:])
	if cookie {
		binary.BigEndian.PutUint32(id[:4], magicCookie)
	} else if binary.BigEndian.Uint32(id[:4]) == magicCookie {
		id[0] ^= 0xFF
	}
	return id
}

// HasCookie reports whether the ID starts with the RFC 5389 magic cookie.
func (id TxID) HasCookie() bool { return binary.BigEndian.Uint32(id[:4]) == magicCookie }

// Message is a decoded STUN message, RFC 3489 or RFC 5389.
type Message struct {
	Type stun.MessageType
	ID   TxID
	// Raw is the message as it went over the wire.
	Raw []byte
	// view is pion's decoding, made on a copy whose bytes 4-8 hold the magic
	// cookie (pion reads RFC 5389 only).
	view stun.Message
}

// Errors of the STUN codec.
var (
	ErrNotSTUN     = errors.New("tr111: not a STUN message")
	ErrNoAttribute = errors.New("tr111: attribute not present")
)

// DecodeSTUN decodes a STUN message. RFC 3489 messages (no magic cookie)
// are read by giving pion a copy with the cookie in place; Raw keeps the
// original bytes for integrity checks.
func DecodeSTUN(b []byte) (*Message, error) { return decodeSTUN(b, true) }

// decodeSTUN with keep false lets Raw alias b, for callers that are done
// with the message before b is reused (the server's request path).
func decodeSTUN(b []byte, keep bool) (*Message, error) {
	if len(b) < 20 || b[0]&0xC0 != 0 {
		return nil, ErrNotSTUN
	}
	n := int(binary.BigEndian.Uint16(b[2:4]))
	if n%4 != 0 || 20+n > len(b) {
		return nil, fmt.Errorf("%w: length %d for %d bytes", ErrNotSTUN, n, len(b))
	}
	raw := b[:20+n]
	m := &Message{Raw: raw}
	if keep {
		m.Raw = append([]byte(nil), raw...)
	}
	copy(m.ID[:], raw[4:20])
	m.view.Raw = append(m.view.Raw[:0], raw...)
	binary.BigEndian.PutUint32(m.view.Raw[4:8], magicCookie)
	if err := m.view.Decode(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotSTUN, err)
	}
	m.Type = m.view.Type
	return m, nil
}

// Get returns an attribute's value.
func (m *Message) Get(t stun.AttrType) ([]byte, bool) {
	for _, a := range m.view.Attributes {
		if a.Type == t {
			return a.Value, true
		}
	}
	return nil, false
}

// Has reports whether an attribute is present.
func (m *Message) Has(t stun.AttrType) bool {
	_, ok := m.Get(t)
	return ok
}

// Address reads an address attribute in the MAPPED-ADDRESS form (also
// RESPONSE-ADDRESS, CHANGED-ADDRESS, SOURCE-ADDRESS).
func (m *Message) Address(t stun.AttrType) (*net.UDPAddr, error) {
	var a stun.MappedAddress
	if err := a.GetFromAs(&m.view, t); err != nil {
		if errors.Is(err, stun.ErrAttributeNotFound) {
			return nil, ErrNoAttribute
		}
		return nil, fmt.Errorf("tr111: %s: %w", t, err)
	}
	return &net.UDPAddr{IP: a.IP, Port: a.Port}, nil
}

// ErrorCode returns the code of an ERROR-CODE attribute, or 0.
func (m *Message) ErrorCode() int {
	var e stun.ErrorCodeAttribute
	if err := e.GetFrom(&m.view); err != nil {
		return 0
	}
	return int(e.Code)
}

// Username returns USERNAME without the padding a client added to make its
// length a multiple of four (spaces or NULs).
func (m *Message) Username() (string, bool) {
	v, ok := m.Get(stun.AttrUsername)
	if !ok {
		return "", false
	}
	return strings.TrimRight(string(v), " \x00"), true
}

// ChangeRequest returns the CHANGE-REQUEST flags (change IP, change port).
func (m *Message) ChangeRequest() (ip, port bool) {
	v, ok := m.Get(AttrChangeRequest)
	if !ok || len(v) != 4 {
		return false, false
	}
	return v[3]&0x04 != 0, v[3]&0x02 != 0
}

// integrityOffset is where MESSAGE-INTEGRITY starts in Raw, or -1.
func (m *Message) integrityOffset() int {
	off := 20
	for off+4 <= len(m.Raw) {
		t := binary.BigEndian.Uint16(m.Raw[off:])
		l := int(binary.BigEndian.Uint16(m.Raw[off+2:]))
		if stun.AttrType(t) == stun.AttrMessageIntegrity {
			if l != 20 || off+24 > len(m.Raw) {
				return -1
			}
			return off
		}
		off += 4 + (l+3)&^3
	}
	return -1
}

// HasIntegrity reports whether MESSAGE-INTEGRITY is present.
func (m *Message) HasIntegrity() bool { return m.integrityOffset() >= 0 }

// CheckIntegrity verifies MESSAGE-INTEGRITY with key (TR-111 uses the
// STUNPassword itself as the key). Both variants are accepted: RFC 3489
// (HMAC-SHA1 over the message before the attribute, zero-padded to a
// multiple of 64 bytes) and RFC 5389 (no padding, the length field
// counting up to the end of the attribute).
func (m *Message) CheckIntegrity(key []byte) bool {
	off := m.integrityOffset()
	if off < 0 {
		return false
	}
	got := m.Raw[off+4 : off+24]
	var sum [20]byte
	if hmac.Equal(got, classicMAC(key, m.Raw[:off], &sum)) {
		return true
	}
	buf := append([]byte(nil), m.Raw[:off]...)
	binary.BigEndian.PutUint16(buf[2:4], uint16(off-20+24))
	mac := getMAC(key)
	mac.Write(buf)
	ok := hmac.Equal(got, mac.Sum(sum[:0]))
	putMAC(key, mac)
	return ok
}

// classicMAC is the RFC 3489 section 11.2.8 HMAC: the text is padded with
// zeroes to a multiple of 64 bytes.
func classicMAC(key, text []byte, out *[20]byte) []byte {
	mac := getMAC(key)
	mac.Write(text)
	if r := len(text) % 64; r != 0 {
		var zero [64]byte
		mac.Write(zero[:64-r])
	}
	sum := mac.Sum(out[:0])
	putMAC(key, mac)
	return sum
}

// Keyed HMAC-SHA1 states are reused: a STUN server checks and signs with
// the same few thousand passwords all the time, and hmac.New costs as much
// as the hashing itself (BenchmarkSTUNServerAuthenticated).
var (
	macMu    sync.Mutex // guards macPools
	macPools = map[string]*sync.Pool{}
)

const maxMACPools = 100000

func getMAC(key []byte) hash.Hash {
	macMu.Lock()
	p := macPools[string(key)]
	macMu.Unlock()
	if p != nil {
		if h, ok := p.Get().(hash.Hash); ok {
			h.Reset()
			return h
		}
	}
	return hmac.New(sha1.New, key)
}

func putMAC(key []byte, h hash.Hash) {
	macMu.Lock()
	defer macMu.Unlock()
	p := macPools[string(key)]
	if p == nil {
		if len(macPools) >= maxMACPools {
			return
		}
		p = &sync.Pool{}
		macPools[string(key)] = p
	}
	p.Put(h)
}

// Setters: small pion Setters for the TR-111 attributes.

// connReqBinding adds CONNECTION-REQUEST-BINDING.
type connReqBinding struct{}

func (connReqBinding) AddTo(m *stun.Message) error {
	m.Add(AttrConnectionRequestBinding, []byte(ConnectionRequestBindingValue))
	return nil
}

// bindingChange adds the empty BINDING-CHANGE.
type bindingChange struct{}

func (bindingChange) AddTo(m *stun.Message) error {
	m.Add(AttrBindingChange, nil)
	return nil
}

// paddedUsername adds USERNAME padded with spaces to a multiple of four
// (RFC 3489 requires it; stund drops a message without it).
type paddedUsername string

func (u paddedUsername) AddTo(m *stun.Message) error {
	v := []byte(u)
	for len(v)%4 != 0 {
		v = append(v, ' ')
	}
	m.Add(stun.AttrUsername, v)
	return nil
}

// addressAttr adds an RFC 3489 address attribute (RESPONSE-ADDRESS,
// CHANGED-ADDRESS, SOURCE-ADDRESS, MAPPED-ADDRESS).
type addressAttr struct {
	t    stun.AttrType
	addr *net.UDPAddr
}

func (a addressAttr) AddTo(m *stun.Message) error {
	ma := stun.MappedAddress{IP: a.addr.IP, Port: a.addr.Port}
	return ma.AddToAs(m, a.t)
}

// txID writes a 16-byte RFC 3489 transaction ID into the header (pion
// writes the magic cookie and a 12-byte ID).
type txID TxID

func (id txID) AddTo(m *stun.Message) error {
	copy(m.TransactionID[:], id[4:])
	m.WriteTransactionID()
	copy(m.Raw[4:8], id[:4])
	return nil
}

// classicIntegrity adds an RFC 3489 MESSAGE-INTEGRITY; it must be the last
// setter.
type classicIntegrity []byte

func (key classicIntegrity) AddTo(m *stun.Message) error {
	off := len(m.Raw)
	var zero, sum [20]byte
	m.Add(stun.AttrMessageIntegrity, zero[:])
	copy(m.Raw[off+4:off+24], classicMAC(key, m.Raw[:off], &sum))
	return nil
}

// buildSTUN assembles a message from setters and returns its bytes.
func buildSTUN(setters ...stun.Setter) ([]byte, error) {
	m := &stun.Message{Raw: make([]byte, 0, 256)}
	if err := m.Build(setters...); err != nil {
		return nil, err
	}
	return append([]byte(nil), m.Raw...), nil
}
