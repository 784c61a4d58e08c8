package soap

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

func gpvRequest(n int) []byte {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("Device.Bench.Row.%d.Param%d", i/10+1, i%10)
	}
	return (&Envelope{NS: NS12, ID: "1", Body: &GetParameterValues{ParameterNames: names}}).Encode()
}

func gpvResponse(n int) *Envelope {
	pl := make([]ParameterValue, n)
	for i := range pl {
		pl[i] = ParameterValue{Name: fmt.Sprintf("Device.Bench.Row.%d.Param%d", i/10+1, i%10), Value: "value-" + strconv.Itoa(i), Type: "xsd:string"}
	}
	return &Envelope{NS: NS12, ID: "1", Body: &GetParameterValuesResponse{ParameterList: pl}}
}

// BenchmarkDecodeGPV10k decodes a GetParameterValues naming 10,000 parameters.
func BenchmarkDecodeGPV10k(b *testing.B) {
	req := gpvRequest(10000)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBytes(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodeGPVResponse10k encodes a 10,000-value response by hand.
func BenchmarkEncodeGPVResponse10k(b *testing.B) {
	env := gpvResponse(10000)
	buf := make([]byte, 0, 2<<20)
	b.ReportAllocs()
	for b.Loop() {
		buf = env.AppendTo(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkEncodeGPVResponse10kEtree builds the same response as an etree
// DOM, to show why the encoder writes by hand.
func BenchmarkEncodeGPVResponse10kEtree(b *testing.B) {
	env := gpvResponse(10000)
	pl := env.Body.(*GetParameterValuesResponse).ParameterList
	b.ReportAllocs()
	for b.Loop() {
		doc := etree.NewDocument()
		e := doc.CreateElement("soap-env:Envelope")
		e.CreateAttr("xmlns:soap-env", NSEnvelope)
		e.CreateAttr("xmlns:cwmp", NS12)
		h := e.CreateElement("soap-env:Header")
		id := h.CreateElement("cwmp:ID")
		id.CreateAttr("soap-env:mustUnderstand", "1")
		id.SetText(env.ID)
		body := e.CreateElement("soap-env:Body").CreateElement("cwmp:GetParameterValuesResponse")
		list := body.CreateElement("ParameterList")
		list.CreateAttr("soap-enc:arrayType", "cwmp:ParameterValueStruct["+strconv.Itoa(len(pl))+"]")
		for _, p := range pl {
			s := list.CreateElement("ParameterValueStruct")
			s.CreateElement("Name").SetText(p.Name)
			v := s.CreateElement("Value")
			v.CreateAttr("xsi:type", p.Type)
			v.SetText(p.Value)
		}
		if _, err := doc.WriteToBytes(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeGPV10kEtree decodes the same request through etree only, to
// show what the fast path saves.
func BenchmarkDecodeGPV10kEtree(b *testing.B) {
	req := gpvRequest(10000)
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeDOM(req); err != nil {
			b.Fatal(err)
		}
	}
}

func informRequest() []byte {
	params := []ParameterValue{}
	for _, n := range []string{"DeviceSummary", "DeviceInfo.HardwareVersion", "DeviceInfo.SoftwareVersion", "DeviceInfo.ProvisioningCode",
		"ManagementServer.ConnectionRequestURL", "ManagementServer.ParameterKey", "LAN.IPAddress"} {
		params = append(params, ParameterValue{Name: "Device." + n, Value: "value of " + n, Type: "xsd:string"})
	}
	return (&Envelope{NS: NS12, ID: "1", Body: &Inform{DeviceId: DeviceID{Manufacturer: "cwmp-agent", OUI: "00D09E", ProductClass: "Sim", SerialNumber: "SIM000001"},
		Event: []EventStruct{{EventCode: "2 PERIODIC"}}, MaxEnvelopes: 1, RetryCount: 0, ParameterList: params}}).Encode()
}

// BenchmarkDecodeInform decodes the Inform of a periodic session: the
// fast scanner builds the DOM.
func BenchmarkDecodeInform(b *testing.B) {
	in := informRequest()
	if fastTree(in) == nil {
		b.Fatal("the fast DOM does not take this Inform")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBytes(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeInformEtree is the same through etree's own reader.
func BenchmarkDecodeInformEtree(b *testing.B) {
	in := informRequest()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeDOM(in); err != nil {
			b.Fatal(err)
		}
	}
}

// deepEnvelope nests n elements in a GetParameterValues.
func deepEnvelope(n int) []byte {
	return []byte(`<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soap:Body><cwmp:GetParameterValues><ParameterNames>` +
		strings.Repeat(`<a xmlns:p="urn:p">`, n) + strings.Repeat("</a>", n) + `</ParameterNames></cwmp:GetParameterValues></soap:Body></soap:Envelope>`)
}

// BenchmarkDecodeDeep40k decodes (and refuses) 40,000 nested elements. It
// took 2.1 s when resolving a namespace prefix walked the open elements;
// now the depth limit of etree (1,024) stops both decoders early.
func BenchmarkDecodeDeep40k(b *testing.B) {
	in := deepEnvelope(40000)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := DecodeBytes(in); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkDecodeDeep1000 decodes 1,000 nested elements, just within the
// limit: linear in the depth.
func BenchmarkDecodeDeep1000(b *testing.B) {
	in := deepEnvelope(1000)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		DecodeBytes(in)
	}
}
