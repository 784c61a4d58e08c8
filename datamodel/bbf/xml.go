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
	ents, err := entities(data)
	if err != nil {
		return nil, err
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.Entity = ents
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

// Entity limits: the BBF files declare a few short regular-expression
// fragments; anything bigger is an attack (entities that expand into
// entities, "billion laughs").
const (
	maxEntities     = 64
	maxEntityLen    = 1024
	maxEntityGrowth = maxFileSize
)

// entities reads the ENTITY declarations of the internal DTD subset, with
// the entities declared before each expanded in it, and checks that their
// uses do not make the document grow beyond a bound.
func entities(data []byte) (map[string]string, error) {
	head := data
	if i := bytes.Index(head, []byte("]>")); i >= 0 {
		head = head[:i]
	} else {
		return map[string]string{}, nil
	}
	ents := map[string]string{}
	for _, m := range entityRE.FindAllSubmatch(head, -1) {
		if len(ents) >= maxEntities {
			return nil, fmt.Errorf("more than %d entities", maxEntities)
		}
		v := string(m[2])
		for k, ev := range ents {
			v = strings.ReplaceAll(v, "&"+k+";", ev)
			if len(v) > maxEntityLen {
				break
			}
		}
		if len(v) > maxEntityLen {
			return nil, fmt.Errorf("entity %s longer than %d bytes", m[1], maxEntityLen)
		}
		ents[string(m[1])] = v
	}
	growth := 0
	for k, v := range ents {
		growth += bytes.Count(data, []byte("&"+k+";")) * len(v)
		if growth > maxEntityGrowth {
			return nil, fmt.Errorf("entities expand the document beyond %d MiB", maxEntityGrowth>>20)
		}
	}
	return ents, nil
}
