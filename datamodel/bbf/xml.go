package bbf

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Limits on an XML file: a data-model file is outside input (a vendor's
// file named in the configuration).
const (
	maxFileSize = 64 << 20
	maxDepth    = 64
	maxElements = 2_000_000
)

// node is one element with the line it starts on. Data-model XML is read
// whole: the resolver walks components and models back and forth, and
// errors must name the line.
type node struct {
	tag      string // local name
	attrs    map[string]string
	children []*node
	line     int
}

func (n *node) attr(name string) string { return n.attrs[name] }

// child returns the first child with the tag, or nil.
func (n *node) child(tag string) *node {
	for _, c := range n.children {
		if c.tag == tag {
			return c
		}
	}
	return nil
}

var entityRE = regexp.MustCompile(`<!ENTITY\s+([A-Za-z_][\w.-]*)\s+"([^"]*)"\s*>`)

// parseXML reads a document. The internal DTD subset of the BBF files
// declares entities used in patterns (&octet;, &dot;), so its ENTITY
// declarations are read and expanded.
func parseXML(r io.Reader) (*node, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d MiB", maxFileSize>>20)
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.Entity = map[string]string{}
	var stack []*node
	var root *node
	count := 0
	for {
		line, _ := d.InputPos()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.Directive:
			for _, m := range entityRE.FindAllSubmatch(t, -1) {
				d.Entity[string(m[1])] = expandEntities(string(m[2]), d.Entity)
			}
		case xml.StartElement:
			count++
			if count > maxElements {
				return nil, fmt.Errorf("more than %d elements", maxElements)
			}
			if len(stack) >= maxDepth {
				return nil, fmt.Errorf("line %d: elements nested deeper than %d", line, maxDepth)
			}
			switch t.Name.Local {
			case "description", "bibliography", "template", "profile", "glossary", "abbreviations":
				// Text for people: the model does not need it.
				if err := d.Skip(); err != nil {
					return nil, err
				}
				continue
			}
			n := &node{tag: t.Name.Local, line: line}
			if len(t.Attr) > 0 {
				n.attrs = make(map[string]string, len(t.Attr))
				for _, a := range t.Attr {
					if a.Name.Space == "" { // the data model's own, not xsi: or dmr:
						n.attrs[a.Name.Local] = a.Value
					}
				}
			}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else if root == nil {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

// expandEntities replaces references to entities declared earlier.
func expandEntities(s string, ents map[string]string) string {
	for i := 0; i < 8 && strings.Contains(s, "&"); i++ {
		changed := false
		for k, v := range ents {
			ref := "&" + k + ";"
			if strings.Contains(s, ref) {
				s = strings.ReplaceAll(s, ref, v)
				changed = true
			}
		}
		if !changed {
			break
		}
	}
	return s
}
