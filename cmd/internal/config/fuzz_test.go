package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
)

// FuzzConfig: any configuration file gives a configuration or an error
// that starts with "config:" (naming the key, or the file when it is not
// YAML); it never panics, and what loads is valid.
func FuzzConfig(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzConfig")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(Source{File: p, Env: func(string) (string, bool) { return "", false }})
		if err != nil {
			if !strings.Contains(err.Error(), "config: ") {
				t.Fatalf("an error that names nothing: %v", err)
			}
			return
		}
		if cfg.ACS.URL == "" || !OUIPattern.MatchString(cfg.Device.OUI) || cfg.Device.SerialNumber == "" {
			t.Fatalf("an invalid configuration loaded: %+v", cfg)
		}
	})
}
