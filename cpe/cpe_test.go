package cpe

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cwmp"
	"github.com/cwmp-agent/cwmp-agent/cwmp/cwmptest"
	"github.com/cwmp-agent/cwmp-agent/internal/linux/sysinfo"
	"github.com/cwmp-agent/cwmp-agent/internal/logring"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testrun"
	"github.com/cwmp-agent/cwmp-agent/soap"
	"github.com/cwmp-agent/cwmp-agent/tr111"
)

func build(t testing.TB, acs *cwmptest.ACS, root string) (*CPE, context.CancelFunc) {
	t.Helper()
	factory := map[string]string{
		root + ".ManagementServer.URL":                  acs.URL,
		root + ".DeviceInfo.ManufacturerOUI":            "00D09E",
		root + ".DeviceInfo.SerialNumber":               "CPE1",
		root + ".ManagementServer.PeriodicInformEnable": "false",
	}
	c, err := Build(Config{Root: root, StateDir: t.TempDir(), Factory: factory, ConnReqListen: "127.0.0.1:0",
		Host: &sysinfo.Host{}, Log: logring.New(4096), Agent: cwmp.Config{RetryMinimumWait: 50 * time.Millisecond}})
	require.NoError(t, err)
	return c, testrun.Go(t, c.Run)
}

func TestBothRootsReachTheACS(t *testing.T) {
	for _, root := range []string{"Device", "InternetGatewayDevice"} {
		t.Run(root, func(t *testing.T) {
			acs, err := cwmptest.New()
			require.NoError(t, err)
			defer acs.Close()
			c, _ := build(t, acs, root)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			inf, err := acs.WaitInform(ctx, "00D09E-CPE1", 1)
			require.NoError(t, err)
			names := map[string]string{}
			for _, p := range inf.ParameterList {
				names[p.Name] = p.Value
			}
			assert.Contains(t, names, root+".ManagementServer.ConnectionRequestURL")
			if root == "InternetGatewayDevice" {
				assert.Equal(t, "1.0", names[root+".DeviceInfo.SpecVersion"])
				assert.Equal(t, "127.0.0.1", names[root+".WANDevice.1.WANConnectionDevice.1.WANIPConnection.1.ExternalIPAddress"],
					"the WAN address is the one that reaches the ACS")
			} else {
				assert.Equal(t, "127.0.0.1", names["Device.LAN.IPAddress"])
			}
			up, err := c.Tree.Get(root + ".DeviceInfo.UpTime")
			require.NoError(t, err)
			assert.NotEqual(t, "", up)
		})
	}
}

// BenchmarkActiveChangeToInform measures the time from a device-side change
// of an Active Notification parameter to the 4 VALUE CHANGE Inform arriving
// at a loopback ACS. Target: under 20 ms.
func BenchmarkActiveChangeToInform(b *testing.B) {
	acs, err := cwmptest.New()
	require.NoError(b, err)
	defer acs.Close()
	acs.Record(false)
	arrived := make(chan string, 16)
	acs.OnInform(func(d *cwmptest.Device, inf *soap.Inform) {
		for _, p := range inf.ParameterList {
			if p.Name == "Device.GatewayInfo.SerialNumber" {
				arrived <- p.Value
			}
		}
	})
	c, _ := build(b, acs, "Device")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(b, acs.WaitSessions(ctx, "00D09E-CPE1", 1))
	sessions := 1
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		want := fmt.Sprint("GW", i)
		if err := c.Tree.Set("Device.GatewayInfo.SerialNumber", want); err != nil {
			b.Fatal(err)
		}
		for got := ""; got != want; {
			select {
			case got = <-arrived:
			case <-ctx.Done():
				b.Fatal("no Inform")
			}
		}
		b.StopTimer()
		sessions++
		if err := acs.WaitSessions(ctx, "00D09E-CPE1", sessions); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// TestUDPConnectionRequestUnderFlood: a flood of invalid datagrams on the
// TR-111 port does not keep a valid UDP Connection Request from starting a
// session, nor sessions from completing.
func TestUDPConnectionRequestUnderFlood(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	factory := map[string]string{
		"Device.ManagementServer.URL":                       acs.URL,
		"Device.DeviceInfo.ManufacturerOUI":                 "00D09E",
		"Device.DeviceInfo.SerialNumber":                    "FLOOD",
		"Device.ManagementServer.PeriodicInformEnable":      "false",
		"Device.ManagementServer.ConnectionRequestUsername": "cr",
		"Device.ManagementServer.ConnectionRequestPassword": "crpw",
	}
	c, err := Build(Config{Root: "Device", StateDir: t.TempDir(), Factory: factory, UDPListen: "127.0.0.1:0",
		Agent: cwmp.Config{RetryMinimumWait: 50 * time.Millisecond}})
	require.NoError(t, err)
	defer testrun.Go(t, c.Run)()
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	require.NoError(t, acs.WaitSessions(wctx, "00D09E-FLOOD", 1))

	conn, err := net.Dial("udp4", c.STUN.LocalAddr().String())
	require.NoError(t, err)
	defer conn.Close()
	stop := make(chan struct{})
	flooded := make(chan int)
	go func() {
		n := 0
		junk := [][]byte{[]byte("GET http://x?ts=1 HTTP/1.1\r\n\r\n"), []byte("garbage"), {0, 1, 0, 0}}
		for {
			select {
			case <-stop:
				flooded <- n
				return
			default:
			}
			conn.Write(junk[n%len(junk)])
			n++
		}
	}()
	time.Sleep(200 * time.Millisecond)
	// Datagrams may be lost when the socket's buffer overflows under the
	// flood (the kernel drops them, as a real network would): the ACS side
	// sends its three copies again, with a new id, until the session comes.
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := 0; ; i++ {
			valid := tr111.FormatUDPConnRequest(c.STUN.LocalAddr().String(), uint64(time.Now().Unix())+uint64(i), fmt.Sprint("id-", i), "cr", "n", "crpw")
			for j := 0; j < 3; j++ {
				conn.Write(valid)
			}
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	_, err = acs.WaitEvent(wctx, "00D09E-FLOOD", "6 CONNECTION REQUEST")
	close(stop)
	n := <-flooded
	<-sent
	require.NoError(t, err, "the session started despite %d junk datagrams", n)
	require.NoError(t, acs.WaitSessions(wctx, "00D09E-FLOOD", 2))
	t.Logf("%d junk datagrams sent during the test", n)
}

// TestGatewayLANHosts: the Hosts table follows the kernel's neighbour
// table (a fake /proc here): resolved entries only, wireless interfaces as
// 802.11, nothing invented.
func TestGatewayLANHosts(t *testing.T) {
	acs, err := cwmptest.New()
	require.NoError(t, err)
	defer acs.Close()
	c, err := Build(Config{Root: "InternetGatewayDevice", Factory: map[string]string{
		"InternetGatewayDevice.ManagementServer.URL": acs.URL, "InternetGatewayDevice.DeviceInfo.ManufacturerOUI": "00D09E",
		"InternetGatewayDevice.DeviceInfo.SerialNumber": "GW1"}, Host: &sysinfo.Host{Root: "../internal/linux/sysinfo/testdata/root"}})
	require.NoError(t, err)
	c.SyncHosts()
	vs, err := c.Tree.GetValues([]string{"InternetGatewayDevice.LANDevice.1.Hosts."})
	require.NoError(t, err)
	got := map[string]string{}
	for _, v := range vs {
		got[v.Name] = v.Value
	}
	h := "InternetGatewayDevice.LANDevice.1.Hosts.Host."
	assert.Equal(t, "192.168.1.20", got[h+"1.IPAddress"])
	assert.Equal(t, "02:00:00:aa:bb:01", got[h+"1.MACAddress"])
	assert.Equal(t, "Ethernet", got[h+"1.InterfaceType"])
	assert.Equal(t, "Static", got[h+"1.AddressSource"])
	assert.Equal(t, "", got[h+"1.HostName"], "the gateway does not know names: none made up")
	assert.Equal(t, "192.168.1.30", got[h+"2.IPAddress"])
	assert.Equal(t, "802.11", got[h+"2.InterfaceType"])
	assert.NotContains(t, got, h+"4.IPAddress", "the incomplete entry is not a host")
	c.SyncHosts()
	assert.Equal(t, got["InternetGatewayDevice.LANDevice.1.Hosts.HostNumberOfEntries"],
		c.Tree.MustGet("InternetGatewayDevice.LANDevice.1.Hosts.HostNumberOfEntries"), "a second sync changes nothing")
}

func TestUptimeFromProc(t *testing.T) {
	c, err := Build(Config{Root: "Device", Factory: map[string]string{"Device.DeviceInfo.ManufacturerOUI": "00D09E",
		"Device.DeviceInfo.SerialNumber": "UP1"}, Host: &sysinfo.Host{Root: "../internal/linux/sysinfo/testdata/root"}})
	require.NoError(t, err)
	want, err := (sysinfo.Host{Root: "../internal/linux/sysinfo/testdata/root"}).Uptime()
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprint(want), c.Tree.MustGet("Device.DeviceInfo.UpTime"), "a real device reports /proc/uptime")
}
