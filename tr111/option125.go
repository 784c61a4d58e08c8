package tr111

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// EnterpriseBBF is the IANA enterprise number of the DSL Forum (now the
// Broadband Forum), "ADSL Forum" in the registry: the block of option 125
// that carries TR-111 identities (TR-111 1.2.5).
const EnterpriseBBF = 3561

// Sub-option codes of the enterprise-3561 block (TR-111 1.2.5, Table 1).
const (
	SubDeviceOUI           = 1
	SubDeviceSerialNumber  = 2
	SubDeviceProductClass  = 3
	SubGatewayOUI          = 4
	SubGatewaySerial       = 5
	SubGatewayProductClass = 6
)

// MaxIdentityField is the longest SerialNumber or ProductClass the data
// model holds (string(64), TR-111 1.2.6 Table 2).
const MaxIdentityField = 64

// Identity is a Device Identity (sub-options 1-3) or a Gateway Identity
// (sub-options 4-6).
type Identity struct {
	ManufacturerOUI string
	SerialNumber    string
	ProductClass    string
}

// VendorBlock is one enterprise block of option 125 (RFC 3925 section 4):
// a 4-byte enterprise number, a 1-byte length, then that many bytes.
type VendorBlock struct {
	Enterprise uint32
	Data       []byte
}

// VIVendorOptions is the V-I Vendor-Specific Information option (DHCP
// option 125, RFC 3925). It implements dhcpv4.OptionValue, the way the
// library's VIVCIdentifiers does for option 124, which the library lacks
// for 125.
type VIVendorOptions []VendorBlock

// Errors of the option 125 decoder.
var (
	ErrOption125Truncated = errors.New("option 125: truncated")
	ErrOption125Length    = errors.New("option 125: a length runs past its data")
)

// FromBytes parses option 125 data. Every enterprise block is kept, ours or
// not; a block or sub-option whose length runs past the data is an error.
func (o *VIVendorOptions) FromBytes(b []byte) error {
	var out VIVendorOptions
	for len(b) > 0 {
		if len(b) < 5 {
			return fmt.Errorf("%w: %d bytes where an enterprise block needs at least 5", ErrOption125Truncated, len(b))
		}
		ent := binary.BigEndian.Uint32(b)
		n := int(b[4])
		if 5+n > len(b) {
			return fmt.Errorf("%w: enterprise %d says %d bytes, %d remain", ErrOption125Length, ent, n, len(b)-5)
		}
		out = append(out, VendorBlock{Enterprise: ent, Data: b[5 : 5+n : 5+n]})
		b = b[5+n:]
	}
	*o = out
	return nil
}

// ToBytes encodes the option data (without code and length).
func (o VIVendorOptions) ToBytes() []byte {
	n := 0
	for _, v := range o {
		n += 5 + len(v.Data)
	}
	b := make([]byte, 0, n)
	for _, v := range o {
		b = binary.BigEndian.AppendUint32(b, v.Enterprise)
		b = append(b, byte(len(v.Data)))
		b = append(b, v.Data...)
	}
	return b
}

// String shows the blocks for logs: our sub-options decoded, others as a
// byte count.
func (o VIVendorOptions) String() string {
	var sb strings.Builder
	for i, v := range o {
		if i > 0 {
			sb.WriteString(", ")
		}
		if v.Enterprise != EnterpriseBBF {
			fmt.Fprintf(&sb, "enterprise %d: %d bytes", v.Enterprise, len(v.Data))
			continue
		}
		fmt.Fprintf(&sb, "enterprise %d:", v.Enterprise)
		_ = walkSubOptions(v.Data, func(code byte, data []byte) {
			fmt.Fprintf(&sb, " %d=%q", code, data)
		})
	}
	return sb.String()
}

// Option returns the option for a dhcpv4 message.
func (o VIVendorOptions) Option() dhcpv4.Option {
	return dhcpv4.Option{Code: dhcpv4.OptionVendorIdentifyingVendorSpecific, Value: o}
}

// walkSubOptions calls fn for each code/length/data of a block. A length
// running past the block is an error; sub-option 0 (pad) and 255 (end) are
// not special inside a vendor block (RFC 3925 section 4: plain TLVs).
func walkSubOptions(b []byte, fn func(code byte, data []byte)) error {
	for len(b) > 0 {
		if len(b) < 2 {
			return fmt.Errorf("%w: sub-option %d has no length", ErrOption125Truncated, b[0])
		}
		n := int(b[1])
		if 2+n > len(b) {
			return fmt.Errorf("%w: sub-option %d says %d bytes, %d remain", ErrOption125Length, b[0], n, len(b)-2)
		}
		fn(b[0], b[2:2+n])
		b = b[2+n:]
	}
	return nil
}

// identity collects the three sub-options starting at first (1 for a Device
// Identity, 4 for a Gateway Identity) from every enterprise-3561 block; the
// first occurrence of a code wins. present reports which were there.
func (o VIVendorOptions) identity(first byte) (id Identity, present [3]bool, found bool, err error) {
	for _, v := range o {
		if v.Enterprise != EnterpriseBBF {
			continue
		}
		found = true
		err = walkSubOptions(v.Data, func(code byte, data []byte) {
			i := int(code) - int(first)
			if i < 0 || i > 2 || present[i] {
				return
			}
			present[i] = true
			// TR-111 1.2.5 forbids a terminating NUL; some devices send one
			// all the same, and it is no part of the value.
			s := strings.TrimRight(string(data), "\x00")
			switch i {
			case 0:
				id.ManufacturerOUI = s
			case 1:
				id.SerialNumber = s
			case 2:
				id.ProductClass = s
			}
		})
		if err != nil {
			return Identity{}, [3]bool{}, true, err
		}
	}
	return id, present, found, nil
}

// ErrNoIdentity means the option holds no identity of the kind asked for.
var ErrNoIdentity = errors.New("option 125: no TR-111 identity")

// DeviceIdentity returns the Device Identity of a client's option 125
// (TR-111 1.2.1): sub-options 1 and 2 are required, 3 may be absent. The
// values are validated as the ManageableDevice table needs them (an OUI of
// six upper-case hex digits, at most 64 printable characters for the
// others), so that what it returns may enter the table as it is.
func (o VIVendorOptions) DeviceIdentity() (Identity, error) {
	id, present, found, err := o.identity(SubDeviceOUI)
	if err != nil {
		return Identity{}, err
	}
	if !found || !present[0] || !present[1] {
		return Identity{}, ErrNoIdentity
	}
	if err := id.Validate(); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// GatewayIdentity returns the Gateway Identity of a server's option 125
// (TR-111 1.2.2). ok is false when the option has no 3561 block or none of
// sub-options 4-6; a missing sub-option gives an empty string, as the
// Device must record. Values are not validated beyond being printable
// text: GatewayInfo records what the gateway sent.
func (o VIVendorOptions) GatewayIdentity() (id Identity, ok bool, err error) {
	id, present, found, err := o.identity(SubGatewayOUI)
	if err != nil {
		return Identity{}, false, err
	}
	if !found || !(present[0] || present[1] || present[2]) {
		return Identity{}, false, nil
	}
	for _, f := range []*string{&id.ManufacturerOUI, &id.SerialNumber, &id.ProductClass} {
		if !printable(*f) {
			return Identity{}, false, fmt.Errorf("option 125: gateway identity %q is not printable text", *f)
		}
	}
	if len(id.ManufacturerOUI) > 6 || len(id.SerialNumber) > MaxIdentityField || len(id.ProductClass) > MaxIdentityField {
		return Identity{}, false, errors.New("option 125: gateway identity longer than GatewayInfo holds")
	}
	return id, true, nil
}

// Validate checks an identity against the data model: ManufacturerOUI six
// upper-case hex digits (TR-111 1.2.6 Table 2), SerialNumber non-empty,
// SerialNumber and ProductClass at most 64 printable characters.
func (id Identity) Validate() error {
	if !isOUI(id.ManufacturerOUI) {
		return fmt.Errorf("option 125: ManufacturerOUI %q is not six upper-case hex digits", id.ManufacturerOUI)
	}
	if id.SerialNumber == "" {
		return errors.New("option 125: empty SerialNumber")
	}
	for _, f := range []string{id.SerialNumber, id.ProductClass} {
		if len(f) > MaxIdentityField {
			return fmt.Errorf("option 125: %q is longer than %d characters", f, MaxIdentityField)
		}
		if !printable(f) {
			return fmt.Errorf("option 125: %q is not printable text", f)
		}
	}
	return nil
}

func isOUI(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := 0; i < 6; i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// printable refuses control characters and invalid UTF-8: the value goes
// into SOAP envelopes, where XML 1.0 cannot carry most control characters.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7F {
			return false
		}
	}
	return utf8.ValidString(s)
}

// appendSub appends one sub-option; values longer than 255 bytes cannot be
// encoded and are cut (the data model caps them at 64 anyway).
func appendSub(b []byte, code byte, v string) []byte {
	if len(v) > 255 {
		v = v[:255]
	}
	b = append(b, code, byte(len(v)))
	return append(b, v...)
}

func (id Identity) block(first byte) VendorBlock {
	d := make([]byte, 0, 6+len(id.ManufacturerOUI)+len(id.SerialNumber)+len(id.ProductClass))
	d = appendSub(d, first, id.ManufacturerOUI)
	d = appendSub(d, first+1, id.SerialNumber)
	// TR-111 1.2.5: the product class may be left out when there is none.
	if id.ProductClass != "" {
		d = appendSub(d, first+2, id.ProductClass)
	}
	if len(d) > 255 {
		d = d[:255]
	}
	return VendorBlock{Enterprise: EnterpriseBBF, Data: d}
}

// DeviceOption is the option 125 a Device sends: sub-options 1, 2 and 3
// (3 left out when ProductClass is empty), never NUL-terminated.
func (id Identity) DeviceOption() VIVendorOptions { return VIVendorOptions{id.block(SubDeviceOUI)} }

// GatewayOption is the option 125 a Gateway answers with: sub-options 4, 5
// and 6 (6 left out when ProductClass is empty).
func (id Identity) GatewayOption() VIVendorOptions { return VIVendorOptions{id.block(SubGatewayOUI)} }

// ParseOption125 decodes option 125 data.
func ParseOption125(b []byte) (VIVendorOptions, error) {
	var o VIVendorOptions
	err := o.FromBytes(b)
	return o, err
}

// FromMessage returns the option 125 of a DHCP message; ok is false when it
// has none.
func FromMessage(m *dhcpv4.DHCPv4) (o VIVendorOptions, ok bool, err error) {
	raw := m.Options.Get(dhcpv4.OptionVendorIdentifyingVendorSpecific)
	if raw == nil {
		return nil, false, nil
	}
	o, err = ParseOption125(raw)
	return o, true, err
}
