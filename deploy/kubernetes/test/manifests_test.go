// Package test checks the Kubernetes manifests: rendered with kustomize's
// own Go module and decoded strictly into the Kubernetes API types, then
// run, as a fleet of three shards on this machine with the flags the pods
// get. It is a module of its own so that no binary links kustomize or the
// Kubernetes API (make test runs it).
package test

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// Measured figures the resources are sized from (README "Performance"):
// the fleet's resident memory per idle CPE at 10,000 CPEs and the process
// without CPEs.
const (
	bytesPerCPE  = 21_300
	processBytes = 25 << 20
)

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, monitoringv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// strict decodes YAML into the API types, failing on unknown, duplicate
// and mistyped fields (apimachinery's strict decoding).
var strict = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme, json.SerializerOptions{Yaml: true, Strict: true})

// manifests is one rendered kustomization: each object decoded, by kind.
type manifests struct {
	yaml       map[string][]byte // "Kind/name" -> its YAML
	jobs       []*batchv1.Job
	deploys    []*appsv1.Deployment
	services   []*corev1.Service
	configMaps []*corev1.ConfigMap
	monitors   []*monitoringv1.ServiceMonitor
	others     []runtime.Object
}

// render runs kustomize build on dir (relative to deploy/kubernetes).
func render(t *testing.T, dir string) *manifests {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join("..", dir))
	require.NoError(t, err, "kustomize build %s", dir)
	m := &manifests{yaml: map[string][]byte{}}
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		require.NoError(t, err)
		obj, gvk, err := strict.Decode(y, nil, nil)
		require.NoError(t, err, "%s/%s does not decode strictly:\n%s", r.GetKind(), r.GetName(), y)
		m.yaml[gvk.Kind+"/"+r.GetName()] = y
		switch o := obj.(type) {
		case *batchv1.Job:
			m.jobs = append(m.jobs, o)
		case *appsv1.Deployment:
			m.deploys = append(m.deploys, o)
		case *corev1.Service:
			m.services = append(m.services, o)
		case *corev1.ConfigMap:
			m.configMaps = append(m.configMaps, o)
		case *monitoringv1.ServiceMonitor:
			m.monitors = append(m.monitors, o)
		default:
			m.others = append(m.others, obj)
		}
	}
	return m
}

func (m *manifests) configMap(t *testing.T, name string) *corev1.ConfigMap {
	t.Helper()
	for _, c := range m.configMaps {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no ConfigMap %s", name)
	return nil
}

func (m *manifests) service(name string) *corev1.Service {
	for _, s := range m.services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// flag is the value of --name=value in args ("" if absent).
func flag(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func TestManifestsDecodeStrictly(t *testing.T) {
	for _, dir := range []string{"base", "overlays/example", "overlays/prometheus-operator"} {
		t.Run(dir, func(t *testing.T) {
			m := render(t, dir)
			assert.Len(t, m.jobs, 1)
			assert.Len(t, m.deploys, 1)
			assert.Len(t, m.services, 3)
			assert.Len(t, m.configMaps, 1)
			checkPods(t, m)
		})
	}
	m := render(t, "overlays/example")
	kinds := map[string]int{}
	for _, o := range m.others {
		kinds[fmt.Sprintf("%T", o)]++
	}
	assert.Equal(t, map[string]int{"*v1.Namespace": 1, "*v1.PersistentVolumeClaim": 1}, kinds)
	for _, j := range m.jobs {
		assert.Equal(t, "cwmp-loadtest", j.Namespace)
		assert.Equal(t, "ghcr.io/cwmp-agent/cwmp-agent:0.19.0", j.Spec.Template.Spec.Containers[0].Image)
	}
}

// TestStrictDecodingCatchesMistakes: the check above would see a typo or a
// wrong type in a manifest.
func TestStrictDecodingCatchesMistakes(t *testing.T) {
	m := render(t, "base")
	job := m.yaml["Job/cwmp-fleet"]
	require.NotEmpty(t, job)
	for name, edit := range map[string][2]string{
		"unknown field": {"restartPolicy: Never", "restartPolicy: Never\n      restartPolicyy: Never"},
		"mistyped":      {"completions: 3", "completions: three"},
		"duplicate":     {"parallelism: 3", "parallelism: 3\n  parallelism: 4"},
	} {
		bad := bytes.Replace(job, []byte(edit[0]), []byte(edit[1]), 1)
		require.NotEqual(t, job, bad, name)
		_, _, err := strict.Decode(bad, nil, nil)
		assert.Error(t, err, name)
	}
}

// checkPods checks what the API accepts but would not work: each pod's
// references (ConfigMaps and keys, volumes, ports, $(VAR)s), its security,
// and the Services' selectors.
func checkPods(t *testing.T, m *manifests) {
	t.Helper()
	type pod struct {
		name   string
		labels map[string]string
		spec   corev1.PodSpec
	}
	var pods []pod
	for _, j := range m.jobs {
		pods = append(pods, pod{j.Name, j.Spec.Template.Labels, j.Spec.Template.Spec})
	}
	for _, d := range m.deploys {
		pods = append(pods, pod{d.Name, d.Spec.Template.Labels, d.Spec.Template.Spec})
		assert.Equal(t, d.Spec.Selector.MatchLabels["app.kubernetes.io/name"], d.Spec.Template.Labels["app.kubernetes.io/name"])
	}
	for _, p := range pods {
		sc := p.spec.SecurityContext
		require.NotNil(t, sc, p.name)
		assert.True(t, *sc.RunAsNonRoot, "%s runs as non-root", p.name)
		assert.NotZero(t, *sc.RunAsUser, p.name)
		vols := map[string]corev1.Volume{}
		for _, v := range p.spec.Volumes {
			vols[v.Name] = v
			if v.ConfigMap != nil {
				m.configMap(t, v.ConfigMap.Name)
			}
		}
		for _, c := range p.spec.Containers {
			assert.True(t, strings.HasPrefix(c.Command[0], "/usr/bin/cwmp-"), "%s runs one of the image's programs", c.Command[0])
			csc := c.SecurityContext
			require.NotNil(t, csc)
			assert.False(t, *csc.AllowPrivilegeEscalation)
			assert.True(t, *csc.ReadOnlyRootFilesystem)
			assert.Equal(t, []corev1.Capability{"ALL"}, csc.Capabilities.Drop)
			for _, vm := range c.VolumeMounts {
				assert.Contains(t, vols, vm.Name, "%s mounts a volume it has", c.Name)
			}
			env := map[string]bool{}
			for _, e := range c.Env {
				env[e.Name] = true
				if r := e.ValueFrom; r != nil && r.ConfigMapKeyRef != nil {
					cm := m.configMap(t, r.ConfigMapKeyRef.Name)
					assert.Contains(t, cm.Data, r.ConfigMapKeyRef.Key)
				}
			}
			for _, a := range c.Args {
				for _, ref := range varRef.FindAllStringSubmatch(a, -1) {
					assert.True(t, env[ref[1]], "%s: $(%s) is in the container's environment (else Kubernetes leaves it as it is)", a, ref[1])
				}
			}
			ports := map[string]bool{}
			for _, cp := range c.Ports {
				ports[cp.Name] = true
			}
			for _, pr := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
				require.NotNil(t, pr, "%s has readiness and liveness probes", c.Name)
				assert.True(t, ports[pr.HTTPGet.Port.StrVal], "probe port %s is a named port", pr.HTTPGet.Port.StrVal)
			}
			assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
			assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
			req, lim := c.Resources.Requests.Memory(), c.Resources.Limits.Memory()
			assert.False(t, req.IsZero(), "%s requests memory", c.Name)
			assert.LessOrEqual(t, req.Cmp(*lim), 0, "request within the limit")
		}
	}
	for _, s := range m.services {
		matched := false
		for _, p := range pods {
			ok := len(s.Spec.Selector) > 0
			for k, v := range s.Spec.Selector {
				ok = ok && p.labels[k] == v
			}
			if !ok {
				continue
			}
			matched = true
			for _, sp := range s.Spec.Ports {
				found := false
				for _, c := range p.spec.Containers {
					for _, cp := range c.Ports {
						found = found || (cp.Name == sp.TargetPort.StrVal && cp.Protocol == sp.Protocol)
					}
				}
				assert.True(t, found, "Service %s port %s targets a port of %s", s.Name, sp.Name, p.name)
			}
		}
		assert.True(t, matched, "Service %s selects pods", s.Name)
		if s.Annotations["prometheus.io/scrape"] == "true" {
			port := s.Annotations["prometheus.io/port"]
			found := false
			for _, sp := range s.Spec.Ports {
				found = found || strconv.Itoa(int(sp.Port)) == port
			}
			assert.True(t, found, "Service %s: the scrape port %s is one of its ports", s.Name, port)
		}
	}
}

// TestServiceMonitors: for the Prometheus Operator, each ServiceMonitor
// selects exactly one Service, which has the port it scrapes.
func TestServiceMonitors(t *testing.T) {
	m := render(t, "overlays/prometheus-operator")
	require.Len(t, m.monitors, 2)
	for _, sm := range m.monitors {
		var selected []*corev1.Service
		for _, s := range m.services {
			ok := true
			for k, v := range sm.Spec.Selector.MatchLabels {
				ok = ok && s.Labels[k] == v
			}
			if ok {
				selected = append(selected, s)
			}
		}
		require.Len(t, selected, 1, "ServiceMonitor %s selects one Service", sm.Name)
		for _, ep := range sm.Spec.Endpoints {
			found := false
			for _, p := range selected[0].Spec.Ports {
				found = found || p.Name == ep.Port
			}
			assert.True(t, found, "ServiceMonitor %s scrapes port %q of %s", sm.Name, ep.Port, selected[0].Name)
			assert.Equal(t, "/metrics", ep.Path)
		}
	}
}

// TestFleetJob: an Indexed Job whose shards agree with the fleet's flags,
// sized from the measured memory per CPE.
func TestFleetJob(t *testing.T) {
	for _, dir := range []string{"base", "overlays/example"} {
		t.Run(dir, func(t *testing.T) {
			m := render(t, dir)
			j := m.jobs[0]
			require.NotNil(t, j.Spec.CompletionMode)
			assert.Equal(t, batchv1.IndexedCompletion, *j.Spec.CompletionMode, "each pod takes its shard from its completion index")
			c := j.Spec.Template.Spec.Containers[0]
			shards, err := strconv.Atoi(flag(c.Args, "shards"))
			require.NoError(t, err, "--shards is given")
			assert.Equal(t, int32(shards), *j.Spec.Completions, "--shards is the number of completions")
			assert.Equal(t, int32(shards), *j.Spec.Parallelism, "every shard runs at once")
			assert.Equal(t, corev1.RestartPolicyNever, j.Spec.Template.Spec.RestartPolicy)
			var idx *corev1.EnvVar
			for i := range c.Env {
				if c.Env[i].Name == "JOB_COMPLETION_INDEX" {
					idx = &c.Env[i]
				}
			}
			require.NotNil(t, idx, "the index is in the environment cwmp-fleet reads")
			assert.Equal(t, "metadata.annotations['batch.kubernetes.io/job-completion-index']", idx.ValueFrom.FieldRef.FieldPath)
			assert.Contains(t, flag(c.Args, "report"), "$(JOB_COMPLETION_INDEX)", "one report file per shard")
			assert.Equal(t, "$(POD_IP)", flag(c.Args, "cr-host"), "each CPE announces its pod's address")

			// Memory: what the measured figures say the shard's CPEs hold.
			count, err := strconv.Atoi(flag(c.Args, "count"))
			require.NoError(t, err)
			need := resource.NewQuantity(int64(count)*bytesPerCPE+processBytes, resource.BinarySI)
			assert.GreaterOrEqual(t, c.Resources.Requests.Memory().Cmp(*need), 0,
				"%d CPEs need %s; the request is %s", count, need, c.Resources.Requests.Memory())
			assert.GreaterOrEqual(t, c.Resources.Limits.Memory().Value(), c.Resources.Requests.Memory().Value()*3/2,
				"room above the request for the ramp's garbage")
			assert.Equal(t, "9464", j.Spec.Template.Annotations["prometheus.io/port"])
			cm := m.configMap(t, j.Spec.Template.Spec.Volumes[0].ConfigMap.Name)
			assert.Contains(t, cm.Data["fleet.yaml"], `listen: ":9464"`, "the scrape port is the configured metrics port")
			for _, f := range []string{"config", "template"} {
				p := flag(c.Args, f)
				assert.True(t, strings.HasPrefix(p, "/etc/cwmp-fleet/"), p)
				assert.Contains(t, cm.Data, filepath.Base(p), "--%s names a file of the ConfigMap", f)
			}
			fleetSvc := m.service("cwmp-fleet")
			require.NotNil(t, fleetSvc)
			assert.Equal(t, corev1.ClusterIPNone, fleetSvc.Spec.ClusterIP, "headless: Prometheus finds every pod")
		})
	}
}

// TestSTUNService: the STUN server's UDP service keeps client source
// addresses (TR-111 2.2.2: the server answers and records the address it
// sees).
func TestSTUNService(t *testing.T) {
	m := render(t, "base")
	s := m.service("cwmp-stun-server")
	require.NotNil(t, s)
	assert.Equal(t, corev1.ServiceTypeLoadBalancer, s.Spec.Type)
	assert.Equal(t, corev1.ServiceExternalTrafficPolicyLocal, s.Spec.ExternalTrafficPolicy)
	require.Len(t, s.Spec.Ports, 1)
	assert.Equal(t, corev1.ProtocolUDP, s.Spec.Ports[0].Protocol)
	assert.Equal(t, int32(3478), s.Spec.Ports[0].Port)
	d := m.deploys[0]
	assert.Equal(t, int32(1), *d.Spec.Replicas, "bindings live in one process")
	assert.Equal(t, appsv1.RecreateDeploymentStrategyType, d.Spec.Strategy.Type, "never two servers answering for one address")
	args := d.Spec.Template.Spec.Containers[0].Args
	assert.Equal(t, ":9465", flag(args, "metrics-listen"))
	assert.Equal(t, ":3478", flag(args, "listen"))
}

// TestDockerfile: a static build on a distroless base, as a non-root user,
// with the programs where the manifests run them.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	df := string(b)
	var froms []string
	var user string
	for _, l := range strings.Split(df, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, f[1])
		case "USER":
			user = f[1]
		}
	}
	require.Len(t, froms, 2, "a build stage and the image")
	assert.True(t, strings.HasPrefix(froms[1], "gcr.io/distroless/static") || froms[1] == "scratch", "the image is distroless or scratch: %s", froms[1])
	assert.Contains(t, df, "CGO_ENABLED=0", "a static binary: the base has no libc")
	uid, _, _ := strings.Cut(user, ":")
	n, err := strconv.Atoi(uid)
	require.NoError(t, err, "USER is numeric (runAsNonRoot checks it)")
	assert.NotZero(t, n)
	assert.Contains(t, df, "COPY --from=build /out/ /usr/bin/")
	for _, c := range []string{"cwmp-agent", "cwmp-fleet", "cwmp-stun-server"} {
		assert.Contains(t, df, c, "the image holds %s", c)
	}
	m := render(t, "base")
	for _, j := range m.jobs {
		assert.Equal(t, int64(n), *j.Spec.Template.Spec.SecurityContext.RunAsUser, "the pods run as the image's user")
	}

	// The build stage's RUN, as the image builds it (no container runtime
	// here): three static executables, no dynamic loader.
	if testing.Short() {
		return
	}
	run := regexp.MustCompile(`(?s)\nRUN (set -e; for c in .*?done)\n`).FindStringSubmatch(df)
	require.NotNil(t, run, "the build's RUN")
	out := t.TempDir()
	script := strings.ReplaceAll(strings.ReplaceAll(run[1], "\\\n", " "), "/out/", out+"/")
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = filepath.Join("..", "..", "..")
	cmd.Env = append(os.Environ(), "VERSION=image-test")
	b, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", script, b)
	for _, c := range []string{"cwmp-agent", "cwmp-fleet", "cwmp-stun-server"} {
		f, err := elf.Open(filepath.Join(out, c))
		require.NoError(t, err)
		for _, p := range f.Progs {
			assert.NotEqual(t, elf.PT_INTERP, p.Type, "%s is static", c)
		}
		f.Close()
		v, err := exec.Command(filepath.Join(out, c), "version").Output()
		require.NoError(t, err)
		assert.Contains(t, string(v), "image-test", "%s is version stamped", c)
	}
}
