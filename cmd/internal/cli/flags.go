// Package cli holds what the three commands share: GNU-style flags, the
// flags that set configuration keys, and logging with its redaction.
package cli

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// HelpOut is where --help writes (standard output: asking for help is not
// an error, so it exits 0, as Go's flag package and GNU tools do).
var HelpOut io.Writer = os.Stdout

// NewFlags builds a subcommand's flag set. Flags are GNU-style: accepted
// before and after the arguments, "--" ends them, an unknown one is an
// error that names it, and --help or -h prints usage.
func NewFlags(program, name, synopsis string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard) // errors are returned and printed once by main
	fs.Usage = func() {
		fmt.Fprintf(HelpOut, "Usage: %s %s %s\n\nFlags:\n%s", program, name, synopsis, fs.FlagUsages())
	}
	return fs
}

// Parse parses args, flags and arguments in any order. It moves the
// flags (with their values) before the arguments so that what pflag sees
// is unambiguous, and it accepts the single-dash long form of Go's flag
// package (-config FILE), which earlier releases documented. An argument
// that is a negative number (`set PATH -1`) stays an argument: no flag
// here is a digit.
func Parse(fs *pflag.FlagSet, args []string) error {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' || isNumber(a) {
			rest = append(rest, a)
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var f *pflag.Flag
		switch {
		case strings.HasPrefix(a, "--"):
			f = fs.Lookup(name)
		case len(name) == 1:
			f = fs.ShorthandLookup(name)
		default:
			if f = fs.Lookup(name); f != nil {
				a = "-" + a // -config → --config
			}
		}
		flags = append(flags, a)
		if f != nil && !hasValue && f.NoOptDefVal == "" && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return fs.Parse(append(append(flags, "--"), rest...))
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// Common is the flag set of a command that reads the configuration:
// --config and the flags of config.FlagKeys.
type Common struct {
	FS     *pflag.FlagSet
	Config *string
}

// NewCommon builds it.
func NewCommon(program, name, synopsis string, flagKeys map[string]string) *Common {
	fs := NewFlags(program, name, synopsis)
	c := &Common{FS: fs, Config: fs.String("config", "", "YAML configuration file")}
	names := make([]string, 0, len(flagKeys))
	for n := range flagKeys {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fs.String(n, "", "sets "+flagKeys[n])
	}
	return c
}

// Set returns the keys the flags that were given set, with their values.
func (c *Common) Set(flagKeys map[string]string) map[string]string {
	out := map[string]string{}
	c.FS.Visit(func(f *pflag.Flag) {
		if k, ok := flagKeys[f.Name]; ok {
			out[k] = f.Value.String()
		}
	})
	return out
}
