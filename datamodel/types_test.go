package datamodel

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustType(t *testing.T, s string) Type {
	t.Helper()
	ty, err := ParseType(s)
	require.NoError(t, err, s)
	return ty
}

func TestParseType(t *testing.T) {
	for _, tc := range []struct {
		in, out string
		bad     bool
	}{
		{in: "string", out: "string"},
		{in: "string(64)", out: "string(64)"},
		{in: "unsignedInt[1:]", out: "unsignedInt[1:]"},
		{in: "int[-1:]", out: "int[-1:]"},
		{in: "unsignedInt[0:65535]", out: "unsignedInt[0:65535]"},
		{in: "boolean", out: "boolean"},
		{in: "dateTime", out: "dateTime"},
		{in: "base64(4095)", out: "base64(4095)"},
		{in: "IPAddress", out: "IPAddress"},
		{in: "MACAddress", out: "MACAddress"},
		{in: "long", out: "long"},
		{in: "unsignedLong", out: "unsignedLong"},
		{in: "float", bad: true},
		{in: "string[1:2]", bad: true},
		{in: "int(4)", bad: true},
		{in: "unsignedInt[1]", bad: true},
		{in: "string(-1)", bad: true},
		{in: "int[a:]", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			ty, err := ParseType(tc.in)
			if tc.bad {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.out, ty.String())
		})
	}
}

func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		typ, in, out string
		bad          bool
	}{
		{typ: "boolean", in: "1", out: "true"},
		{typ: "boolean", in: "0", out: "false"},
		{typ: "boolean", in: "true", out: "true"},
		{typ: "boolean", in: "false", out: "false"},
		{typ: "boolean", in: " true ", out: "true"},
		{typ: "boolean", in: "yes", bad: true},
		{typ: "boolean", in: "", bad: true},
		{typ: "unsignedInt", in: "4294967295", out: "4294967295"},
		{typ: "unsignedInt", in: "4294967296", bad: true},
		{typ: "unsignedInt", in: "-1", bad: true},
		{typ: "unsignedInt", in: "007", out: "7"},
		{typ: "unsignedInt[1:]", in: "0", bad: true},
		{typ: "unsignedInt[1:]", in: "1", out: "1"},
		{typ: "unsignedInt[0:65535]", in: "65536", bad: true},
		{typ: "int[-1:]", in: "-1", out: "-1"},
		{typ: "int[-1:]", in: "-2", bad: true},
		{typ: "int", in: "2147483648", bad: true},
		{typ: "int", in: "1.5", bad: true},
		{typ: "long", in: "-9223372036854775808", out: "-9223372036854775808"},
		{typ: "unsignedLong", in: "18446744073709551615", out: "18446744073709551615"},
		{typ: "string(3)", in: "abc", out: "abc"},
		{typ: "string(3)", in: "abcd", bad: true},
		{typ: "string(3)", in: "äöü", out: "äöü"},
		{typ: "string", in: "\xff", bad: true},
		{typ: "dateTime", in: "0001-01-01T00:00:00Z", out: UnknownTime},
		{typ: "dateTime", in: "0000-00-00T00:00:00", out: UnknownTime},
		{typ: "dateTime", in: "2024-05-01T12:00:00+02:00", out: "2024-05-01T10:00:00Z"},
		{typ: "dateTime", in: "2024-05-01T12:00:00.123Z", out: "2024-05-01T12:00:00.123Z"},
		{typ: "dateTime", in: "2026-11-30T08:15:52.500Z", out: "2026-11-30T08:15:52.500Z"}, // GenieACS writes milliseconds
		{typ: "dateTime", in: "2024-05-01T12:00:00.25+02:00", out: "2024-05-01T10:00:00.25Z"},
		{typ: "dateTime", in: "2024-05-01T12:00:00", out: "2024-05-01T12:00:00Z"},
		{typ: "dateTime", in: "yesterday", bad: true},
		{typ: "base64(3)", in: "YWJj", out: "YWJj"},
		{typ: "base64(3)", in: "YWJjZA==", bad: true},
		{typ: "base64", in: "!!", bad: true},
		{typ: "IPAddress", in: "192.0.2.1", out: "192.0.2.1"},
		{typ: "IPAddress", in: "2001:db8::1", out: "2001:db8::1"},
		{typ: "IPAddress", in: "", out: ""},
		{typ: "IPAddress", in: "300.1.1.1", bad: true},
		{typ: "MACAddress", in: "00:11:22:aa:BB:cc", out: "00:11:22:aa:BB:cc"},
		{typ: "MACAddress", in: "00-11-22-aa-bb-cc", bad: true},
	} {
		t.Run(tc.typ+"/"+tc.in, func(t *testing.T) {
			out, err := mustType(t, tc.typ).Canonical(tc.in)
			if tc.bad {
				require.Error(t, err)
				assert.True(t, errors.Is(err, ErrInvalidValue), "%v should wrap ErrInvalidValue", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.out, out)
		})
	}
}

func TestEnum(t *testing.T) {
	ty := mustType(t, "string")
	ty.Enum = []string{"Up", "Down"}
	_, err := ty.Canonical("Up")
	assert.NoError(t, err)
	_, err = ty.Canonical("Sideways")
	assert.ErrorIs(t, err, ErrInvalidValue)
	assert.Contains(t, err.Error(), "Up, Down")
}

func TestKindFromXSD(t *testing.T) {
	for in, want := range map[string]Kind{"xsd:string": String, "xs:int": Int, "unsignedInt": UnsignedInt,
		"xsd:boolean": Boolean, "xsd:dateTime": DateTime, "xsd:base64": Base64, "soap-enc:base64": Base64} {
		k, ok := KindFromXSD(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, k, in)
	}
	_, ok := KindFromXSD("xsd:json")
	assert.False(t, ok)
	assert.Equal(t, "xsd:unsignedInt", UnsignedInt.XSD())
	assert.True(t, strings.HasPrefix(Kind(99).String(), "Kind("))
}
