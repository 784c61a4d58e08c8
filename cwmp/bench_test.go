package cwmp

import (
	"context"
	"net/http"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
)

// BenchmarkConnectionRequestRoundTrip measures, on loopback, a complete
// HTTP Connection Request (the 401 challenge and the Digest GET) and the
// session it starts (Inform, empty POST, 204) until the ACS has seen it end.
// Target: under 10 ms.
func BenchmarkConnectionRequestRoundTrip(b *testing.B) {
	h := newHarness(b, withConfig(func(c *Config) { c.Logger = nil }))
	h.acs.Record(false)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := h.acs.WaitSessions(ctx, testID, 1); err != nil {
		b.Fatal(err)
	}
	h.cr.Burst, h.cr.Every = 1<<30, time.Nanosecond
	h.cr.limit = rate.NewLimiter(rate.Every(h.cr.Every), h.cr.Burst)
	url := h.tree.MustGet("Device.ManagementServer.ConnectionRequestURL")
	n := 1
	b.ResetTimer()
	for b.Loop() {
		n++
		st, err := cwmptest.ConnectionRequest(ctx, url, "cruser", "crpass")
		for tries := 0; err == nil && st == http.StatusServiceUnavailable && tries < 100; tries++ {
			// The agent is still closing the last session (the ACS saw its
			// end first): a Connection Request then is refused, rightly.
			time.Sleep(100 * time.Microsecond)
			st, err = cwmptest.ConnectionRequest(ctx, url, "cruser", "crpass")
		}
		if err != nil || st != http.StatusOK {
			b.Fatal(st, err)
		}
		if err := h.acs.WaitSessions(ctx, testID, n); err != nil {
			b.Fatal(err)
		}
	}
}
