// Package genieacs runs a real GenieACS for the project's end-to-end tests:
// the lab that ../shared/genieacs builds (GenieACS v1.2.16 on FerretDB),
// one instance per test with ports of its own, started with its acs.sh and
// stopped, with its database removed, when the test ends. It talks to
// GenieACS's NBI (presets, provisions, tasks, devices, faults, files).
//
// A lab that is not built skips the test with a message saying how to
// build it, except under CI=true, where it fails.
package genieacs

import (
	"bytes"
	"context"
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
	"sync/atomic"
	"testing"
	"time"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
)

// Dir is the lab's directory: $ACS_DIR, else ${TMPDIR:-/tmp}/genieacs-lab,
// as ../shared/genieacs/setup.sh builds it.
func Dir() string {
	if d := os.Getenv("ACS_DIR"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "genieacs-lab")
}

// Scripts is the directory of setup.sh and acs.sh.
func Scripts() string {
	if d := os.Getenv("GENIEACS_LAB_SCRIPTS"); d != "" {
		return d
	}
	return filepath.Join(filepath.Dir(testfiles.Repo()), "shared", "genieacs")
}

// Require skips the test (or fails it under CI=true) when the lab is not
// built.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("genieacs: the GenieACS suite runs for minutes; skipped with -short")
	}
	dir := Dir()
	missing := ""
	for _, f := range []string{filepath.Join(dir, "bin", "ferretdb"), filepath.Join(dir, "src", "genieacs-1.2", "dist", "bin", "genieacs-cwmp"),
		filepath.Join(Scripts(), "acs.sh")} {
		if _, err := os.Stat(f); err != nil {
			missing = f
			break
		}
	}
	if missing == "" {
		if _, err := exec.LookPath("node"); err != nil {
			missing = "node"
		}
	}
	if missing == "" {
		return
	}
	msg := fmt.Sprintf("genieacs: the GenieACS lab is not built (%s missing): run %s/setup.sh (ACS_DIR=%s)", missing, Scripts(), dir)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; in CI a missing lab is a failure")
	}
	t.Skip(msg)
}

// Options place an instance.
type Options struct {
	// Netns runs every process of the instance inside this network
	// namespace; Dial then reaches its NBI there (netlab.Lab.Dial).
	Netns string
	Dial  func(network, address string) (net.Conn, error)
	// Bind is the address of genieacs-cwmp and genieacs-fs (default
	// 127.0.0.1); the NBI stays on 127.0.0.1.
	Bind string
	// UDPCRPort is GENIEACS_UDP_CONNECTION_REQUEST_PORT (0: random).
	UDPCRPort int
	// Env adds GENIEACS_* settings.
	Env []string
}

// Lab is one running GenieACS.
type Lab struct {
	t        testing.TB
	name     string
	env      []string
	CWMP     string // the ACS URL for CPEs
	NBI      string
	FS       string
	client   *http.Client
	instance string // its directory
}

var seq atomic.Int64

// Start runs an instance until the test ends.
func Start(t testing.TB, o Options) *Lab {
	t.Helper()
	Require(t)
	bind := o.Bind
	if bind == "" {
		bind = "127.0.0.1"
	}
	name := fmt.Sprintf("t%d-%d", os.Getpid(), seq.Add(1))
	ports := [4]int{7547, 7557, 7567, 27017} // cwmp, nbi, fs, db: free inside a namespace of its own
	if o.Netns == "" {
		for i := range ports {
			ports[i] = freePort(t)
		}
	}
	l := &Lab{t: t, name: name, instance: filepath.Join(Dir(), "inst", name)}
	l.CWMP = fmt.Sprintf("http://%s:%d/", bind, ports[0])
	l.NBI = fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	l.FS = fmt.Sprintf("http://%s:%d/", bind, ports[2])
	l.env = append(os.Environ(), "ACS_DIR="+Dir(), "ACS_INSTANCE="+name, "ACS_BIND="+bind,
		"ACS_CWMP_PORT="+strconv.Itoa(ports[0]), "ACS_NBI_PORT="+strconv.Itoa(ports[1]),
		"ACS_FS_PORT="+strconv.Itoa(ports[2]), "ACS_DB_PORT="+strconv.Itoa(ports[3]),
		"ACS_UDP_CR_PORT="+strconv.Itoa(o.UDPCRPort), "ACS_NETNS="+o.Netns,
		// acs.sh gives the file server's port to genieacs-fs only; the
		// download URLs genieacs-cwmp writes need it too.
		"GENIEACS_FS_URL_PREFIX="+l.FS)
	l.env = append(l.env, o.Env...)
	tr := &http.Transport{DisableKeepAlives: true}
	if o.Dial != nil {
		tr.DialContext = func(_ context.Context, network, addr string) (net.Conn, error) { return o.Dial(network, addr) }
	}
	l.client = &http.Client{Transport: tr, Timeout: 60 * time.Second}
	t.Cleanup(l.stop)
	if out, err := l.acs("start"); err != nil {
		t.Fatalf("genieacs: acs.sh start: %v\n%s\n%s", err, out, l.Logs())
	}
	return l
}

func (l *Lab) acs(verb string) (string, error) {
	cmd := exec.Command("bash", filepath.Join(Scripts(), "acs.sh"), verb)
	cmd.Env = l.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (l *Lab) stop() {
	if l.t.Failed() {
		l.t.Logf("genieacs logs (%s):\n%s", l.name, l.Logs())
	}
	l.acs("stop")
	os.RemoveAll(l.instance)
}

// Logs is the tail of the instance's error logs and of the CWMP access log.
func (l *Lab) Logs() string {
	var b strings.Builder
	for _, f := range []string{"cwmp.err", "nbi.err", "cwmp-access.log", "ferretdb.err"} {
		data, _ := os.ReadFile(filepath.Join(l.instance, "logs", f))
		if len(data) > 3000 {
			data = data[len(data)-3000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s", f, data)
	}
	return b.String()
}

// LogFile is the path of one of the instance's logs (debug.yaml, the
// access logs).
func (l *Lab) LogFile(name string) string { return filepath.Join(l.instance, "logs", name) }

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// DeviceID is GenieACS's ID of a CPE: OUI-ProductClass-SerialNumber, each
// part with everything but letters, digits and _ percent-escaped
// (GenieACS lib/util.ts generateDeviceId).
func DeviceID(oui, productClass, serial string) string {
	esc := func(s string) string {
		var b strings.Builder
		for _, c := range []byte(s) {
			if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' {
				b.WriteByte(c)
			} else {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		}
		return b.String()
	}
	if productClass == "" {
		return esc(oui) + "-" + esc(serial)
	}
	return esc(oui) + "-" + esc(productClass) + "-" + esc(serial)
}

// do sends one NBI request and decodes a JSON answer into out (nil: none).
func (l *Lab) do(method, path string, body []byte, hdr map[string]string, out any) (int, error) {
	req, err := http.NewRequest(method, l.NBI+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		return resp.StatusCode, fmt.Errorf("genieacs: %s %s: %s: %s", method, path, resp.Status, data)
	}
	if out != nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("genieacs: %s %s: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// PutProvision installs a provision script.
func (l *Lab) PutProvision(name, script string) error {
	_, err := l.do(http.MethodPut, "/provisions/"+url.PathEscape(name), []byte(script), nil, nil)
	return err
}

// PutPreset installs a preset running one provision on the events given
// (e.g. "0 BOOTSTRAP"; none: every session), in GenieACS's preset form.
func (l *Lab) PutPreset(name, channel, provision string, weight int, events ...string) error {
	ev := map[string]bool{}
	for _, e := range events {
		ev[e] = true
	}
	b, _ := json.Marshal(map[string]any{"weight": weight, "channel": channel, "events": ev, "precondition": "",
		"configurations": []map[string]any{{"type": "provision", "name": provision, "args": nil}}})
	_, err := l.do(http.MethodPut, "/presets/"+url.PathEscape(name), b, nil, nil)
	return err
}

var scriptRE = regexp.MustCompile("(?s)const (BOOTSTRAP|DEFAULT|INFORM)_SCRIPT = `\n?(.*?)`\\.trim\\(\\);")

// InstallDefaults installs the presets and provisions that GenieACS's own
// first-run setup creates (lib/init.ts, read from the lab's source, not
// copied here): bootstrap (on 0 BOOTSTRAP), default and inform (every
// session).
func (l *Lab) InstallDefaults() error {
	src, err := os.ReadFile(filepath.Join(Dir(), "src", "genieacs-1.2", "lib", "init.ts"))
	if err != nil {
		return err
	}
	scripts := map[string]string{}
	for _, m := range scriptRE.FindAllSubmatch(src, -1) {
		scripts[strings.ToLower(string(m[1]))] = strings.TrimSpace(string(m[2]))
	}
	for _, n := range []string{"bootstrap", "default", "inform"} {
		if scripts[n] == "" {
			return fmt.Errorf("genieacs: no %s script in lib/init.ts", n)
		}
		if err := l.PutProvision(n, scripts[n]); err != nil {
			return err
		}
	}
	if err := l.PutPreset("bootstrap", "bootstrap", "bootstrap", 0, "0 BOOTSTRAP"); err != nil {
		return err
	}
	if err := l.PutPreset("default", "default", "default", 0); err != nil {
		return err
	}
	return l.PutPreset("inform", "inform", "inform", 0)
}

// Task posts a task for a device; with connReq GenieACS sends a
// Connection Request and waits up to timeout for the task to be done. It
// returns the HTTP status (200 done, 202 queued) and the task.
func (l *Lab) Task(id string, task map[string]any, connReq bool, timeout time.Duration) (int, map[string]any, error) {
	q := "?timeout=" + strconv.Itoa(int(timeout/time.Millisecond))
	if connReq {
		q += "&connection_request"
	}
	b, _ := json.Marshal(task)
	var out map[string]any
	code, err := l.do(http.MethodPost, "/devices/"+url.PathEscape(id)+"/tasks"+q, b, nil, &out)
	return code, out, err
}

// Device returns the device's document ("_value", "_type", "_writable",
// "_object" per node), nil when GenieACS has none.
func (l *Lab) Device(id string) (map[string]any, error) {
	q, _ := json.Marshal(map[string]string{"_id": id})
	var out []map[string]any
	if _, err := l.do(http.MethodGet, "/devices/?query="+url.QueryEscape(string(q)), nil, nil, &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out[0], nil
}

// Devices lists the IDs of every device.
func (l *Lab) Devices() ([]string, error) {
	var out []map[string]any
	if _, err := l.do(http.MethodGet, "/devices/?projection=_id", nil, nil, &out); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(out))
	for _, d := range out {
		ids = append(ids, fmt.Sprint(d["_id"]))
	}
	return ids, nil
}

// Bootstrapped lists the IDs of the devices whose BOOTSTRAP GenieACS
// recorded (_lastBootstrap).
func (l *Lab) Bootstrapped() ([]string, error) {
	q := url.QueryEscape(`{"_lastBootstrap":{"$exists":true}}`)
	var out []map[string]any
	if _, err := l.do(http.MethodGet, "/devices/?projection=_id&query="+q, nil, nil, &out); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(out))
	for _, d := range out {
		ids = append(ids, fmt.Sprint(d["_id"]))
	}
	return ids, nil
}

// Faults lists the faults GenieACS holds, of one device ("" all).
func (l *Lab) Faults(id string) ([]map[string]any, error) {
	path := "/faults/"
	if id != "" {
		q, _ := json.Marshal(map[string]string{"device": id})
		path += "?query=" + url.QueryEscape(string(q))
	}
	var out []map[string]any
	_, err := l.do(http.MethodGet, path, nil, nil, &out)
	return out, err
}

// Tasks lists the tasks still queued for a device.
func (l *Lab) Tasks(id string) ([]map[string]any, error) {
	q, _ := json.Marshal(map[string]string{"device": id})
	var out []map[string]any
	_, err := l.do(http.MethodGet, "/tasks/?query="+url.QueryEscape(string(q)), nil, nil, &out)
	return out, err
}

// PutFile stores a file in genieacs-fs with its metadata.
func (l *Lab) PutFile(name, fileType, oui, productClass, version string, data []byte) error {
	_, err := l.do(http.MethodPut, "/files/"+url.PathEscape(name), data,
		map[string]string{"fileType": fileType, "oui": oui, "productClass": productClass, "version": version}, nil)
	return err
}

// Param reads one parameter node of a device document by its path.
func Param(doc map[string]any, path string) (map[string]any, bool) {
	var cur any = doc
	for _, seg := range strings.Split(strings.TrimSuffix(path, "."), ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = m[seg]
		if !ok {
			return nil, false
		}
	}
	m, ok := cur.(map[string]any)
	return m, ok
}

// Value is a parameter's value as GenieACS holds it, in the CWMP string
// form (booleans true/false, numbers in decimal), and whether it is there.
func Value(doc map[string]any, path string) (string, bool) {
	p, ok := Param(doc, path)
	if !ok {
		return "", false
	}
	v, has := p["_value"]
	if !has {
		return "", false
	}
	return scalar(v), true
}

func scalar(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case string:
		return x
	}
	return fmt.Sprint(v)
}

// Node is one node of a device document, flattened.
type Node struct {
	Path     string // objects end in "."
	Object   bool
	Value    string
	Type     string
	Writable bool
	HasValue bool
}

// Flatten lists every node under root of a device document.
func Flatten(doc map[string]any, root string) []Node {
	var out []Node
	var walk func(m map[string]any, path string)
	walk = func(m map[string]any, path string) {
		for k, v := range m {
			if strings.HasPrefix(k, "_") {
				continue
			}
			c, ok := v.(map[string]any)
			if !ok {
				continue
			}
			obj, _ := c["_object"].(bool)
			w, _ := c["_writable"].(bool)
			if obj {
				out = append(out, Node{Path: path + k + ".", Object: true, Writable: w})
				walk(c, path+k+".")
				continue
			}
			raw, has := c["_value"]
			val := scalar(raw)
			typ, _ := c["_type"].(string)
			out = append(out, Node{Path: path + k, Value: val, Type: typ, Writable: w, HasValue: has})
		}
	}
	if r, ok := doc[root].(map[string]any); ok {
		out = append(out, Node{Path: root + ".", Object: true})
		walk(r, root+".")
	}
	return out
}
