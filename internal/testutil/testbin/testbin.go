// Package testbin builds the project's commands for tests that run them
// as a user would, as `make build` does (static, stripped), once per test
// binary.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
)

// Tags are the build tags `make build` and `make cross` use (the Makefile's
// TAGS; a repository test keeps the two equal).
const Tags = "nethttpomithttp2"

var (
	mu    sync.Mutex
	dir   string
	built = map[string]string{}
)

// Build returns the path of the command cmd ("cwmp-agent", "cwmp-fleet",
// "cwmp-stun-server"), building it on first use. Call Cleanup from
// TestMain after m.Run.
func Build(cmd string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built[cmd]; ok {
		return p, nil
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "cwmp-bin-")
		if err != nil {
			return "", err
		}
		dir = d
	}
	p := filepath.Join(dir, cmd)
	b := exec.Command("go", "build", "-tags", Tags, "-trimpath", "-ldflags", "-s -w", "-o", p, "./cmd/"+cmd)
	b.Dir = testfiles.Repo()
	b.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := b.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v: %s", cmd, err, out)
	}
	built[cmd] = p
	return p, nil
}

// MustBuild is Build that panics (for TestMain).
func MustBuild(cmd string) string {
	p, err := Build(cmd)
	if err != nil {
		panic(err)
	}
	return p
}

// Cleanup removes the built commands.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
	}
}
