package soap

import "github.com/beevik/etree"

// fastTree builds the etree DOM of an envelope with the fast path's
// scanner instead of etree's own reader (encoding/xml underneath), which
// costs most of the decoding of the small envelopes of every session
// (Inform, InformResponse, GetParameterValuesResponse...):
// BenchmarkDecodeInform and BenchmarkDecodeInformEtree show the
// difference. The messages are then read from the DOM by the same code
// as always. It accepts the same plain XML subset as fastDecode and
// returns nil for anything else, which etree then reads;
// FuzzFastPathMatchesEtree holds the two to the same result.
func fastTree(data []byte) *etree.Element {
	d, ok := fastStart(data)
	if !ok {
		return nil
	}
	defer d.release()
	var root *etree.Element
	var open []*etree.Element
	for {
		t, ok := d.s.next()
		if !ok {
			break
		}
		switch t.kind {
		case 't':
			if len(open) == 0 {
				if !onlySpace(t.text) {
					return nil
				}
				continue
			}
			open[len(open)-1].CreateText(t.text)
		case 's':
			if root != nil && len(open) == 0 {
				return nil // a second root
			}
			if _, ok := d.push(t); !ok {
				return nil // an undeclared prefix: leave it to etree
			}
			var e *etree.Element
			if len(open) == 0 {
				e = etree.NewElement(t.name)
				root = e
			} else {
				e = open[len(open)-1].CreateElement(t.name)
			}
			for _, a := range t.attrs {
				e.CreateAttr(a.name, a.value)
			}
			if t.empty {
				d.drop()
				continue
			}
			open = append(open, e)
		case 'e':
			if len(open) == 0 || !d.pop(t) {
				return nil
			}
			open = open[:len(open)-1]
		}
	}
	if d.s.bad || root == nil || len(open) != 0 || d.s.i != len(data) {
		return nil
	}
	return root
}

func onlySpace(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', '\t', '\n':
		default:
			return false
		}
	}
	return true
}
