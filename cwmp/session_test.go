package cwmp

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/soap"
)

func TestBootstrapInform(t *testing.T) {
	h := newHarness(t)
	inf, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	assert.Equal(t, []string{"0 BOOTSTRAP", "1 BOOT"}, events(inf))
	assert.Equal(t, soap.DeviceID{Manufacturer: "cwmp-agent", OUI: testOUI, ProductClass: testClass, SerialNumber: testSerial}, inf.DeviceId)
	assert.Equal(t, uint32(1), inf.MaxEnvelopes)
	assert.Equal(t, uint32(0), inf.RetryCount)
	assert.WithinDuration(t, time.Now(), inf.CurrentTime, 5*time.Second)
	p := params(inf)
	for _, n := range []string{"Device.DeviceSummary", "Device.DeviceInfo.HardwareVersion", "Device.DeviceInfo.SoftwareVersion",
		"Device.ManagementServer.ConnectionRequestURL", "Device.ManagementServer.ParameterKey", "Device.LAN.IPAddress"} {
		assert.Contains(t, p, n, "forced Inform parameter")
	}
	assert.Equal(t, "1.0.0", p["Device.DeviceInfo.SoftwareVersion"].Value)
	assert.True(t, strings.HasPrefix(p["Device.ManagementServer.ConnectionRequestURL"].Value, "http://127.0.0.1:"))
	require.NoError(t, h.acs.WaitSessions(h.ctx(), testID, 1))

	ex := h.acs.Exchanges()
	require.GreaterOrEqual(t, len(ex), 2)
	assert.Equal(t, soap.NS12, ex[0].InEnv.NS, "the Inform goes in the highest namespace")
	assert.Equal(t, soap.SupportedVersions, ex[0].InEnv.SupportedCWMPVersions)
	assert.Nil(t, ex[1].In, "then an empty POST")
	assert.Equal(t, http.StatusNoContent, ex[1].Status)
	assert.Empty(t, h.acs.BadHeaders())
	assert.Equal(t, "", ex[1].Header.Get("Content-Type"), "no Content-Type on the empty POST")

	// A restart sends 1 BOOT only: the bootstrap reached this ACS URL.
	h.restart()
	inf, err = h.acs.WaitInform(h.ctx(), testID, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"1 BOOT"}, events(inf))
}

func TestEveryParameterRPC(t *testing.T) {
	h := newHarness(t)
	_, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)

	resp, err := h.call(&soap.GetRPCMethods{})
	require.NoError(t, err)
	ml := resp.(*soap.GetRPCMethodsResponse).MethodList
	for _, m := range []string{"GetRPCMethods", "SetParameterValues", "GetParameterValues", "GetParameterNames", "SetParameterAttributes",
		"GetParameterAttributes", "AddObject", "DeleteObject", "Reboot", "Download", "Upload", "FactoryReset", "ScheduleInform",
		"GetQueuedTransfers", "GetAllQueuedTransfers", "ScheduleDownload", "CancelTransfer"} {
		assert.Contains(t, ml, m)
	}

	resp, err = h.call(&soap.GetParameterValues{ParameterNames: []string{"Device.ManagementServer.PeriodicInformInterval", "Device.ManagementServer.Password"}})
	require.NoError(t, err)
	pl := resp.(*soap.GetParameterValuesResponse).ParameterList
	require.Len(t, pl, 2)
	assert.Equal(t, soap.ParameterValue{Name: "Device.ManagementServer.PeriodicInformInterval", Value: "3600", Type: "xsd:unsignedInt"}, pl[0])
	assert.Equal(t, "", pl[1].Value, "passwords read back empty")

	_, err = h.call(&soap.GetParameterValues{ParameterNames: []string{"Device.DeviceInfo.", "Device.Nope"}})
	assertFault(t, err, 9005)

	resp, err = h.call(&soap.SetParameterValues{ParameterList: []soap.ParameterValue{
		{Name: "Device.ManagementServer.PeriodicInformInterval", Value: "600", Type: "xsd:unsignedInt"},
		{Name: "Device.ManagementServer.PeriodicInformEnable", Value: "1", Type: "xsd:boolean"},
	}, ParameterKey: "spv-1"})
	require.NoError(t, err)
	assert.Equal(t, 0, resp.(*soap.SetParameterValuesResponse).Status)
	assert.Equal(t, "600", h.tree.MustGet("Device.ManagementServer.PeriodicInformInterval"))
	assert.Equal(t, "spv-1", h.tree.MustGet("Device.ManagementServer.ParameterKey"))

	_, err = h.call(&soap.SetParameterValues{ParameterList: []soap.ParameterValue{
		{Name: "Device.ManagementServer.PeriodicInformInterval", Value: "0", Type: "xsd:unsignedInt"},
		{Name: "Device.DeviceInfo.SerialNumber", Value: "x"},
		{Name: "Device.Bogus", Value: "x"},
		{Name: "Device.ManagementServer.STUNEnable", Value: "maybe", Type: "xsd:boolean"},
		{Name: "Device.ManagementServer.STUNServerPort", Value: "x", Type: "xsd:boolean"},
		{Name: "Device.ManagementServer.Username", Value: "new"},
	}, ParameterKey: "spv-2"})
	f := assertFault(t, err, 9003)
	require.NotNil(t, f)
	codes := map[string]int{}
	for _, pf := range f.SetParameterValuesFault {
		codes[pf.ParameterName] = pf.FaultCode
	}
	assert.Equal(t, map[string]int{
		"Device.ManagementServer.PeriodicInformInterval": 9007,
		"Device.DeviceInfo.SerialNumber":                 9008,
		"Device.Bogus":                                   9005,
		"Device.ManagementServer.STUNEnable":             9007,
		"Device.ManagementServer.STUNServerPort":         9006,
	}, codes)
	assert.Equal(t, "", h.tree.MustGet("Device.ManagementServer.Username"), "all or nothing")
	assert.Equal(t, "spv-1", h.tree.MustGet("Device.ManagementServer.ParameterKey"), "ParameterKey only on success")

	_, err = h.call(&soap.SetParameterValues{ParameterList: []soap.ParameterValue{
		{Name: "Device.ManagementServer.Username", Value: "a"}, {Name: "Device.ManagementServer.Username", Value: "b"}}})
	assertFault(t, err, 9003)

	resp, err = h.call(&soap.GetParameterNames{ParameterPath: "", NextLevel: true})
	require.NoError(t, err)
	assert.Equal(t, []soap.ParameterInfo{{Name: "Device.", Writable: false}}, resp.(*soap.GetParameterNamesResponse).ParameterList)
	resp, err = h.call(&soap.GetParameterNames{ParameterPath: "Device.ManagementServer.", NextLevel: true})
	require.NoError(t, err)
	assert.Contains(t, resp.(*soap.GetParameterNamesResponse).ParameterList, soap.ParameterInfo{Name: "Device.ManagementServer.URL", Writable: true})
	_, err = h.call(&soap.GetParameterNames{ParameterPath: "Device.ManagementServer.URL", NextLevel: true})
	assertFault(t, err, 9003)
	_, err = h.call(&soap.GetParameterNames{ParameterPath: "Device.Nothing.", NextLevel: false})
	assertFault(t, err, 9005)

	_, err = h.call(&soap.SetParameterAttributes{ParameterList: []soap.SetParameterAttributesStruct{
		{Name: "Device.ManagementServer.PeriodicInformInterval", NotificationChange: true, Notification: 1, AccessListChange: true, AccessList: []string{"Subscriber"}}}})
	require.NoError(t, err)
	resp, err = h.call(&soap.GetParameterAttributes{ParameterNames: []string{"Device.ManagementServer.PeriodicInformInterval", "Device.GatewayInfo."}})
	require.NoError(t, err)
	al := resp.(*soap.GetParameterAttributesResponse).ParameterList
	require.Len(t, al, 4)
	assert.Equal(t, soap.ParameterAttribute{Name: "Device.ManagementServer.PeriodicInformInterval", Notification: 1, AccessList: []string{"Subscriber"}}, al[0])
	assert.Equal(t, 2, al[1].Notification, "GatewayInfo defaults to Active Notification")
	_, err = h.call(&soap.SetParameterAttributes{ParameterList: []soap.SetParameterAttributesStruct{{Name: "Device.DeviceInfo.UpTime", NotificationChange: true, Notification: 2}}})
	assertFault(t, err, 9009)
	_, err = h.call(&soap.SetParameterAttributes{ParameterList: []soap.SetParameterAttributesStruct{{Name: "Device.ManagementServer.URL", NotificationChange: true, Notification: 5}}})
	assertFault(t, err, 9009)

	resp, err = h.call(&soap.AddObject{ObjectName: "Device.LAN.DHCPOption.", ParameterKey: "add-1"})
	require.NoError(t, err)
	inst := resp.(*soap.AddObjectResponse).InstanceNumber
	assert.Equal(t, uint32(1), inst)
	assert.Equal(t, "1", h.tree.MustGet("Device.LAN.DHCPOptionNumberOfEntries"))
	_, err = h.call(&soap.DeleteObject{ObjectName: "Device.LAN.DHCPOption.1.", ParameterKey: "del-1"})
	require.NoError(t, err)
	assert.Equal(t, "del-1", h.tree.MustGet("Device.ManagementServer.ParameterKey"))
	resp, err = h.call(&soap.AddObject{ObjectName: "Device.LAN.DHCPOption."})
	require.NoError(t, err)
	assert.Equal(t, uint32(2), resp.(*soap.AddObjectResponse).InstanceNumber, "instance numbers are not reused")
	_, err = h.call(&soap.AddObject{ObjectName: "Device.DeviceInfo."})
	assertFault(t, err, 9005)
	_, err = h.call(&soap.DeleteObject{ObjectName: "Device.LAN.DHCPOption.7."})
	assertFault(t, err, 9005)

	_, err = h.call(&soap.ScheduleInform{DelaySeconds: 0, CommandKey: "x"})
	assertFault(t, err, 9003)
	_, err = h.call(&soap.CancelTransfer{CommandKey: "none"})
	assertFault(t, err, 9003)
	_, err = h.call(&soap.Kicked{})
	assertFault(t, err, 9000)
}

func assertFault(t *testing.T, err error, code int) *soap.Fault {
	t.Helper()
	f, ok := err.(*soap.Fault)
	if !assert.True(t, ok, "want fault %d, got %v", code, err) {
		return nil
	}
	assert.Equal(t, code, f.Code, f.String)
	return f
}

func TestUnknownMethodInOldVersion(t *testing.T) {
	h := newHarness(t, withConfig(func(c *Config) { c.Version = soap.V10 }))
	_, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	ex := h.acs.Exchanges()
	assert.Equal(t, soap.NS10, ex[0].InEnv.NS)
	assert.Empty(t, ex[0].InEnv.SupportedCWMPVersions)
	_, err = h.call(&soap.GetAllQueuedTransfers{})
	assertFault(t, err, 9000)
	resp, err := h.call(&soap.GetRPCMethods{})
	require.NoError(t, err)
	assert.NotContains(t, resp.(*soap.GetRPCMethodsResponse).MethodList, "ScheduleDownload")
}

func TestFollowsACSNamespace(t *testing.T) {
	h := newHarness(t)
	h.acs.AnswerIn(soap.NS10, "")
	_, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	_, err = h.call(&soap.GetParameterValues{ParameterNames: []string{"Device.DeviceSummary"}})
	require.NoError(t, err)
	found := false
	for _, x := range h.acs.Exchanges() {
		if x.InEnv != nil && x.InEnv.Body.Method() == "GetParameterValuesResponse" {
			found = true
			assert.Equal(t, soap.NS10, x.InEnv.NS, "the response uses the namespace the ACS answered in")
		}
	}
	assert.True(t, found)
}

func TestAuthBasicAndDigest(t *testing.T) {
	for _, auth := range []cwmptest.Auth{cwmptest.AuthBasic, cwmptest.AuthDigest} {
		h := newHarness(t, func(h *harness) { h.acs.SetAuth(auth, "cpe", "pw") })
		require.NoError(t, h.tree.Set("Device.ManagementServer.Username", "cpe"))
		require.NoError(t, h.tree.Set("Device.ManagementServer.Password", "pw"))
		h.agent.ConnectionRequest()
		require.NoError(t, h.acs.WaitSessions(h.ctx(), testID, 1))
		resp, err := h.call(&soap.GetParameterValues{ParameterNames: []string{"Device.DeviceSummary"}})
		require.NoError(t, err)
		assert.Len(t, resp.(*soap.GetParameterValuesResponse).ParameterList, 1)
		h.stop()
	}
}

func TestWrongPasswordFailsAndRetries(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.acs.SetAuth(cwmptest.AuthDigest, "cpe", "right") })
	require.NoError(t, h.tree.Set("Device.ManagementServer.Username", "cpe"))
	require.NoError(t, h.tree.Set("Device.ManagementServer.Password", "wrong"))
	require.Eventually(t, func() bool { _, f, _ := h.agent.Stats(); return f >= 2 }, 10*time.Second, 10*time.Millisecond)
	assert.Nil(t, h.acs.Device(testID), "no session was opened")
	require.NoError(t, h.tree.Set("Device.ManagementServer.Password", "right"))
	inf, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, inf.RetryCount, uint32(2), "RetryCount counts the failed attempts")
	assert.Contains(t, events(inf), "0 BOOTSTRAP", "events survive failed sessions")
}

func TestCookiesRedirectsAndHold(t *testing.T) {
	h := newHarness(t, func(h *harness) {
		h.acs.SetCookie(&http.Cookie{Name: "route", Value: "node7", Path: "/elsewhere"})
		h.acs.RedirectNext(1)
		h.acs.HoldRequests(true)
	})
	require.NoError(t, h.acs.WaitSessions(h.ctx(), testID, 1))
	assert.True(t, h.acs.CookieReturned("route"), "every cookie comes back, whatever its Path")
	ex := h.acs.Exchanges()
	assert.Equal(t, http.StatusTemporaryRedirect, ex[0].Status)
	assert.NotNil(t, ex[1].InEnv, "the Inform is sent again to the new location")
	_, ok := ex[1].InEnv.Body.(*soap.Inform)
	assert.True(t, ok)
}

func TestDroppedConnectionAndSlowACS(t *testing.T) {
	h := newHarness(t, withConfig(func(c *Config) { c.ResponseTimeout = 300 * time.Millisecond }), func(h *harness) {
		h.acs.DropNext(1)
	})
	inf, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	assert.Equal(t, uint32(1), inf.RetryCount, "a dropped connection fails the session")
	require.NoError(t, h.acs.WaitSessions(h.ctx(), testID, 1))

	h.acs.Delay(time.Second)
	h.agent.ConnectionRequest()
	require.Eventually(t, func() bool { _, f, _ := h.agent.Stats(); return f >= 2 }, 10*time.Second, 10*time.Millisecond)
	h.acs.Delay(0)
}

func TestFaultToInformFailsTheSession(t *testing.T) {
	h := newHarness(t, func(h *harness) { h.acs.FaultInforms(2, 8002) })
	inf, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	assert.Equal(t, uint32(2), inf.RetryCount, "a SOAP fault to the Inform fails the session, and it is retried")
	assert.Contains(t, events(inf), "0 BOOTSTRAP")
}

func TestStatusOneWhenARebootApplies(t *testing.T) {
	h := newHarness(t)
	_, err := h.acs.WaitInform(h.ctx(), testID, 1)
	require.NoError(t, err)
	resp, err := h.call(&soap.SetParameterValues{ParameterList: []soap.ParameterValue{{Name: "Device.LAN.AddressingType", Value: "Static"}}})
	require.NoError(t, err)
	assert.Equal(t, 1, resp.(*soap.SetParameterValuesResponse).Status, "LAN.AddressingType takes effect after a reboot")
}

func TestCPEAsksForRPCMethods(t *testing.T) {
	h := newHarness(t)
	h.acs.Methods([]string{"Inform", "GetRPCMethods", "TransferComplete"}) // GenieACS's list
	require.NoError(t, h.acs.WaitSessions(h.ctx(), testID, 1))
	h.agent.RequestRPCMethods()
	h.agent.ConnectionRequest()
	require.Eventually(t, func() bool { return len(h.agent.ACSMethods()) > 0 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, []string{"Inform", "GetRPCMethods", "TransferComplete"}, h.agent.ACSMethods())
}

// lateContext is a context whose deadline has passed but whose timer has
// not yet marked it done, the moment a socket deadline derived from it can
// already have fired.
type lateContext struct{ context.Context }

func (lateContext) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

func TestStoppingAtTheDeadline(t *testing.T) {
	assert.False(t, stopping(context.Background()))
	assert.True(t, stopping(lateContext{context.Background()}), "past its deadline: the agent is stopping")
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	assert.False(t, stopping(ctx))
	cancel()
	assert.True(t, stopping(ctx))
}
