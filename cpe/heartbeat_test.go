package cpe

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/internal/clock"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
)

// HeartbeatPolicy (TR-069 Annex O): a 14 HEARTBEAT session every
// ReportingInterval in the phase of InitiationTime, its Inform carrying
// that event alone.
func TestHeartbeat(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	start := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	fake := clock.NewFake(start)
	hb := ms + "HeartbeatPolicy."
	c := device2(t, acs.URL, "HB", map[string]string{hb + "Enable": "true", hb + "ReportingInterval": "60", hb + "InitiationTime": "2026-12-01T09:00:30Z"},
		func(c *Config) { c.Agent.Clock = fake })
	testrun.Go(t, c.Run)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := "00D09E-HB"
	_, err = acs.WaitInform(ctx, id, 1)
	require.NoError(t, err)
	require.NoError(t, acs.WaitFor(ctx, func(a *cwmptest.ACS) bool { return a.Devs()[id].Sessions >= 1 }))

	fake.Advance(29 * time.Second)
	time.Sleep(100 * time.Millisecond)
	assert.Len(t, acs.Device(id).Informs, 1, "not before 10:00:30")
	fake.Advance(2 * time.Second)
	inf, err := acs.WaitInform(ctx, id, 2)
	require.NoError(t, err)
	require.Len(t, inf.Event, 1)
	assert.Equal(t, "14 HEARTBEAT", inf.Event[0].EventCode)
	fake.Advance(60 * time.Second)
	inf, err = acs.WaitInform(ctx, id, 3)
	require.NoError(t, err)
	assert.Equal(t, "14 HEARTBEAT", inf.Event[0].EventCode, "every ReportingInterval")

	require.NoError(t, c.Tree.Set(hb+"Enable", "false"))
	time.Sleep(50 * time.Millisecond)
	fake.Advance(120 * time.Second)
	time.Sleep(200 * time.Millisecond)
	assert.Len(t, acs.Device(id).Informs, 3, "disabled: no more heartbeats")
}
