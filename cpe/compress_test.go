package cpe

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// HTTPCompression GZIP: the CPE's POSTs are gzipped and gzipped answers
// read; an ACS that answers 415 gets the message again plain and no
// compression after that.
func TestHTTPCompression(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	acs.GzipResponses(true)
	c := device2(t, acs.URL, "GZ", map[string]string{ms + "HTTPCompression": "GZIP"}, nil)
	testrun.Go(t, c.Run)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := "00D09E-GZ"
	_, err = acs.WaitInform(ctx, id, 1)
	require.NoError(t, err)
	assert.Positive(t, acs.CompressedRequests(), "the Inform came gzipped")
	resp, err := call(ctx, t, acs, c, id, &soap.GetParameterValues{ParameterNames: []string{"Device.DeviceInfo."}})
	require.NoError(t, err, "a gzipped request from the ACS is read")
	assert.NotEmpty(t, resp.(*soap.GetParameterValuesResponse).ParameterList)

	acs.RefuseCompressed(true)
	before := acs.CompressedRequests()
	_, err = call(ctx, t, acs, c, id, &soap.GetParameterValues{ParameterNames: []string{"Device.DeviceInfo.UpTime"}})
	require.NoError(t, err, "after a 415 the message goes again uncompressed")
	after := acs.CompressedRequests()
	assert.Equal(t, before+1, after, "one compressed POST, refused")
	_, err = call(ctx, t, acs, c, id, &soap.GetParameterValues{ParameterNames: []string{"Device.DeviceInfo.UpTime"}})
	require.NoError(t, err)
	assert.Equal(t, after, acs.CompressedRequests(), "no compression for that ACS any more")

	// Only the codings the agent speaks may be chosen.
	err = c.Tree.SetValues([]datamodel.Change{{Path: ms + "HTTPCompression", Value: "Compress"}}, datamodelACS())
	assert.Error(t, err)
}
