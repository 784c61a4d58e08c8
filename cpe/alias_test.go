package cpe

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

// Alias-Based Addressing on Device:2.19 (TR-069 3.6.1): AddObject with
// "[alias]", then every RPC reaches that instance by its alias.
func TestAliasBasedAddressing(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	c, err := Build(Config{DataModel: "Device:2.19", StateDir: t.TempDir(), ConnReqListen: "127.0.0.1:0",
		Factory: map[string]string{ms + "URL": acs.URL, "Device.DeviceInfo.ManufacturerOUI": "00D09E",
			"Device.DeviceInfo.SerialNumber": "ALIAS", ms + "PeriodicInformEnable": "false"},
		Agent: cwmp.Config{RetryMinimumWait: 50 * time.Millisecond}})
	require.NoError(t, err)
	testrun.Go(t, c.Run)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := "00D09E-ALIAS"
	inf, err := acs.WaitInform(ctx, id, 1)
	require.NoError(t, err)
	forced := map[string]string{}
	for _, p := range inf.ParameterList {
		forced[p.Name] = p.Value
	}
	assert.Equal(t, "true", forced[ms+"AliasBasedAddressing"], "announced in the Inform")

	pm := "Device.NAT.PortMapping."
	resp, err := call(ctx, t, acs, c, id, &soap.AddObject{ObjectName: pm + "[web]."})
	require.NoError(t, err)
	n := resp.(*soap.AddObjectResponse).InstanceNumber
	assert.Equal(t, "web", c.Tree.MustGet(pm+itoa(n)+".Alias"))
	_, err = call(ctx, t, acs, c, id, &soap.SetParameterValues{ParameterList: []soap.ParameterValue{
		{Name: pm + "[web].Description", Value: "the web server", Type: "xsd:string"}}})
	require.NoError(t, err)
	assert.Equal(t, "the web server", c.Tree.MustGet(pm+itoa(n)+".Description"))
	resp, err = call(ctx, t, acs, c, id, &soap.GetParameterValues{ParameterNames: []string{pm + "[web].Description"}})
	require.NoError(t, err)
	got := resp.(*soap.GetParameterValuesResponse).ParameterList
	require.Len(t, got, 1)
	assert.Equal(t, "the web server", got[0].Value)
	assert.Equal(t, pm+itoa(n)+".Description", got[0].Name, "InstanceMode InstanceNumber: names with instance numbers")

	_, err = call(ctx, t, acs, c, id, &soap.AddObject{ObjectName: pm + "[web]."})
	assert.ErrorContains(t, err, "9003", "an alias in use")
	for _, pv := range []soap.ParameterValue{{Name: ms + "InstanceMode", Value: "InstanceAlias"}, {Name: ms + "AutoCreateInstances", Value: "true"}} {
		_, err = call(ctx, t, acs, c, id, &soap.SetParameterValues{ParameterList: []soap.ParameterValue{pv}})
		var f *soap.Fault
		require.ErrorAs(t, err, &f)
		require.Len(t, f.SetParameterValuesFault, 1)
		assert.Equal(t, 9007, f.SetParameterValuesFault[0].FaultCode, "%s %s is not offered", pv.Name, pv.Value)
	}
	_, err = call(ctx, t, acs, c, id, &soap.GetParameterValues{ParameterNames: []string{pm + "[nope].Description"}})
	assert.ErrorContains(t, err, "9005", "an unknown alias")

	_, err = call(ctx, t, acs, c, id, &soap.DeleteObject{ObjectName: pm + "[web]."})
	require.NoError(t, err)
	_, err = c.Tree.Get(pm + itoa(n) + ".Alias")
	assert.Error(t, err, "deleted by its alias")
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
