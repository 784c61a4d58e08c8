// Package atomicfile writes state files so that a crash at any moment leaves
// either the old content or the new content on disk, never a torn mix: the
// data goes to a temporary file in the same directory, is fsynced, renamed
// over the target, and the directory itself is fsynced so that the rename is
// durable.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Write replaces path with data atomically. perm applies to a new file.
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Quarantine renames a file that could not be parsed to path.bad-<suffix> so
// that it is kept for inspection and no longer read. It returns the new name.
func Quarantine(path, suffix string) (string, error) {
	bad := path + ".bad-" + suffix
	if err := os.Rename(path, bad); err != nil {
		return "", fmt.Errorf("atomicfile: %w", err)
	}
	return bad, nil
}

// RemoveStale removes the temporary files that writes interrupted by a
// crash or a kill left in dir (".NAME.tmp-*", see Write), when they are
// older than olderThan (0: all of them; use 0 only in a directory no other
// process writes to). It returns how many it removed.
func RemoveStale(dir string, olderThan time.Duration) int {
	return removeMatching(dir, ".*.tmp-*", olderThan)
}

// RemoveMatching is RemoveStale for another pattern of temporary names.
func RemoveMatching(dir, pattern string, olderThan time.Duration) int {
	return removeMatching(dir, pattern, olderThan)
}

func removeMatching(dir, pattern string, olderThan time.Duration) int {
	names, err := filepath.Glob(filepath.Join(dir, pattern))
	if err != nil {
		return 0
	}
	n := 0
	for _, p := range names {
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if olderThan > 0 && time.Since(fi.ModTime()) < olderThan {
			continue
		}
		if os.Remove(p) == nil {
			n++
		}
	}
	return n
}
