package soap_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// benchTree builds a tree of rows*10 string parameters in a table.
func benchTree(b *testing.B, rows int, dir string) *datamodel.Tree {
	b.Helper()
	var s strings.Builder
	s.WriteString("model Bench:1.0\nobject Device.\nRowNumberOfEntries unsignedInt R\nobject Device.Bench.\nobject Device.Bench.Row.{i}. W instances=" + fmt.Sprint(rows) + "\n")
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&s, "Param%d string(64) W default=value%d\n", i, i)
	}
	sc, err := datamodel.ParseSchema(strings.NewReader(s.String()))
	if err != nil {
		b.Fatal(err)
	}
	tr, err := datamodel.New(sc, datamodel.Options{StateDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	return tr
}

func toWire(vs []datamodel.Value) []soap.ParameterValue {
	out := make([]soap.ParameterValue, len(vs))
	for i, v := range vs {
		out[i] = soap.ParameterValue{Name: v.Name, Value: v.Value, Type: v.Type.XSD()}
	}
	return out
}

// BenchmarkGPV10kPipeline is the whole CPE side of a GetParameterValues
// naming 10,000 parameters: decode the request, read the tree, encode the
// response. Target: under 25 ms and 30 MB allocated.
func BenchmarkGPV10kPipeline(b *testing.B) {
	tr := benchTree(b, 1000, "")
	names := make([]string, 0, 10000)
	for r := 1; r <= 1000; r++ {
		for p := 0; p < 10; p++ {
			names = append(names, fmt.Sprintf("Device.Bench.Row.%d.Param%d", r, p))
		}
	}
	req := (&soap.Envelope{NS: soap.NS12, ID: "1", Body: &soap.GetParameterValues{ParameterNames: names}}).Encode()
	b.ReportAllocs()
	for b.Loop() {
		env, err := soap.DecodeBytes(req)
		if err != nil {
			b.Fatal(err)
		}
		vs, err := tr.GetValues(env.Body.(*soap.GetParameterValues).ParameterNames)
		if err != nil {
			b.Fatal(err)
		}
		out := (&soap.Envelope{NS: env.NS, ID: env.ID, Body: &soap.GetParameterValuesResponse{ParameterList: toWire(vs)}}).Encode()
		if len(out) == 0 {
			b.Fatal("empty")
		}
	}
}

// BenchmarkGPVPartialPath10k is the same through one partial path.
func BenchmarkGPVPartialPath10k(b *testing.B) {
	tr := benchTree(b, 1000, "")
	req := (&soap.Envelope{NS: soap.NS12, ID: "1", Body: &soap.GetParameterValues{ParameterNames: []string{"Device."}}}).Encode()
	b.ReportAllocs()
	for b.Loop() {
		env, _ := soap.DecodeBytes(req)
		vs, err := tr.GetValues(env.Body.(*soap.GetParameterValues).ParameterNames)
		if err != nil || len(vs) < 10000 {
			b.Fatal(err, len(vs))
		}
		_ = (&soap.Envelope{NS: env.NS, ID: env.ID, Body: &soap.GetParameterValuesResponse{ParameterList: toWire(vs)}}).Encode()
	}
}

// BenchmarkSPV1000Transaction decodes a SetParameterValues of 1,000 values,
// validates and commits them, and persists the tree (write, fsync, rename).
// Target: under 20 ms.
func BenchmarkSPV1000Transaction(b *testing.B) {
	tr := benchTree(b, 1000, b.TempDir())
	pl := make([]soap.ParameterValue, 1000)
	for i := range pl {
		pl[i] = soap.ParameterValue{Name: fmt.Sprintf("Device.Bench.Row.%d.Param%d", i/10+1, i%10), Value: fmt.Sprintf("new-%d", i), Type: "xsd:string"}
	}
	req := (&soap.Envelope{NS: soap.NS12, ID: "1", Body: &soap.SetParameterValues{ParameterList: pl, ParameterKey: "k"}}).Encode()
	b.ReportAllocs()
	for b.Loop() {
		env, err := soap.DecodeBytes(req)
		if err != nil {
			b.Fatal(err)
		}
		spv := env.Body.(*soap.SetParameterValues)
		ch := make([]datamodel.Change, len(spv.ParameterList))
		for i, p := range spv.ParameterList {
			ch[i] = datamodel.Change{Path: p.Name, Value: p.Value, Type: p.Type}
		}
		if err := tr.SetValues(ch, datamodel.SetOptions{Origin: datamodel.OriginACS, ParameterKey: &spv.ParameterKey}); err != nil {
			b.Fatal(err)
		}
	}
}
