// Command binsize says what each module costs in a Go binary: the sizes of
// its symbols (code, read-only data, data) summed per module, the way
// goweight-style accounting does, plus the share of the function table
// (pclntab) that follows the code.
//
//	go run ./tools/binsize BINARY        (built without -s, so it has symbols)
//
// The figures are attributions, not marginal costs: a package shared by two
// modules counts once, for the module that owns it.
package main

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: binsize BINARY")
		os.Exit(2)
	}
	rows, total, err := measure(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "binsize:", err)
		os.Exit(1)
	}
	fmt.Printf("%-45s %10s %6s\n", "module", "bytes", "share")
	for _, r := range rows {
		fmt.Printf("%-45s %10d %5.1f%%\n", r.module, r.bytes, 100*float64(r.bytes)/float64(total))
	}
	fmt.Printf("%-45s %10d\n", "total (symbols with a size)", total)
}

type row struct {
	module string
	bytes  int64
}

// measure attributes every symbol of bin that occupies bytes in the file to
// the module of its package. The function table (.gopclntab) has no symbols
// of its own here (go:func.*, every function's metadata, lies within it):
// it grows with the code, so it is shared out in proportion to each
// module's code.
func measure(bin string) ([]row, int64, error) {
	mods, err := modules(bin)
	if err != nil {
		return nil, 0, err
	}
	f, err := elf.Open(bin)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w (build it without -s)", bin, err)
	}
	var pcln int64
	if s := f.Section(".gopclntab"); s != nil {
		pcln = int64(s.Size)
	}
	sums := map[string]int64{}
	code := map[string]int64{}
	var total, allCode int64
	for _, s := range syms {
		if s.Size == 0 || int(s.Section) <= 0 || int(s.Section) >= len(f.Sections) {
			continue
		}
		sec := f.Sections[s.Section]
		if sec.Type == elf.SHT_NOBITS || sec.Name == ".gopclntab" {
			continue // zero-filled memory, or the table shared out below
		}
		m := moduleOf(pkgOf(s.Name), mods)
		sums[m] += int64(s.Size)
		total += int64(s.Size)
		if sec.Name == ".text" {
			code[m] += int64(s.Size)
			allCode += int64(s.Size)
		}
	}
	if allCode > 0 {
		for m, c := range code {
			share := pcln * c / allCode
			sums[m] += share
			total += share
		}
	}
	rows := make([]row, 0, len(sums))
	for m, b := range sums {
		rows = append(rows, row{m, b})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].bytes > rows[j].bytes })
	return rows, total, nil
}

// modules lists the module paths built into bin: the main module and its deps.
func modules(bin string) ([]string, error) {
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("go version -m: %w", err)
	}
	var mods []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "mod" || f[0] == "dep") {
			mods = append(mods, f[1])
		}
	}
	// The longest path first, so that a nested module wins over its parent.
	sort.Slice(mods, func(i, j int) bool { return len(mods[i]) > len(mods[j]) })
	return mods, nil
}

// pkgOf is the import path of a symbol: what precedes the first dot after the
// last slash, with the linker's prefixes for generated symbols removed.
func pkgOf(sym string) string {
	for _, p := range []string{"type:.eq.", "type:.hash.", "type:", "go:itab.", "go:"} {
		sym = strings.TrimPrefix(sym, p)
	}
	sym = strings.TrimLeft(sym, "*")
	slash := strings.LastIndexByte(sym, '/')
	if dot := strings.IndexByte(sym[slash+1:], '.'); dot >= 0 {
		return sym[:slash+1+dot]
	}
	return sym
}

func moduleOf(pkg string, mods []string) string {
	for _, m := range mods {
		if pkg == m || strings.HasPrefix(pkg, m+"/") {
			return m
		}
	}
	if strings.HasPrefix(pkg, "vendor/") || !strings.Contains(strings.SplitN(pkg, "/", 2)[0], ".") {
		return "std"
	}
	return "(other: the linker's unnamed tables)"
}
