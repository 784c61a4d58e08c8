package fleet

import (
	"bytes"
	"io"
	"testing"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
)

// FuzzReadReport: a report file read for `cwmp-fleet report merge|html`
// either decodes or is refused with an error; what decodes merges and
// renders as a page without a panic.
func FuzzReadReport(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzReadReport")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ReadReport(bytes.NewReader(b))
		if err != nil {
			return
		}
		m, err := Merge([]*Report{r})
		if err != nil {
			return
		}
		if err := WriteHTML(io.Discard, m); err != nil {
			t.Fatalf("a merged report does not render: %v", err)
		}
	})
}
