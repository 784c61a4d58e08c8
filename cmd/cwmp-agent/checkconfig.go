package main

import (
	"errors"
	"fmt"
)

// cmdCheckConfig validates a configuration and its mapping file without
// running anything: every problem is printed with its file and line.
func cmdCheckConfig(args []string) error {
	cf := newCommonFlags("check-config", "--config FILE")
	if err := parseFlags(cf.fs, args); err != nil {
		return err
	}
	cfg, _, err := cf.load()
	if err != nil {
		list := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			list = j.Unwrap()
		}
		for _, e := range list {
			fmt.Fprintln(stderr, e)
		}
		return fmt.Errorf("check-config: %d problem(s)", len(list))
	}
	if cfg.File == "" {
		return errors.New("check-config: give --config FILE")
	}
	fmt.Fprintf(ctlOut, "%s: OK (root %s, serial %s, %d mounts from %q)\n", cfg.File, cfg.Device.Root, cfg.Device.SerialNumber,
		len(cfg.Mapping.Entries), cfg.Mapping.File)
	return nil
}
