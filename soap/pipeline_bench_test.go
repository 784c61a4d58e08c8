package soap_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/schemas"
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

// device2Tree builds a Device:2.19 tree of at least n parameters: the
// model's own objects plus IP interfaces (each with its Stats and an IPv4
// address), as a gateway with many of them would have.
func device2Tree(b *testing.B, n int) (*datamodel.Tree, int) {
	b.Helper()
	s := schemas.Device219()
	factory := map[string]string{}
	for i := 1; ; i++ {
		factory[fmt.Sprintf("Device.IP.Interface.%d.Enable", i)] = "true"
		factory[fmt.Sprintf("Device.IP.Interface.%d.IPv4Address.1.IPAddress", i)] = fmt.Sprintf("10.%d.%d.1", i/250, i%250)
		if i%20 != 0 {
			continue
		}
		tr, err := datamodel.New(s, datamodel.Options{Factory: factory})
		if err != nil {
			b.Fatal(err)
		}
		vs, err := tr.GetValues([]string{"Device."})
		if err != nil {
			b.Fatal(err)
		}
		if len(vs) >= n {
			return tr, len(vs)
		}
	}
}

// BenchmarkGPVDevice2Tree10k: a GetParameterValues of "Device." on a
// Device:2.19 tree of 10,000 parameters, decoded, read and encoded.
// Target: under 15 ms.
func BenchmarkGPVDevice2Tree10k(b *testing.B) {
	tr, n := device2Tree(b, 10000)
	req := (&soap.Envelope{NS: soap.NS12, ID: "1", Body: &soap.GetParameterValues{ParameterNames: []string{"Device."}}}).Encode()
	b.ReportAllocs()
	for b.Loop() {
		env, err := soap.DecodeBytes(req)
		if err != nil {
			b.Fatal(err)
		}
		vs, err := tr.GetValues(env.Body.(*soap.GetParameterValues).ParameterNames)
		if err != nil || len(vs) != n {
			b.Fatal(err, len(vs))
		}
		if out := (&soap.Envelope{NS: env.NS, ID: env.ID, Body: &soap.GetParameterValuesResponse{ParameterList: toWire(vs)}}).Encode(); len(out) == 0 {
			b.Fatal("empty")
		}
	}
	b.ReportMetric(float64(n), "params")
}
