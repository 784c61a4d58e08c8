// Package testfiles locates the repository's top-level testdata directory
// (golden files, captures, and the fuzz seed corpora in testdata/fuzz/) for
// tests in any package.
package testfiles

import (
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"testing"
)

// Repo returns the repository's root directory.
func Repo() string {
	_, file, _, _ := runtime.Caller(0) // <repo>/internal/testutil/testfiles/testfiles.go
	return filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(file))))
}

// Dir returns <repo>/testdata.
func Dir() string { return filepath.Join(Repo(), "testdata") }

// Path joins elements under <repo>/testdata.
func Path(elem ...string) string {
	return filepath.Join(append([]string{Dir()}, elem...)...)
}

// AddSeeds adds every file of testdata/fuzz/<name>/ to the fuzz corpus as
// one []byte argument, and returns how many it added.
func AddSeeds(f *testing.F, name string) int {
	f.Helper()
	return addDir(f, Path("fuzz", name))
}

// AddSeedDir adds every file of a directory below testdata as a seed.
func AddSeedDir(f *testing.F, rel ...string) int {
	f.Helper()
	return addDir(f, Path(rel...))
}

func addDir(f *testing.F, dir string) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		f.Fatalf("testfiles: seed corpus %s: %v", dir, err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	return len(names)
}
