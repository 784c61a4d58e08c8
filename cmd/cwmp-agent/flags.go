package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// helpOut is where --help writes (standard output: asking for help is not
// an error, so it exits 0, as Go's flag package and GNU tools do).
var helpOut io.Writer = os.Stdout

// newFlags builds a subcommand's flag set. Flags are GNU-style: accepted
// before and after the arguments, "--" ends them, an unknown one is an
// error that names it, and --help or -h prints usage.
func newFlags(name, synopsis string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard) // errors are returned and printed once by main
	fs.Usage = func() {
		fmt.Fprintf(helpOut, "Usage: cwmp-agent %s %s\n\nFlags:\n%s", name, synopsis, fs.FlagUsages())
	}
	return fs
}

// parseFlags parses args, flags and arguments in any order. It moves the
// flags (with their values) before the arguments so that what pflag sees
// is unambiguous, and it accepts the single-dash long form of Go's flag
// package (-config FILE), which earlier releases documented. An argument
// that is a negative number (`set PATH -1`) stays an argument: no flag
// here is a digit.
func parseFlags(fs *pflag.FlagSet, args []string) error {
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
