package cwmp

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
	"github.com/cwmp-agent/cwmp-agent/schemas"
)

// FuzzConnReqHTTP sends arbitrary HTTP requests to the Connection Request
// handler: it must never panic, and it must never start a session without
// answering 200 to a request carrying valid Digest credentials (which a
// fuzzer cannot forge).
func FuzzConnReqHTTP(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzConnReqHTTP")
	tree, err := datamodel.New(schemas.Device(), datamodel.Options{Factory: map[string]string{
		"Device.ManagementServer.ConnectionRequestUsername": "cruser",
		"Device.ManagementServer.ConnectionRequestPassword": "crpass",
	}})
	if err != nil {
		f.Fatal(err)
	}
	triggered := 0
	c := &ConnReqServer{Tree: tree, Path: "/cr", Trigger: func() { triggered++ }}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return
		}
		before := triggered
		w := httptest.NewRecorder()
		c.ServeHTTP(w, req)
		if triggered != before {
			t.Fatalf("a fuzzed request started a session (status %d)", w.Code)
		}
		if w.Code == http.StatusOK {
			t.Fatalf("a fuzzed request was accepted")
		}
	})
}
