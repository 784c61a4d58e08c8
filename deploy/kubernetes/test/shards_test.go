package test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// build compiles a program of the main module (two directories up from
// deploy/kubernetes) with the Makefile's tags.
func build(t *testing.T, cmd string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), cmd)
	c := exec.Command("go", "build", "-tags", "nethttpomithttp2", "-o", out, "./cmd/"+cmd)
	c.Dir = filepath.Join("..", "..", "..")
	b, err := c.CombinedOutput()
	require.NoError(t, err, "go build %s: %s", cmd, b)
	return out
}

// proc is a started program whose standard error is searched as it comes.
type proc struct {
	cmd   *exec.Cmd
	lines chan string
	log   strings.Builder
	done  chan error
}

func start(t *testing.T, env []string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), lines: make(chan string, 1024), done: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	require.NoError(t, err)
	stdout, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	read := func(r io.Reader) {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}
	go read(stdout)
	go read(stderr)
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// await returns the first submatch of re in the program's output.
func (p *proc) await(t *testing.T, re *regexp.Regexp, within time.Duration) string {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case l := <-p.lines:
			p.log.WriteString(l + "\n")
			if m := re.FindStringSubmatch(l); m != nil {
				return m[1]
			}
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s ended (%v) before printing %s:\n%s", p.cmd.Path, err, re, p.log.String())
		case <-deadline:
			t.Fatalf("%s printed no %s within %s:\n%s", p.cmd.Path, re, within, p.log.String())
		}
	}
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(t, err, "%s exits cleanly at SIGTERM:\n%s", p.cmd.Path, p.log.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not stop at SIGTERM", p.cmd.Path)
	}
}

// metric reads one sample from a Prometheus exposition.
func metric(t *testing.T, addr, series string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// expand does what the kubelet does with $(VAR) in args.
func expand(s string, env map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(ref string) string {
		if v, ok := env[ref[2:len(ref)-1]]; ok {
			return v
		}
		return ref
	})
}

// TestThreeShards runs the rendered Job's fleet container three times on
// this machine, as pods 0, 1 and 2 of the Indexed Job would run it: its
// command and flags as rendered (with --count scaled down and --shards set
// to three), JOB_COMPLETION_INDEX and POD_IP as Kubernetes sets them, the
// ConfigMap's files where the pod mounts them. What differs from a pod is
// given through the environment the agent reads (CWMP_AGENT_*): the test
// ACS's URL, loopback ports, temporary directories. Together the three
// behave as one fleet of the sum: distinct serial numbers and Connection
// Request ports, every CPE bootstrapped, one merged report.
func TestThreeShards(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs three fleets (-short)")
	}
	const shards, perShard = 3, 150
	fleetBin := build(t, "cwmp-fleet")
	m := render(t, "base")
	job := m.jobs[0]
	c := job.Spec.Template.Spec.Containers[0]
	require.Equal(t, []string{"/usr/bin/cwmp-fleet"}, c.Command)

	// The pod's files.
	dir := t.TempDir()
	var cmName string
	for _, v := range job.Spec.Template.Spec.Volumes {
		if v.Name == "config" {
			cmName = v.ConfigMap.Name // with kustomize's hash suffix
		}
	}
	cm := m.configMap(t, cmName)
	var mount string
	for _, vm := range c.VolumeMounts {
		if vm.Name == "config" {
			mount = vm.MountPath
		}
	}
	require.NotEmpty(t, mount)
	confDir := filepath.Join(dir, "config")
	require.NoError(t, os.MkdirAll(confDir, 0o755))
	for name, data := range cm.Data {
		require.NoError(t, os.WriteFile(filepath.Join(confDir, name), []byte(data), 0o644))
	}
	reports := filepath.Join(dir, "reports")
	require.NoError(t, os.MkdirAll(reports, 0o755))

	acs := start(t, nil, fleetBin, "test-acs", "--listen", "127.0.0.1:0", "--summary", filepath.Join(dir, "summary.json"))
	acsURL := acs.await(t, regexp.MustCompile(`^(http://\S+)$`), 10*time.Second)

	// Free loopback ports for shard 0's listeners; shard i adds i.
	crBase := freePorts(t, shards)
	var fleets []*proc
	var metricsAddrs []string
	for i := range shards {
		env := map[string]string{"POD_IP": "127.0.0.1", "JOB_COMPLETION_INDEX": strconv.Itoa(i)}
		var procEnv []string
		for _, e := range c.Env {
			switch {
			case e.Value != "":
				env[e.Name] = e.Value
			case e.Name == "CWMP_AGENT_ACS_URL":
				env[e.Name] = acsURL // the ConfigMap's acs-url, here the test ACS
			}
			if v, ok := env[e.Name]; ok {
				procEnv = append(procEnv, e.Name+"="+v)
			}
		}
		procEnv = append(procEnv,
			"CWMP_AGENT_CONNECTION_REQUEST_LISTEN=127.0.0.1:"+strconv.Itoa(crBase),
			"CWMP_AGENT_UDP_CONNECTION_REQUEST_LISTEN=127.0.0.1:"+strconv.Itoa(crBase),
			"CWMP_AGENT_METRICS_LISTEN=127.0.0.1:0",
			"CWMP_AGENT_STATE_DIR="+filepath.Join(dir, "state"))
		var args []string
		for _, a := range c.Args {
			a = expand(a, env)
			switch {
			case strings.HasPrefix(a, "--count="):
				a = "--count=" + strconv.Itoa(perShard)
			case strings.HasPrefix(a, "--shards="):
				a = "--shards=" + strconv.Itoa(shards)
			}
			a = strings.ReplaceAll(a, mount+"/", confDir+"/")
			a = strings.ReplaceAll(a, "=/reports/", "="+reports+"/")
			args = append(args, a)
		}
		f := start(t, procEnv, fleetBin, args...)
		fleets = append(fleets, f)
		metricsAddrs = append(metricsAddrs, f.await(t, regexp.MustCompile(`metrics on http://(\S+)/metrics`), 60*time.Second))
	}
	// Every CPE of every shard up, as each shard's metrics say.
	deadline := time.Now().Add(2 * time.Minute)
	for i, addr := range metricsAddrs {
		for metric(t, addr, `cwmp_fleet_cpes{state="up"}`) != perShard {
			if time.Now().After(deadline) {
				t.Fatalf("shard %d: %v CPEs up of %d", i, metric(t, addr, `cwmp_fleet_cpes{state="up"}`), perShard)
			}
			time.Sleep(100 * time.Millisecond)
		}
		assert.Equal(t, float64(perShard), metric(t, addr, "cwmp_fleet_size"))
		assert.Equal(t, 1.0, metric(t, addr, "cwmp_fleet_ramp_progress_ratio"))
		assert.GreaterOrEqual(t, metric(t, addr, `cwmp_session_events_total{event="0 BOOTSTRAP"}`), float64(perShard))
		resp, err := http.Get("http://" + addr + "/readyz")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode, "shard %d ready once its ramp is done", i)
	}
	for _, f := range fleets {
		f.stop(t) // as Kubernetes stops a pod
	}
	acs.stop(t)

	// The ACS's view: one fleet of 450 distinct CPEs.
	var sum struct {
		Devices int `json:"devices"`
		CPEs    []struct {
			ID           string `json:"id"`
			Bootstrapped bool   `json:"bootstrapped"`
			URL          string `json:"connection_request_url"`
		} `json:"cpes"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &sum))
	assert.Equal(t, shards*perShard, sum.Devices, "distinct serial numbers: a device each")
	ports := map[string]int{}
	for n, d := range sum.CPEs {
		assert.True(t, d.Bootstrapped, d.ID)
		assert.Equal(t, fmt.Sprintf("00D09E-Sim-SIM%06d", n+1), d.ID, "serials 1 to 450 in order, none twice")
		u, err := url.Parse(d.URL)
		require.NoError(t, err)
		assert.Equal(t, "127.0.0.1", u.Hostname(), "the CPE announces $(POD_IP)")
		shard := n / perShard
		assert.Equal(t, strconv.Itoa(crBase+shard), u.Port(), "%s: shard %d's Connection Request port", d.ID, shard)
		ports[u.Port()]++
	}
	assert.Len(t, ports, shards)

	// One report across the shards.
	var files []string
	for i := range shards {
		p := filepath.Join(reports, fmt.Sprintf("shard-%d.json", i))
		files = append(files, p)
		_, err := os.Stat(strings.TrimSuffix(p, ".json") + ".html")
		assert.NoError(t, err, "the HTML page beside shard %d's report", i)
	}
	merged := filepath.Join(dir, "merged.json")
	out, err := exec.Command(fleetBin, append([]string{"report", "merge", "--out", merged, "--html", filepath.Join(dir, "merged.html")}, files...)...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	var r struct {
		Count  int               `json:"count"`
		Up     int               `json:"up"`
		Shards int               `json:"shards"`
		Events map[string]uint64 `json:"events"`
		Hist   struct {
			Count uint64 `json:"count"`
		} `json:"latency_histogram"`
		Sessions uint64 `json:"sessions"`
		Errors   uint64 `json:"errors"`
	}
	b, err = os.ReadFile(merged)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &r))
	assert.Equal(t, shards*perShard, r.Count)
	assert.Equal(t, shards*perShard, r.Up)
	assert.Equal(t, shards, r.Shards)
	assert.Equal(t, uint64(shards*perShard), r.Events["0 BOOTSTRAP"])
	assert.Equal(t, r.Sessions-r.Errors, r.Hist.Count)
}

// freePorts finds n consecutive loopback ports free for TCP and UDP,
// below the ephemeral range.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for try := range 200 {
		base := 20000 + (os.Getpid()*7+try*101)%12000
		ok := true
		var open []io.Closer
		for p := base; p < base+n && ok; p++ {
			addr := "127.0.0.1:" + strconv.Itoa(p)
			l, err := net.Listen("tcp", addr)
			if err != nil {
				ok = false
				break
			}
			open = append(open, l)
			u, err := net.ListenPacket("udp", addr)
			if err != nil {
				ok = false
				break
			}
			open = append(open, u)
		}
		for _, c := range open {
			c.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free loopback ports")
	return 0
}
