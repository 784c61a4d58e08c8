package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/fleet"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/genieacs"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testbin"
)

// envInt reads a tuning knob of the suite.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestGenieACSFleet: cwmp-fleet brings 500 virtual CPEs to GenieACS (its
// first-run provisions installed) at a rate it sustains on this machine.
// Every CPE completes BOOTSTRAP, GenieACS holds no fault, and the 503
// answers GenieACS gives above its concurrency limit are honoured (each
// CPE turned away waits its Retry-After) and counted in the report.
//
// E2E_FLEET_COUNT and E2E_FLEET_RATE (CPEs started per second) change
// the run.
func TestGenieACSFleet(t *testing.T) {
	genieacs.Require(t)
	count := envInt("E2E_FLEET_COUNT", 500)
	// 10 per second is what GenieACS (one worker on FerretDB) sustains
	// on a 2-core machine; at 20 it turns a third of them away with 503.
	rate := envInt("E2E_FLEET_RATE", 10)
	acs := genieacs.Start(t, genieacs.Options{})
	require.NoError(t, acs.InstallDefaults())

	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")
	cmd := exec.Command(testbin.MustBuild("cwmp-fleet"), "run", "--count", strconv.Itoa(count), "--rate", strconv.Itoa(rate),
		"--acs-url", acs.CWMP, "--cr-listen", "127.0.0.1:0", "--serial-pattern", "GA%05d", "--report", report, "--quiet",
		"--log-level", "warn")
	logf, err := os.Create(filepath.Join(dir, "fleet.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	start := time.Now()
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "fleet.log"))
			t.Logf("fleet log:\n%s", tail(string(b), 4000))
		}
	})

	// Ramp-up at the rate, then up to two Retry-After periods (60 s each)
	// for CPEs GenieACS turned away.
	within := time.Duration(count/rate)*time.Second + 3*time.Minute
	var booted []string
	lastLog := time.Now()
	eventually(t, within, func() bool {
		select {
		case err := <-done:
			done <- err
			b, _ := os.ReadFile(filepath.Join(dir, "fleet.log"))
			t.Fatalf("the fleet exited (%v):\n%s", err, b)
		default:
		}
		booted, _ = acs.Bootstrapped()
		if time.Since(lastLog) > 15*time.Second {
			t.Logf("%v: %d of %d bootstrapped", time.Since(start).Round(time.Second), len(booted), count)
			lastLog = time.Now()
		}
		return len(booted) == count
	}, "every CPE completes BOOTSTRAP")
	took := time.Since(start)
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		require.NoError(t, err, "the fleet stops cleanly at SIGINT")
		done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("the fleet did not stop within 30 s of SIGINT")
	}

	faults, err := acs.Faults("")
	require.NoError(t, err)
	assert.Empty(t, faults, "GenieACS holds no fault")
	for i := 1; i <= count; i++ {
		assert.Contains(t, booted, genieacs.DeviceID("00D09E", "Sim", fmt.Sprintf("GA%05d", i)))
	}

	data, err := os.ReadFile(report)
	require.NoError(t, err)
	var r fleet.Report
	require.NoError(t, json.Unmarshal(data, &r))
	assert.Equal(t, count, r.Up, "every CPE's last session succeeded")
	assert.Equal(t, uint64(count), r.Events["0 BOOTSTRAP"], "one BOOTSTRAP delivered per CPE")
	assert.Equal(t, uint64(0), r.ACSBusy.RetriedEarly, "no CPE came back before its Retry-After")
	assert.Equal(t, r.ErrorKinds["http 503"], r.ACSBusy.Answers, "the report counts GenieACS's 503s")
	if r.ACSBusy.Answers > 0 {
		assert.Equal(t, uint64(60), r.ACSBusy.RetryAfterMaxSec, "GenieACS's Retry-After")
	}
	t.Logf("%d CPEs bootstrapped in %v (%.1f CPEs/s), %d sessions (events %v), %d answered 503 (Retry-After %d s), error kinds %v; fleet RSS %d MB, %d KB per CPE",
		count, took.Round(time.Second), float64(count)/took.Seconds(), r.Sessions, r.Events, r.ACSBusy.Answers, r.ACSBusy.RetryAfterMaxSec,
		r.ErrorKinds, r.RSSBytes>>20, r.RSSPerCPE>>10)
}
