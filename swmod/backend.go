package swmod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/cwmp-agent/cwmp-agent/cwmp"
)

// Package is what an Install or Update gives the backend.
type Package struct {
	File    string // the downloaded package
	URL     string
	UUID    string // the deployment unit's (an Update's: the installed one's)
	ExecEnv string // the execution environment's name
}

// Unit is a deployment unit as the backend describes it.
type Unit struct {
	Name        string     `json:"name"`
	Version     string     `json:"version"`
	Vendor      string     `json:"vendor,omitempty"`
	Description string     `json:"description,omitempty"`
	UUID        string     `json:"uuid,omitempty"` // "" lets the manager make one
	Units       []ExecUnit `json:"execution_units,omitempty"`
}

// ExecUnit is one execution unit of a deployment unit.
type ExecUnit struct {
	Name        string `json:"name"`
	Version     string `json:"version,omitempty"`
	Vendor      string `json:"vendor,omitempty"`
	Description string `json:"description,omitempty"`
	Active      bool   `json:"active,omitempty"`
}

// Backend installs, updates and removes deployment units on the device. An
// error made with cwmp.Fault names the fault the operation reports (9001,
// 9027...); any other is 9001 Request denied.
type Backend interface {
	Install(ctx context.Context, p Package) (Unit, error)
	Update(ctx context.Context, current Unit, p Package) (Unit, error)
	Uninstall(ctx context.Context, u Unit) error
}

// Hook runs a command for each operation, so that a vendor plugs in opkg,
// apk, a container runtime or its own installer:
//
//	COMMAND install FILE      COMMAND update FILE      COMMAND uninstall NAME
//
// with CWMP_DU_UUID, CWMP_DU_URL, CWMP_DU_NAME, CWMP_DU_VERSION and
// CWMP_DU_EXECENV in its environment. For install and update it prints the
// unit as JSON on its standard output ({"name":..., "version":...,
// "vendor":..., "description":..., "execution_units":[{"name":...}]}). A
// non-zero exit fails the operation; a JSON {"fault": 9027, "message":
// "..."} on its output names the fault (else 9001).
type Hook struct {
	Command string
	Timeout time.Duration // 0 means 10 minutes
}

func (h *Hook) run(ctx context.Context, op, arg string, env map[string]string) ([]byte, error) {
	timeout := h.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.Command, op, arg)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limited{b: &out, n: 1 << 20}, &limited{b: &errb, n: 64 << 10}
	err := cmd.Run()
	if err != nil {
		var f struct {
			Fault   int    `json:"fault"`
			Message string `json:"message"`
		}
		if json.Unmarshal(bytes.TrimSpace(out.Bytes()), &f) == nil && f.Fault != 0 {
			return nil, cwmp.Fault(f.Fault, "%s", f.Message)
		}
		msg := strings.TrimSpace(errb.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, cwmp.Fault(cwmp.FaultRequestDenied, "%s %s: %s", h.Command, op, msg)
	}
	return out.Bytes(), nil
}

type limited struct {
	b *bytes.Buffer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func hookEnv(u Unit, p Package) map[string]string {
	return map[string]string{"CWMP_DU_UUID": firstNonEmpty(p.UUID, u.UUID), "CWMP_DU_URL": p.URL, "CWMP_DU_NAME": u.Name,
		"CWMP_DU_VERSION": u.Version, "CWMP_DU_EXECENV": p.ExecEnv}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (h *Hook) unit(out []byte) (Unit, error) {
	var u Unit
	if err := json.Unmarshal(bytes.TrimSpace(out), &u); err != nil || u.Name == "" {
		return Unit{}, cwmp.Fault(cwmp.FaultRequestDenied, "%s: its output is not a unit ({\"name\":...,\"version\":...})", h.Command)
	}
	return u, nil
}

func (h *Hook) Install(ctx context.Context, p Package) (Unit, error) {
	out, err := h.run(ctx, "install", p.File, hookEnv(Unit{}, p))
	if err != nil {
		return Unit{}, err
	}
	return h.unit(out)
}

func (h *Hook) Update(ctx context.Context, cur Unit, p Package) (Unit, error) {
	out, err := h.run(ctx, "update", p.File, hookEnv(cur, p))
	if err != nil {
		return Unit{}, err
	}
	return h.unit(out)
}

func (h *Hook) Uninstall(ctx context.Context, u Unit) error {
	_, err := h.run(ctx, "uninstall", u.Name, hookEnv(u, Package{UUID: u.UUID}))
	return err
}

// Virtual follows the operations without installing anything (a fleet's
// CPEs, or a device without a hook): a unit's name and version come from
// the package (a JSON unit, as a hook prints it) or from its file name
// (NAME_VERSION.ipk, NAME-VERSION.tar.gz...), and Fail makes an operation
// fail with a fault, as ACS tests need.
type Virtual struct {
	Fail map[string]int // "install", "update", "uninstall" -> fault code
}

var pkgName = regexp.MustCompile(`^(.+?)[_-](\d[0-9A-Za-z.~+]*)(?:[_-][0-9A-Za-z]+)?\.(?:ipk|deb|apk|rpm|tar\.gz|tgz|tar|zip|bin|pkg|img)$`)

func (v *Virtual) fail(op string) error {
	if code := v.Fail[op]; code != 0 {
		return cwmp.Fault(code, "virtual: %s configured to fail", op)
	}
	return nil
}

func (v *Virtual) describe(p Package) Unit {
	if b, err := os.ReadFile(p.File); err == nil && len(b) < 1<<20 {
		var u Unit
		if json.Unmarshal(bytes.TrimSpace(b), &u) == nil && u.Name != "" {
			return u
		}
	}
	base := path.Base(strings.SplitN(p.URL, "?", 2)[0])
	u := Unit{Name: strings.TrimSuffix(base, path.Ext(base)), Version: "1.0"}
	if m := pkgName.FindStringSubmatch(base); m != nil {
		u.Name, u.Version = m[1], m[2]
	}
	if u.Name == "" || u.Name == "." || u.Name == "/" {
		u.Name = "unit"
	}
	u.Units = []ExecUnit{{Name: u.Name, Version: u.Version, Active: true}}
	return u
}

func (v *Virtual) Install(_ context.Context, p Package) (Unit, error) {
	if err := v.fail("install"); err != nil {
		return Unit{}, err
	}
	return v.describe(p), nil
}

func (v *Virtual) Update(_ context.Context, cur Unit, p Package) (Unit, error) {
	if err := v.fail("update"); err != nil {
		return Unit{}, err
	}
	u := v.describe(p)
	if u.Name != cur.Name && !strings.HasPrefix(u.Name, cur.Name) {
		u.Name = cur.Name
	}
	return u, nil
}

func (v *Virtual) Uninstall(context.Context, Unit) error { return v.fail("uninstall") }

var errNoBackend = errors.New("swmod: no backend")

func faultOf(err error, def int) (int, string) {
	if code, msg := cwmp.FaultOf(err); code != 0 {
		return code, msg
	}
	if err == nil {
		return 0, ""
	}
	return def, fmt.Sprint(err)
}
