package cpe

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cwmp-agent/cwmp-agent/internal/atomicfile"
)

// DnsmasqSpool is the directory where `cwmp-agent dnsmasq-script` keeps
// dnsmasq's lease events while the agent is not running, next to the
// control socket both of them know. Without it a device that joined while
// the agent was down would stay out of the ManageableDevice table until
// its next renewal (TR-111 1.2.1 wants it listed after its DHCPACK).
func DnsmasqSpool(socket string) string {
	return filepath.Join(filepath.Dir(socket), "dnsmasq-events")
}

// SpoolLeaseEvent keeps a "dhcp.lease" event (the control action's
// arguments) for the agent's next start. One file per hardware address: a
// later event of the same device supersedes an earlier one, as it would
// have in the running table.
func SpoolLeaseEvent(dir string, args map[string]string) error {
	mac := strings.ToLower(args["mac"])
	if mac == "" || strings.ContainsAny(mac, "/\\.") {
		return fmt.Errorf("dnsmasq-script: hardware address %q", args["mac"])
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteJSON(filepath.Join(dir, strings.ReplaceAll(mac, ":", "-")+".json"), args)
}

// drainSpool applies the spooled lease events once the control socket
// listens (a script that finds it listening no longer spools), then removes
// them. An unreadable or refused event is logged and removed: it can never
// become valid.
func (c *CPE) drainSpool(dir string) {
	// The script may be writing now: only old leftovers of killed ones go.
	atomicfile.RemoveStale(dir, time.Minute)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if !os.IsNotExist(err) {
			c.cfg.Logger.Warn("dnsmasq events kept while the agent was down are not read", "dir", dir, "err", err)
		}
		return
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	applied := 0
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		var args map[string]string
		if err := atomicfile.ReadJSON(path, &args); err != nil {
			c.cfg.Logger.Warn("dropping an unreadable dnsmasq event", "file", path, "err", err)
		} else if _, err := c.leaseEvent(args); err != nil {
			c.cfg.Logger.Warn("dropping a refused dnsmasq event", "file", path, "err", err)
		} else {
			applied++
		}
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			c.cfg.Logger.Warn("a dnsmasq event could not be removed", "file", path, "err", err)
		}
	}
	if applied > 0 {
		c.cfg.Logger.Info("dnsmasq lease events from while the agent was down applied", "events", applied)
	}
}
