package e2e

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/cwmp-agent/cwmp-agent/soap"
)

// wire is what GenieACS received from CPEs, read from its debug file
// (GENIEACS_DEBUG_FILE, YAML documents of every HTTP exchange): the end of
// the wire the ACS sees.
type wire struct {
	Device string
	Msg    soap.Message
}

// received decodes every CPE message of one device that GenieACS logged.
func received(t *testing.T, debugFile, device string) []wire {
	t.Helper()
	return logged(t, debugFile, device, "incoming HTTP request")
}

// outgoing decodes what GenieACS answered one device: its RPCs.
func outgoing(t *testing.T, debugFile, device string) []soap.Message {
	var out []soap.Message
	for _, w := range logged(t, debugFile, device, "outgoing HTTP response") {
		out = append(out, w.Msg)
	}
	return out
}

func logged(t *testing.T, debugFile, device, event string) []wire {
	t.Helper()
	f, err := os.Open(debugFile)
	if err != nil {
		t.Fatalf("GenieACS debug file: %v", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var out []wire
	for {
		var doc struct {
			Event    string `yaml:"event"`
			DeviceID string `yaml:"deviceId"`
			Body     string `yaml:"body"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			break // a document being written as we read
		}
		if doc.Event != event || doc.DeviceID != device || strings.TrimSpace(doc.Body) == "" {
			continue
		}
		env, err := soap.DecodeBytes(bytes.TrimSpace([]byte(doc.Body)))
		if err != nil || env.Body == nil {
			continue
		}
		out = append(out, wire{Device: doc.DeviceID, Msg: env.Body})
	}
	return out
}

// informs returns the Informs GenieACS received from the device.
func informs(t *testing.T, debugFile, device string) []*soap.Inform {
	var out []*soap.Inform
	for _, w := range received(t, debugFile, device) {
		if inf, ok := w.Msg.(*soap.Inform); ok {
			out = append(out, inf)
		}
	}
	return out
}

func eventCodes(inf *soap.Inform) []string {
	var out []string
	for _, e := range inf.Event {
		out = append(out, e.EventCode)
	}
	return out
}

func hasEvent(inf *soap.Inform, code string) bool {
	for _, e := range inf.Event {
		if e.EventCode == code {
			return true
		}
	}
	return false
}
