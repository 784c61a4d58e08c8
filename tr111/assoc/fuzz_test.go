package assoc

import (
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

// FuzzDHCPServer: whatever a LAN client sends, the gateway never crashes,
// answers with a message that decodes, and lets only valid Device
// Identities into the ManageableDevice table.
func FuzzDHCPServer(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzDHCPServer")
	gw := gatewayTree(f)
	srv, tab := testServer(f, gw, time.Hour, "")
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		r, _ := srv.Handle(m)
		if r != nil {
			if _, err := dhcpv4.FromBytes(r.ToBytes()); err != nil {
				t.Fatalf("the server built an undecodable reply: %v", err)
			}
		}
		for _, l := range tab.Leases() {
			if err := l.Identity.Validate(); err != nil {
				t.Fatalf("an invalid identity entered the table: %v", err)
			}
		}
	})
}

// FuzzHookEnv: the udhcpc and dhclient forms of option 125 never crash
// the hook, and what it accepts parses as option 125.
func FuzzHookEnv(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzHookEnv")
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, err := DecodeHookOption(string(b))
		if err != nil {
			return
		}
		if o, err := tr111.ParseOption125(raw); err == nil {
			o.GatewayIdentity()
		}
	})
}
