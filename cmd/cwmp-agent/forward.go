package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// forward hands a command that used to be a cwmp-agent subcommand to the
// program that has it now (cwmp-fleet, cwmp-stun-server), so the command
// lines in scripts and runbooks keep working while this binary links
// neither. The program is looked for next to this one, then on PATH.
func forward(name string, args []string) error {
	path := ""
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			path = p
		}
	}
	if path == "" {
		p, err := exec.LookPath(name)
		if err != nil {
			return fmt.Errorf("this command is %s's now, and %s is not installed next to cwmp-agent nor on PATH", name, name)
		}
		path = p
	}
	// exec replaces this process: signals, exit status and the terminal
	// are the program's own, as if it had been typed.
	err := syscall.Exec(path, append([]string{name}, args...), os.Environ())
	return errors.Join(fmt.Errorf("running %s", path), err)
}
