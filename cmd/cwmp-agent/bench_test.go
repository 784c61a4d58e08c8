package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
)

// BenchmarkIdleRSS starts the agent binary against a loopback ACS, lets it
// finish its first session and sit idle, and reports its resident memory
// (VmRSS). Target: under 15 MB.
func BenchmarkIdleRSS(b *testing.B) {
	acs, err := cwmptest.New()
	if err != nil {
		b.Fatal(err)
	}
	defer acs.Close()
	var rss float64
	for b.Loop() {
		dir := b.TempDir()
		cfg := filepath.Join(dir, "c.yaml")
		os.WriteFile(cfg, []byte("acs: {url: "+acs.URL+"}\ndevice: {oui: 00D09E, serial_number: RSS1}\nstate_dir: "+dir+
			"/state\nconnection_request: {listen: '127.0.0.1:0'}\nudp_connection_request: {listen: '127.0.0.1:0'}\ncontrol: {socket: "+dir+"/s}\n"), 0o600)
		cmd := exec.Command(binary, "run", "--config", cfg)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := acs.WaitSessions(ctx, "00D09E-RSS1", 1)
		cancel()
		if err != nil {
			cmd.Process.Kill()
			b.Fatal(err, errb.String())
		}
		time.Sleep(2 * time.Second)
		st, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/status")
		cmd.Process.Kill()
		cmd.Wait()
		if err != nil {
			b.Skip("no /proc: ", err)
		}
		for _, l := range strings.Split(string(st), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				rss = kb * 1024
			}
		}
	}
	b.ReportMetric(rss/1e6, "RSS-MB")
}
