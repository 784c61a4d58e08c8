package cwmp

import (
	"bytes"
	"testing"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// FuzzDecompressBody: an ACS's compressed answer (first line the
// Content-Encoding, the rest the body) never panics and never inflates
// past a message's size.
func FuzzDecompressBody(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzDecompressBody")
	f.Fuzz(func(t *testing.T, data []byte) {
		coding, body, _ := bytes.Cut(data, []byte("\n"))
		out, err := decompressBody(string(coding), body)
		if err == nil && len(out) > soap.MaxMessageSize {
			t.Fatalf("inflated to %d bytes", len(out))
		}
	})
}
