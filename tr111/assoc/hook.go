package assoc

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// Hook mode: devices that keep their own DHCP client (busybox udhcpc, ISC
// dhclient) and gateways that run dnsmasq hand the association to the
// agent through scripts. This file holds what those scripts need: the
// option in the forms each program takes, and the decoding of what each
// program passes to its script.

// DHClientOptionName is the name the dhclient configuration gives option
// 125 (see DHClientConfig); dhclient passes it to its script as
// new_tr111_vi.
const DHClientOptionName = "tr111-vi"

// Option125Forms are the Device Identity option in the forms DHCP clients
// take.
type Option125Forms struct {
	Hex      string // the option data as plain hex
	Udhcpc   string // busybox udhcpc arguments: -x 0x7d:<hex> -O 125
	DHClient string // dhclient.conf lines
}

// DeviceOptionForms renders the Device Identity for udhcpc and dhclient.
func DeviceOptionForms(id tr111.Identity) Option125Forms {
	raw := id.DeviceOption().ToBytes()
	h := hex.EncodeToString(raw)
	colon := make([]string, len(raw))
	for i, b := range raw {
		colon[i] = fmt.Sprintf("%02x", b)
	}
	return Option125Forms{
		Hex:    h,
		Udhcpc: "-x 0x7d:" + h + " -O 125",
		DHClient: "option " + DHClientOptionName + " code 125 = string;\n" +
			"send " + DHClientOptionName + " " + strings.Join(colon, ":") + ";\n" +
			"also request " + DHClientOptionName + ";\n",
	}
}

// DecodeHookOption decodes option 125 as a DHCP client passes it to its
// script: udhcpc's plain hex (opt125=00000de9...) or dhclient's
// colon-separated hex with one or two digits per byte (0:0:d:e9:...).
func DecodeHookOption(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty option")
	}
	if !strings.Contains(s, ":") {
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("option 125 %q: not hex", s)
		}
		return b, nil
	}
	parts := strings.Split(s, ":")
	out := make([]byte, len(parts))
	for i, p := range parts {
		if len(p) == 0 || len(p) > 2 {
			return nil, fmt.Errorf("option 125: %q is not a byte", p)
		}
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return nil, fmt.Errorf("option 125: %q is not a byte", p)
		}
		out[i] = byte(v)
	}
	return out, nil
}

// HookAction is what a DHCP client event means for GatewayInfo.
type HookAction int

const (
	HookIgnore HookAction = iota // nothing to do (e.g. preinit)
	HookRecord                   // a lease was bound or renewed: record the identity
	HookClear                    // the lease is gone: discard GatewayInfo
)

// ClientHookEvent decodes a udhcpc or dhclient script invocation (args
// without the program name, env lookups) into an action and, for
// HookRecord, the Gateway Identity (nil when the server sent none: record
// empty strings).
//
// udhcpc calls its script with the event as $1 (deconfig, bound, renew,
// leasefail, nak) and, run with -O 125, option 125 in $opt125. dhclient
// sets $reason (BOUND, RENEW, REBIND, REBOOT, EXPIRE, FAIL, RELEASE, STOP,
// ...) and the option, named as in its configuration, in $new_tr111_vi.
func ClientHookEvent(args []string, getenv func(string) string) (HookAction, *tr111.Identity, error) {
	var action HookAction
	var raw string
	if reason := getenv("reason"); reason != "" {
		switch reason {
		case "BOUND", "RENEW", "REBIND", "REBOOT", "TIMEOUT":
			action = HookRecord
			raw = getenv("new_" + strings.ReplaceAll(DHClientOptionName, "-", "_"))
		case "EXPIRE", "FAIL", "RELEASE", "STOP":
			action = HookClear
		default:
			return HookIgnore, nil, nil
		}
	} else {
		if len(args) == 0 {
			return HookIgnore, nil, errors.New("dhcp hook: neither a udhcpc event ($1) nor a dhclient $reason")
		}
		switch args[0] {
		case "bound", "renew":
			action = HookRecord
			raw = getenv("opt125")
		case "deconfig", "leasefail", "nak":
			action = HookClear
		default:
			return HookIgnore, nil, nil
		}
	}
	if action == HookClear || raw == "" {
		return action, nil, nil
	}
	b, err := DecodeHookOption(raw)
	if err != nil {
		return HookRecord, nil, err
	}
	o, err := tr111.ParseOption125(b)
	if err != nil {
		return HookRecord, nil, err
	}
	id, ok, err := o.GatewayIdentity()
	if err != nil || !ok {
		return HookRecord, nil, err
	}
	return HookRecord, &id, nil
}

// DnsmasqEvent is one call of dnsmasq's dhcp-script.
type DnsmasqEvent struct {
	Action   string // add, old, del
	MAC, IP  string
	Identity *tr111.Identity // from DNSMASQ_CPEWAN_*; nil without
	Expires  time.Time       // zero: no end known (infinite lease)
}

// ParseDnsmasqScript decodes a dhcp-script invocation: "add|old|del MAC IP
// [hostname]" with DNSMASQ_CPEWAN_OUI, _SERIAL and _CLASS set when the
// client sent a TR-111 Device Identity (dnsmasq tags it cpewan-id), and
// DNSMASQ_LEASE_EXPIRES (or DNSMASQ_LEASE_LENGTH on builds without a
// real-time clock). Other actions (init, tftp, arp, ...) give ok false.
func ParseDnsmasqScript(args []string, getenv func(string) string, now time.Time) (ev DnsmasqEvent, ok bool, err error) {
	if len(args) == 0 {
		return ev, false, errors.New("dnsmasq-script: no action")
	}
	switch args[0] {
	case "add", "old", "del":
	default:
		return ev, false, nil
	}
	if len(args) < 3 {
		return ev, false, fmt.Errorf("dnsmasq-script %s: want MAC and IP", args[0])
	}
	ev.Action, ev.MAC, ev.IP = args[0], strings.ToLower(args[1]), args[2]
	if oui, sn := getenv("DNSMASQ_CPEWAN_OUI"), getenv("DNSMASQ_CPEWAN_SERIAL"); oui != "" || sn != "" {
		ev.Identity = &tr111.Identity{ManufacturerOUI: oui, SerialNumber: sn, ProductClass: getenv("DNSMASQ_CPEWAN_CLASS")}
	}
	if s := getenv("DNSMASQ_LEASE_EXPIRES"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return ev, false, fmt.Errorf("DNSMASQ_LEASE_EXPIRES %q: %w", s, err)
		}
		if v > 0 {
			ev.Expires = time.Unix(v, 0)
		}
	} else if s := getenv("DNSMASQ_LEASE_LENGTH"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return ev, false, fmt.Errorf("DNSMASQ_LEASE_LENGTH %q: %w", s, err)
		}
		if v > 0 {
			ev.Expires = now.Add(time.Duration(v) * time.Second)
		}
	}
	return ev, true, nil
}

// DnsmasqConfig renders the dnsmasq lines that answer a client's Device
// Identity with the Gateway Identity (dnsmasq sets the cpewan-id tag on
// such clients) and run the agent's script on lease changes.
func DnsmasqConfig(id tr111.Identity, script string) string {
	q := func(s string) string {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	var b strings.Builder
	b.WriteString("# TR-111 Part 1: the Gateway Identity for clients that sent a Device Identity\n")
	fmt.Fprintf(&b, "dhcp-option=tag:cpewan-id,vi-encap:%d,%d,%s\n", tr111.EnterpriseBBF, tr111.SubGatewayOUI, q(id.ManufacturerOUI))
	fmt.Fprintf(&b, "dhcp-option=tag:cpewan-id,vi-encap:%d,%d,%s\n", tr111.EnterpriseBBF, tr111.SubGatewaySerial, q(id.SerialNumber))
	if id.ProductClass != "" {
		fmt.Fprintf(&b, "dhcp-option=tag:cpewan-id,vi-encap:%d,%d,%s\n", tr111.EnterpriseBBF, tr111.SubGatewayProductClass, q(id.ProductClass))
	}
	if script != "" {
		b.WriteString("# the ManageableDevice table follows dnsmasq's leases\n")
		fmt.Fprintf(&b, "dhcp-script=%s\n", script)
	}
	return b.String()
}
