package soap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
)

func decodeFile(t *testing.T, name string) *Envelope {
	t.Helper()
	b, err := os.ReadFile(testfiles.Path("soap", "acs", name))
	require.NoError(t, err)
	env, err := DecodeBytes(b)
	require.NoError(t, err)
	return env
}

func TestDecodeWhatACSsSend(t *testing.T) {
	t.Run("GenieACS GetParameterNames with 1 for true", func(t *testing.T) {
		env := decodeFile(t, "genieacs-gpn.xml")
		assert.Equal(t, "17ee7c7d", env.ID)
		assert.Equal(t, NS10, env.NS)
		assert.Equal(t, &GetParameterNames{ParameterPath: "", NextLevel: true}, env.Body)
	})
	t.Run("GenieACS SetParameterValues in cwmp-1-3", func(t *testing.T) {
		env := decodeFile(t, "genieacs-spv-1-3.xml")
		assert.Equal(t, NS13, env.NS, "the non-standard namespace is kept to answer in")
		spv := env.Body.(*SetParameterValues)
		assert.Equal(t, "1730000000", spv.ParameterKey)
		require.Len(t, spv.ParameterList, 2)
		assert.Equal(t, ParameterValue{Name: "Device.ManagementServer.PeriodicInformEnable", Value: "1", Type: "xsd:boolean"}, spv.ParameterList[0])
		assert.Equal(t, "2026-01-01T00:00:00.000Z", spv.ParameterList[1].Value)
		v, _ := VersionOf(env.NS)
		assert.Equal(t, V14, v)
	})
	t.Run("empty Notification when NotificationChange is false", func(t *testing.T) {
		env := decodeFile(t, "genieacs-spa-empty-notification.xml")
		spa := env.Body.(*SetParameterAttributes)
		require.Len(t, spa.ParameterList, 1)
		assert.Equal(t, SetParameterAttributesStruct{Name: "Device.GatewayInfo.SerialNumber", AccessListChange: true, AccessList: []string{}}, spa.ParameterList[0])
	})
	t.Run("upper-case prefixes, whitespace, no arrayType, HoldRequests 1", func(t *testing.T) {
		env := decodeFile(t, "uppercase-prefixes.xml")
		assert.Equal(t, " 42 ", env.ID, "the ID is echoed exactly")
		assert.True(t, env.HoldRequests)
		assert.Equal(t, NS11, env.NS)
		assert.Equal(t, []string{"Device.DeviceInfo.", "Device.ManagementServer.URL"}, env.Body.(*GetParameterValues).ParameterNames)
	})
	t.Run("default namespace, no header", func(t *testing.T) {
		env := decodeFile(t, "default-namespace.xml")
		assert.Equal(t, "", env.ID)
		assert.Equal(t, NS12, env.NS)
		assert.Equal(t, &AddObject{ObjectName: "Device.LAN.DHCPOption."}, env.Body)
	})
	t.Run("missing xsi:type and missing Value", func(t *testing.T) {
		env := decodeFile(t, "spv-missing-type-and-value.xml")
		pl := env.Body.(*SetParameterValues).ParameterList
		require.Len(t, pl, 3)
		assert.Equal(t, ParameterValue{Name: "Device.ManagementServer.PeriodicInformInterval", Value: "600"}, pl[0])
		assert.Equal(t, ParameterValue{Name: "Device.ManagementServer.Username"}, pl[1])
		assert.Equal(t, "xs:boolean", pl[2].Type)
	})
	t.Run("ACS fault 8005", func(t *testing.T) {
		env := decodeFile(t, "acs-fault-8005.xml")
		f := env.Body.(*Fault)
		assert.Equal(t, 8005, f.Code)
		assert.Equal(t, "Client", f.FaultCode, "the prefix of faultcode is dropped")
		assert.Equal(t, NS10, env.NS)
	})
	t.Run("UseCWMPVersion", func(t *testing.T) {
		env := decodeFile(t, "informresponse-1-4.xml")
		assert.Equal(t, "1.4", env.UseCWMPVersion)
		assert.Equal(t, &InformResponse{MaxEnvelopes: 1}, env.Body)
	})
}

const envHead = `<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0">`

func wrap(header, body string) []byte {
	return []byte(envHead + "<soap-env:Header>" + header + "</soap-env:Header><soap-env:Body>" + body + "</soap-env:Body></soap-env:Envelope>")
}

func TestDecodeErrors(t *testing.T) {
	id := `<cwmp:ID soap-env:mustUnderstand="1">9</cwmp:ID>`
	for _, tc := range []struct {
		name   string
		in     []byte
		err    error
		method bool // a *MethodError
		arg    bool // an *ArgError
		keepID bool // the envelope comes back with its ID to answer
	}{
		{name: "empty", in: nil, err: ErrMalformed},
		{name: "not XML", in: []byte("hello"), err: ErrMalformed},
		{name: "truncated", in: wrap(id, "<cwmp:GetRPCMethods>")[:60], err: ErrMalformed},
		{name: "not an envelope", in: []byte("<foo/>"), err: ErrMalformed},
		{name: "SOAP 1.2", in: []byte(`<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>`), err: ErrMalformed},
		{name: "no body", in: []byte(envHead + "</soap-env:Envelope>"), err: ErrMalformed},
		{name: "empty body", in: wrap(id, ""), err: ErrEmptyBody, keepID: true},
		{name: "unknown method", in: wrap(id, "<cwmp:SetVouchers/>"), method: true, keepID: true},
		{name: "unknown namespace", in: []byte(`<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/" xmlns:c="urn:dslforum-org:cwmp-9-9"><soap-env:Header><c:ID>9</c:ID></soap-env:Header><soap-env:Body><c:GetRPCMethods/></soap-env:Body></soap-env:Envelope>`), err: ErrNamespace, method: true},
		{name: "must understand", in: wrap(id+`<x:Secret xmlns:x="urn:x" soap-env:mustUnderstand="1">1</x:Secret>`, "<cwmp:GetRPCMethods/>"), err: ErrMustUnderstand, keepID: true},
		{name: "bad boolean", in: wrap(id, "<cwmp:GetParameterNames><ParameterPath/><NextLevel>maybe</NextLevel></cwmp:GetParameterNames>"), arg: true, keepID: true},
		{name: "bad number", in: wrap(id, "<cwmp:ScheduleInform><DelaySeconds>-5</DelaySeconds><CommandKey/></cwmp:ScheduleInform>"), arg: true, keepID: true},
		{name: "missing ObjectName", in: wrap(id, "<cwmp:AddObject><ParameterKey/></cwmp:AddObject>"), arg: true, keepID: true},
		{name: "missing ParameterList", in: wrap(id, "<cwmp:SetParameterValues><ParameterKey/></cwmp:SetParameterValues>"), arg: true, keepID: true},
		{name: "too large", in: bytes.Repeat([]byte(" "), MaxMessageSize+1), err: ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env, err := DecodeBytes(tc.in)
			require.Error(t, err)
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
			}
			var me *MethodError
			assert.Equal(t, tc.method, errors.As(err, &me), "MethodError: %v", err)
			var ae *ArgError
			assert.Equal(t, tc.arg, errors.As(err, &ae), "ArgError: %v", err)
			if tc.keepID {
				require.NotNil(t, env)
				assert.Equal(t, "9", env.ID)
			}
		})
	}
}

// TestDecodeDepthLimit: both decoders refuse what etree refuses (more than
// 1,024 nested elements), and accept the same below it.
func TestDecodeDepthLimit(t *testing.T) {
	for _, n := range []int{1000, 1100, 40000} {
		_, err := DecodeBytes(deepEnvelope(n))
		_, slow := decodeDOM(deepEnvelope(n))
		assert.Equal(t, fmt.Sprint(slow), fmt.Sprint(err), "depth %d", n)
		if n > 1024 {
			assert.ErrorIs(t, err, ErrMalformed, "depth %d", n)
			assert.Nil(t, fastTree(deepEnvelope(n)), "depth %d", n)
		}
	}
}

func TestDecodeReader(t *testing.T) {
	env, err := Decode(bytes.NewReader(wrap("", "<cwmp:GetRPCMethods/>")))
	require.NoError(t, err)
	assert.Equal(t, &GetRPCMethods{}, env.Body)
	_, err = Decode(strings.NewReader(strings.Repeat(" ", MaxMessageSize+10)))
	assert.ErrorIs(t, err, ErrTooLarge)
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		"":                          {},
		"0001-01-01T00:00:00Z":      {},
		"0000-00-00T00:00:00":       {},
		"2026-11-25T10:00:00+01:00": time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC),
		"2026-11-25T10:00:00.5Z":    time.Date(2026, 11, 25, 10, 0, 0, 500000000, time.UTC),
		"2026-11-25T10:00:00":       time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
	} {
		got, err := ParseTime(in)
		require.NoError(t, err, in)
		assert.True(t, want.Equal(got), "%s: %v", in, got)
	}
	_, err := ParseTime("soon")
	assert.Error(t, err)
}

func TestEncodingEscapesAndVersions(t *testing.T) {
	env := &Envelope{ID: "a&b", Body: &GetParameterValuesResponse{ParameterList: []ParameterValue{{Name: "X", Value: "\x01bell\r\n<>&\xff"}}}}
	out := env.Encode()
	assert.Contains(t, string(out), `<cwmp:ID soap-env:mustUnderstand="1">a&amp;b</cwmp:ID>`)
	assert.Contains(t, string(out), "\uFFFDbell&#xD;\n&lt;&gt;&amp;\uFFFD")
	assert.Contains(t, string(out), `xmlns:cwmp="`+NS10+`"`, "no namespace given means cwmp-1-0")
	back, err := DecodeBytes(out)
	require.NoError(t, err, "what we encode always parses")
	assert.Equal(t, "a&b", back.ID)

	for s, v := range map[string]Version{"1.0": V10, "1.1": V11, "1.2": V12, "1.3": V13, "1.4": V14} {
		got, err := ParseVersion(s)
		require.NoError(t, err)
		assert.Equal(t, v, got)
		assert.Equal(t, s, v.String())
	}
	assert.Equal(t, NS12, V14.Namespace())
	assert.Equal(t, NS10, V10.Namespace())
	_, err = ParseVersion("2.0")
	assert.Error(t, err)
	var buf bytes.Buffer
	n, err := env.WriteTo(&buf)
	require.NoError(t, err)
	assert.Equal(t, int64(len(out)), n)
}

func TestFaultCodes(t *testing.T) {
	assert.Equal(t, "Client", DefaultFaultCode(9005))
	assert.Equal(t, "Server", DefaultFaultCode(9002))
	f := &Fault{Code: 9001, String: "Request denied"}
	assert.Equal(t, "cwmp fault 9001: Request denied", f.Error())
}

func TestFastPathIsTakenForPlainRequests(t *testing.T) {
	for _, m := range []Message{&GetParameterValues{ParameterNames: []string{"Device.", "Device.X&Y"}}, &GetParameterAttributes{ParameterNames: []string{}}} {
		data := (&Envelope{NS: NS12, ID: "7", Body: m}).Encode()
		fast := fastDecode(data)
		require.NotNil(t, fast, "%s should take the fast path", m.Method())
		slow, err := decodeDOM(data)
		require.NoError(t, err)
		assert.Equal(t, slow, fast)
	}
	assert.Nil(t, fastDecode([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?>`+string(wrap("", "<cwmp:GetParameterValues><ParameterNames/></cwmp:GetParameterValues>")))), "other encodings go to etree")
	env, err := DecodeBytes([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?>` + string(wrap("", "<cwmp:GetParameterValues><ParameterNames><string>caf\xe9</string></ParameterNames></cwmp:GetParameterValues>"))))
	require.NoError(t, err, "ISO-8859-1 is read")
	assert.Equal(t, []string{"café"}, env.Body.(*GetParameterValues).ParameterNames)
}
