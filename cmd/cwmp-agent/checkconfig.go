package main

import (
	"errors"
	"fmt"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/cli"
)

// cmdCheckConfig validates a configuration and its mapping file without
// running anything: every problem is printed with its file and line.
func cmdCheckConfig(args []string) error {
	cf := newCommon("check-config", "--config FILE")
	if err := cli.Parse(cf.FS, args); err != nil {
		return err
	}
	cfg, err := load(cf)
	if err != nil {
		list := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			list = j.Unwrap()
		}
		for _, e := range list {
			fmt.Fprintln(cli.Stderr, e)
		}
		return fmt.Errorf("check-config: %d problem(s)", len(list))
	}
	if cfg.File == "" {
		return errors.New("check-config: give --config FILE")
	}
	s, _ := cfg.Schema()
	fmt.Fprintf(ctlOut, "%s: OK (%s, %d parameters, serial %s, %d mounts from %q)\n", cfg.File, s.Model, len(s.Params()), cfg.Device.SerialNumber,
		len(cfg.Mapping), cfg.MappingFile)
	return nil
}
