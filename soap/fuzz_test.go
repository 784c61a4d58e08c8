package soap

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
)

// FuzzSOAPDecode feeds the decoder arbitrary bytes. It must never panic or
// hang, and whatever it accepts must encode to bytes that decode again to
// the same encoding (the agent answers with what it decoded).
func FuzzSOAPDecode(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzSOAPDecode")
	testfiles.AddSeedDir(f, "soap")
	testfiles.AddSeedDir(f, "soap", "acs")
	f.Fuzz(func(t *testing.T, data []byte) {
		env, err := DecodeBytes(data)
		if err != nil {
			return
		}
		once := env.Encode()
		back, err := DecodeBytes(once)
		if err != nil {
			t.Fatalf("re-decoding our own encoding failed: %v\n%s", err, once)
		}
		if twice := back.Encode(); string(twice) != string(once) {
			t.Fatalf("encoding is not stable:\n%s\n---\n%s", once, twice)
		}
	})
}

// FuzzFastPathMatchesEtree holds the hand-written fast path to the etree
// decoder: whenever the fast path accepts an input, etree must accept it too
// and produce exactly the same envelope.
func FuzzFastPathMatchesEtree(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzFastPathMatchesEtree")
	testfiles.AddSeeds(f, "FuzzSOAPDecode")
	testfiles.AddSeedDir(f, "soap")
	testfiles.AddSeedDir(f, "soap", "acs")
	f.Add(gpvRequest(3))
	f.Add([]byte(`<?xml version="1.0"?><e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><GetParameterAttributes xmlns="urn:dslforum-org:cwmp-1-1"><ParameterNames><s>a&amp;b</s><s/></ParameterNames></GetParameterAttributes></e:Body></e:Envelope>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		slow, slowErr := decodeDOM(data)
		if root := fastTree(data); root != nil {
			// The DOM built by the fast scanner reads exactly as etree's.
			tree, treeErr := decodeRoot(root)
			if fmt.Sprint(treeErr) != fmt.Sprint(slowErr) || !reflect.DeepEqual(tree, slow) {
				t.Fatalf("fast DOM and etree differ:\nfast %#v %v\nslow %#v %v\n%q", tree, treeErr, slow, slowErr, data)
			}
		}
		fast := fastDecode(data)
		if fast == nil {
			return
		}
		if slowErr != nil {
			t.Fatalf("fast path accepted what etree rejects (%v):\n%q", slowErr, data)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("fast path and etree differ:\nfast %#v %#v\nslow %#v %#v\n%q", fast, fast.Body, slow, slow.Body, data)
		}
	})
}
