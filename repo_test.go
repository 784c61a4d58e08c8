// Package repo_test holds checks of the repository as a whole: what is
// committed, and what the README promises about it.
package repo_test

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testbin"
)

// trackedFiles lists the files git tracks, or skips outside a checkout.
func trackedFiles(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("git", "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git checkout (git ls-files: %v)", err)
	}
	var files []string
	for _, f := range bytes.Split(out, []byte{0}) {
		if len(f) > 0 {
			files = append(files, string(f))
		}
	}
	return files
}

// TestNoBuildOutputsCommitted: binaries are built by make, never committed
// (a 15 MB cwmp-agent once was, at the top of the repository).
func TestNoBuildOutputsCommitted(t *testing.T) {
	for _, f := range trackedFiles(t) {
		fh, err := os.Open(f)
		if err != nil {
			continue // deleted in the work tree
		}
		head := make([]byte, 4)
		n, _ := fh.Read(head)
		fi, _ := fh.Stat()
		fh.Close()
		if n == 4 && string(head) == "\x7fELF" {
			t.Errorf("%s is an ELF binary: build outputs do not belong in git", f)
		}
		if fi != nil && fi.Size() > 2<<20 && !strings.HasPrefix(f, "testdata/") {
			t.Errorf("%s is %d bytes: large files do not belong in git", f, fi.Size())
		}
	}
}

// TestDeviceBinaryLinksNoFleet: the device agent links neither the fleet
// nor the test ACS (they are cwmp-fleet's), and the utilities under
// internal/ import no project package outside internal/.
func TestDeviceBinaryLinksNoFleet(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./cmd/cwmp-agent").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"/fleet", "/cwmp/cwmptest", "/tr111/tr111test", "/internal/testutil/", "spf13/viper"} {
			if strings.Contains(dep, "github.com/cwmp-agent/cwmp-agent"+banned) || banned == "spf13/viper" && strings.Contains(dep, banned) {
				t.Errorf("cmd/cwmp-agent links %s", dep)
			}
		}
	}
	out, err = exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./internal/...").Output()
	if err != nil {
		t.Fatal(err)
	}
	const mod = "github.com/cwmp-agent/cwmp-agent/"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if strings.HasPrefix(f[0], mod+"internal/testutil/") {
			continue // test helpers may
		}
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, mod) && !strings.HasPrefix(imp, mod+"internal/") {
				t.Errorf("%s imports %s: the utilities under internal/ are leaves", f[0], imp)
			}
		}
	}
}

// TestBuildTagsAgree: the tests build the commands with the tags `make`
// uses, so that what they run is what ships.
func TestBuildTagsAgree(t *testing.T) {
	mk, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mk), "\n") {
		if k, v, ok := strings.Cut(line, ":="); ok && strings.TrimSpace(k) == "TAGS" {
			if got := strings.TrimSpace(v); got != testbin.Tags {
				t.Errorf("Makefile TAGS = %q, testbin.Tags = %q", got, testbin.Tags)
			}
			// The image and the Kubernetes tests' builds use the same.
			for _, f := range []string{"deploy/Dockerfile", "deploy/kubernetes/test/shards_test.go"} {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), "-tags "+testbin.Tags) && !strings.Contains(string(b), `"-tags", "`+testbin.Tags+`"`) {
					t.Errorf("%s does not build with -tags %s", f, testbin.Tags)
				}
			}
			return
		}
	}
	t.Error("the Makefile sets no TAGS")
}
