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
