package bbf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Loader reads data-model files and resolves names across their imports.
// It is not safe for concurrent use.
type Loader struct {
	// Dirs are searched, in order, for the files imports name.
	Dirs []string
	// Lenient records an import whose file is not found in Missing and
	// leaves out what it would have defined, instead of failing.
	Lenient bool
	// Exists, for vendor files read on top of a model the agent serves,
	// reports whether an object path is defined there: an <object base=>
	// naming one extends it.
	Exists func(path string) bool
	// Fallback, with Lenient, supplies what missing files define: an
	// object or parameter modified with base= whose definition is missing
	// starts from the fallback's, an object whose components are missing
	// gets the fallback's parameters it lacks, and the objects only the
	// fallback has are added at the end (unless the model deleted them).
	// A flattened earlier version of the model is the fallback.
	Fallback *Model

	// Types are named data types known without their file: TR-106's, for
	// vendors' files read on a device that has no BBF files. A data type
	// neither defined, imported nor found among TR-106's file is looked up
	// here.
	Types map[string]Syntax

	// Missing holds the imported files that were not found (Lenient).
	Missing map[string]bool
	// Unresolved holds the names (kind:name) that could not be resolved
	// because their file is missing (Lenient).
	Unresolved map[string]bool

	docs      map[string]*doc   // by file path
	models    map[string]*Model // resolved, by file path and name
	resolving map[string]bool   // models being resolved (a base cycle)
}

type doc struct {
	path  string
	name  string
	types map[string]*node
	comps map[string]*node
	mods  map[string]*node
	last  *node // the last model of the file
	// imported maps "kind:name" to the file that defines it and its name
	// there.
	imported map[string]importRef
}

type importRef struct {
	file string // as written
	ref  string
	line int
}

var errMissing = errors.New("imported file not found")

// commonTypes is the file of TR-106's named data types.
const commonTypes = "tr-106-types.xml"

// load reads a file once.
func (l *Loader) load(path string) (*doc, error) {
	if l.docs == nil {
		l.docs = map[string]*doc{}
		l.models = map[string]*Model{}
		l.Missing = map[string]bool{}
		l.Unresolved = map[string]bool{}
	}
	if d, ok := l.docs[path]; ok {
		return d, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	root, err := parseXML(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	d := &doc{path: path, name: filepath.Base(path), types: map[string]*node{}, comps: map[string]*node{},
		mods: map[string]*node{}, imported: map[string]importRef{}}
	for _, n := range root.children {
		switch n.tag {
		case "import":
			file := n.attr("file")
			for _, c := range n.children {
				kind := c.tag
				name := c.attr("name")
				if name == "" {
					continue
				}
				ref := c.attr("ref")
				if ref == "" {
					ref = name
				}
				d.imported[kind+":"+name] = importRef{file: file, ref: ref, line: c.line}
			}
		case "dataType":
			d.types[n.attr("name")] = n
		case "component":
			d.comps[n.attr("name")] = n
		case "model":
			d.mods[n.attr("name")] = n
			d.last = n
		}
	}
	l.docs[path] = d
	return d, nil
}

// find resolves an imported file name in Dirs. BBF imports name a file
// without its trailing version numbers ("tr-181-2-ip.xml", "tr-106-types.xml"):
// that is the file with the highest numbers present beside the name
// ("tr-181-2-19-0-ip.xml", or the name itself when it exists).
func (l *Loader) find(name string) (string, bool) {
	for _, dir := range l.Dirs {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	prefix, label, ok := splitName(name)
	if !ok {
		return "", false
	}
	type cand struct {
		path string
		nums []int
	}
	var cands []cand
	for _, dir := range l.Dirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			p2, l2, ok := splitName(e.Name())
			if !ok || l2 != label || len(p2) <= len(prefix) || !equalInts(p2[:len(prefix)], prefix) {
				continue
			}
			cands = append(cands, cand{filepath.Join(dir, e.Name()), p2[len(prefix):]})
		}
	}
	if len(cands) == 0 {
		return "", false
	}
	sort.Slice(cands, func(i, j int) bool { return lessInts(cands[i].nums, cands[j].nums) })
	return cands[len(cands)-1].path, true
}

var nameRE = regexp.MustCompile(`^tr-((?:\d+-)*\d+)(?:-([A-Za-z][\w-]*))?\.xml$`)

// splitName splits "tr-181-2-19-0-ip.xml" into [181 2 19 0] and "ip".
func splitName(name string) ([]int, string, bool) {
	m := nameRE.FindStringSubmatch(name)
	if m == nil {
		return nil, "", false
	}
	var nums []int
	for _, s := range strings.Split(m[1], "-") {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, "", false
		}
		nums = append(nums, n)
	}
	return nums, m[2], true
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func lessInts(a, b []int) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

// lookup finds a definition (kind "component", "dataType" or "model") as
// seen from a document: its own, or imported, through as many files as it
// takes.
func (l *Loader) lookup(d *doc, kind, name string) (*doc, *node, error) {
	// The caller's error names the asking file and line; an import's file
	// is named when the search went through one.
	start := d
	where := func() string {
		if d == start {
			return ""
		}
		return "in " + d.name + ": "
	}
	for hops := 0; hops < 32; hops++ {
		var local map[string]*node
		switch kind {
		case "component":
			local = d.comps
		case "dataType":
			local = d.types
		case "model":
			local = d.mods
		}
		if n := local[name]; n != nil {
			return d, n, nil
		}
		imp, isImported := d.imported[kind+":"+name]
		if !isImported {
			// Some BBF files use a TR-106 named type they do not import
			// (tr-181-2-19-0-wifi-de.xml and URI); BBF's tools find it
			// among the TR-106 types, and so does this.
			if kind == "dataType" && d.name != commonTypes {
				if p, ok := l.find(commonTypes); ok {
					if td, err := l.load(p); err == nil && td.types[name] != nil {
						return td, td.types[name], nil
					}
				}
			}
			return nil, nil, fmt.Errorf("%s%s %q is not defined or imported", where(), kind, name)
		}
		path, ok := l.find(imp.file)
		if !ok {
			l.Missing[imp.file] = true
			l.Unresolved[kind+":"+name] = true
			return nil, nil, fmt.Errorf("%s%s %q: %w: %s", where(), kind, name, errMissing, imp.file)
		}
		next, err := l.load(path)
		if err != nil {
			return nil, nil, err
		}
		d, name = next, imp.ref
	}
	return nil, nil, fmt.Errorf("%s: %s %q: imports loop", d.name, kind, name)
}
