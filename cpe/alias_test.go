package cpe

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
	c := device2(t, acs.URL, "ALIAS", nil, nil)
	testrun.Go(t, c.Run)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
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
	// Without AutoCreateInstances an unknown alias is an unknown name.
	_, err = call(ctx, t, acs, c, id, &soap.SetParameterValues{ParameterList: []soap.ParameterValue{
		{Name: pm + "[ssh].Description", Value: "ssh", Type: "xsd:string"}}})
	var f *soap.Fault
	require.ErrorAs(t, err, &f)
	require.Len(t, f.SetParameterValuesFault, 1)
	assert.Equal(t, 9005, f.SetParameterValuesFault[0].FaultCode)
	// With it, the instance is created with that alias; a transaction that
	// fails leaves none behind.
	_, err = call(ctx, t, acs, c, id, &soap.SetParameterValues{ParameterList: []soap.ParameterValue{{Name: ms + "AutoCreateInstances", Value: "true", Type: "xsd:boolean"}}})
	require.NoError(t, err)
	_, err = call(ctx, t, acs, c, id, &soap.SetParameterValues{ParameterList: []soap.ParameterValue{
		{Name: pm + "[ssh].Description", Value: "ssh", Type: "xsd:string"}, {Name: pm + "[ssh].ExternalPort", Value: "22", Type: "xsd:unsignedInt"}}})
	require.NoError(t, err)
	before, err := c.Tree.Instances(pm)
	require.NoError(t, err)
	assert.Len(t, before, 2)
	assert.Equal(t, "ssh", c.Tree.MustGet(pm+itoa(before[1])+".Alias"))
	assert.Equal(t, "22", c.Tree.MustGet(pm+itoa(before[1])+".ExternalPort"))
	_, err = call(ctx, t, acs, c, id, &soap.SetParameterValues{ParameterList: []soap.ParameterValue{
		{Name: pm + "[ftp].ExternalPort", Value: "not-a-number", Type: "xsd:unsignedInt"}}})
	require.Error(t, err)
	after, _ := c.Tree.Instances(pm)
	assert.Equal(t, before, after, "the failed transaction's instance is gone again")
	_, err = call(ctx, t, acs, c, id, &soap.GetParameterValues{ParameterNames: []string{pm + "[nope].Description"}})
	assert.ErrorContains(t, err, "9005", "an unknown alias")

	// InstanceMode InstanceAlias: names come back with the alias.
	_, err = call(ctx, t, acs, c, id, &soap.SetParameterValues{ParameterList: []soap.ParameterValue{{Name: ms + "InstanceMode", Value: "InstanceAlias"}}})
	require.NoError(t, err)
	resp, err = call(ctx, t, acs, c, id, &soap.GetParameterValues{ParameterNames: []string{pm}})
	require.NoError(t, err)
	names := []string{}
	for _, p := range resp.(*soap.GetParameterValuesResponse).ParameterList {
		names = append(names, p.Name)
	}
	assert.Contains(t, names, pm+"[web].Description")
	resp, err = call(ctx, t, acs, c, id, &soap.GetParameterNames{ParameterPath: pm, NextLevel: true})
	require.NoError(t, err)
	assert.Equal(t, pm+"[web].", resp.(*soap.GetParameterNamesResponse).ParameterList[0].Name)

	_, err = call(ctx, t, acs, c, id, &soap.DeleteObject{ObjectName: pm + "[web]."})
	require.NoError(t, err)
	_, err = c.Tree.Get(pm + itoa(n) + ".Alias")
	assert.Error(t, err, "deleted by its alias")
}

// The test makes more calls than the Connection Request rate limit lets
// through at once (10, then one every 3 s): its 90 s allow for that.

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }
