// Package spectest finds the standards files the tests check against: the
// Broadband Forum XSDs and data-model XML in ../shared/spec/bbf next to the
// repository (or in $CWMP_SPEC_DIR/bbf). They are never copied into the
// project; tests that need them skip with a message when they are absent.
package spectest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
)

// BBFDir returns the directory holding the BBF files, or skips the test.
func BBFDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("CWMP_SPEC_DIR"); d != "" {
		return check(t, filepath.Join(d, "bbf"))
	}
	// The spec sits at <repo>/../shared/spec.
	return check(t, filepath.Join(filepath.Dir(testfiles.Repo()), "shared", "spec", "bbf"))
}

func check(t testing.TB, dir string) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "cwmp-1-0.xsd")); err != nil {
		t.Skipf("spectest: BBF files not found at %s (set CWMP_SPEC_DIR to the directory holding bbf/): %v", dir, err)
	}
	return dir
}
