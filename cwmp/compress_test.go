package cwmp

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/soap"
)

func TestDecompressBody(t *testing.T) {
	msg := []byte("<soap-env:Envelope>hello</soap-env:Envelope>")
	for _, coding := range []string{"gzip", "deflate"} {
		z, err := compressBody(coding, msg)
		require.NoError(t, err)
		back, err := decompressBody(coding, z)
		require.NoError(t, err)
		assert.Equal(t, msg, back, coding)
		_, err = decompressBody(coding, z[:len(z)/2])
		assert.Error(t, err, "a truncated %s body", coding)
	}
	// Raw deflate, which some servers send for "deflate".
	var raw bytes.Buffer
	fw, _ := flate.NewWriter(&raw, flate.BestSpeed)
	fw.Write(msg)
	fw.Close()
	back, err := decompressBody("deflate", raw.Bytes())
	require.NoError(t, err)
	assert.Equal(t, msg, back)

	// A bomb: a few KB that inflate past a message's size.
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zw.Write(make([]byte, soap.MaxMessageSize+10))
	zw.Close()
	require.Less(t, bomb.Len(), 64<<10)
	_, err = decompressBody("gzip", bomb.Bytes())
	assert.ErrorIs(t, err, errBomb)
	_, err = decompressBody("br", msg)
	assert.Error(t, err, "an unknown coding")
}

// BenchmarkCompressGPVResponse10k: what gzip and deflate save on the
// largest message a CPE usually sends, a 10,000-value
// GetParameterValuesResponse, and the CPU that costs.
func BenchmarkCompressGPVResponse10k(b *testing.B) {
	list := make([]soap.ParameterValue, 10000)
	for i := range list {
		list[i] = soap.ParameterValue{Name: fmt.Sprintf("Device.Hosts.Host.%d.PhysAddress", i+1), Value: fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&255, i>>8&255, i&255), Type: "xsd:string"}
	}
	body := (&soap.Envelope{NS: soap.NS12, ID: "1", Body: &soap.GetParameterValuesResponse{ParameterList: list}}).Encode()
	for _, coding := range []string{"gzip", "deflate"} {
		b.Run(coding, func(b *testing.B) {
			var out []byte
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				out, _ = compressBody(coding, body)
			}
			b.ReportMetric(float64(len(body)), "plain-bytes")
			b.ReportMetric(float64(len(out)), "wire-bytes")
			b.ReportMetric(float64(len(body))/float64(len(out)), "ratio")
		})
	}
}
