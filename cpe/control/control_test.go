package control

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
	"github.com/cwmp-agent/cwmp-agent/schemas"
)

func newServer(t testing.TB) (*Server, *datamodel.Tree, *[]string) {
	tree, err := datamodel.New(schemas.Device(), datamodel.Options{})
	require.NoError(t, err)
	var informs []string
	s := &Server{Tree: tree, Inform: func(ev string) error { informs = append(informs, ev); return nil }}
	s.Register("echo", func(args map[string]string) (map[string]string, error) { return args, nil })
	return s, tree, &informs
}

func TestHandle(t *testing.T) {
	s, tree, informs := newServer(t)
	var origins []datamodel.Origin
	tree.Watch(func(e datamodel.Event) { origins = append(origins, e.Origin) })

	r := s.Handle(Request{Op: "set", Path: "Device.GatewayInfo.SerialNumber", Value: "GW1"})
	require.True(t, r.OK, r.Error)
	assert.Equal(t, "GW1", tree.MustGet("Device.GatewayInfo.SerialNumber"), "the device may set what is read-only to the ACS")
	assert.Equal(t, []datamodel.Origin{datamodel.OriginDevice}, origins)

	r = s.Handle(Request{Op: "set", Values: map[string]string{"Device.GatewayInfo.ManufacturerOUI": "00D09E", "Device.ManagementServer.PeriodicInformInterval": "0"}})
	assert.False(t, r.OK, "all or nothing")
	assert.Equal(t, "", tree.MustGet("Device.GatewayInfo.ManufacturerOUI"))

	r = s.Handle(Request{Op: "get", Paths: []string{"Device.GatewayInfo.SerialNumber", "Device.ManagementServer.STUNPassword"}})
	require.True(t, r.OK)
	assert.Equal(t, []Value{{Name: "Device.GatewayInfo.SerialNumber", Type: "xsd:string", Value: "GW1"}, {Name: "Device.ManagementServer.STUNPassword", Type: "xsd:string"}}, r.Values)

	r = s.Handle(Request{Op: "dump"})
	require.True(t, r.OK)
	assert.Greater(t, len(r.Values), 50)

	r = s.Handle(Request{Op: "add", Path: "Device.LAN.DHCPOption."})
	require.True(t, r.OK)
	assert.Equal(t, uint32(1), r.Instance)
	assert.True(t, s.Handle(Request{Op: "delete", Path: "Device.LAN.DHCPOption.1."}).OK)
	assert.True(t, s.Handle(Request{Op: "inform", Event: "6 CONNECTION REQUEST"}).OK)
	assert.Equal(t, []string{"6 CONNECTION REQUEST"}, *informs)
	r = s.Handle(Request{Op: "call", Name: "echo", Args: map[string]string{"x": "y"}})
	assert.Equal(t, map[string]string{"x": "y"}, r.Result)
	assert.False(t, s.Handle(Request{Op: "call", Name: "nope"}).OK)
	assert.False(t, s.Handle(Request{Op: "explode"}).OK)
	assert.False(t, s.Handle(Request{Op: "get", Path: "Device.Nope"}).OK)
	assert.False(t, s.Handle(Request{Op: "set"}).OK)
}

func TestDecode(t *testing.T) {
	_, err := Decode([]byte(`{"op":"get","bogus":1}`))
	assert.ErrorIs(t, err, ErrBadRequest)
	_, err = Decode([]byte(`{"op":"get"} {"op":"get"}`))
	assert.ErrorIs(t, err, ErrBadRequest)
	r, err := Decode([]byte(`{"op":"get","path":"Device."}`))
	require.NoError(t, err)
	assert.Equal(t, "Device.", r.Path)
}

func TestSocket(t *testing.T) {
	s, tree, _ := newServer(t)
	path := filepath.Join(t.TempDir(), "run", "agent.sock")
	require.NoError(t, s.Listen(path))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "only the owner may connect")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Serve(ctx); close(done) }()

	_, err = Do(path, Request{Op: "set", Path: "Device.GatewayInfo.ProductClass", Value: "Box"})
	require.NoError(t, err)
	assert.Equal(t, "Box", tree.MustGet("Device.GatewayInfo.ProductClass"))
	resp, err := Do(path, Request{Op: "get", Path: "Device.GatewayInfo.ProductClass"})
	require.NoError(t, err)
	assert.Equal(t, "Box", resp.Values[0].Value)
	_, err = Do(path, Request{Op: "get", Path: "Device.Nope"})
	assert.Error(t, err)

	other := &Server{Tree: tree}
	assert.Error(t, other.Listen(path), "a second agent on the same socket is refused")

	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	_, err = os.Stat(path)
	assert.True(t, os.IsNotExist(err), "the socket is removed at exit")
	_, err = Do(path, Request{Op: "ping"})
	assert.Error(t, err)
}

// FuzzControlRequest feeds arbitrary lines to the decoder and the handler:
// no input may panic, and a failed request must leave the tree unchanged.
func FuzzControlRequest(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzControlRequest")
	s, tree, _ := newServer(f)
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := Decode(line)
		if err != nil {
			return
		}
		before, _ := tree.GetValues([]string{""})
		resp := s.Handle(req)
		if !resp.OK && (req.Op == "set" || req.Op == "add" || req.Op == "delete") {
			after, _ := tree.GetValues([]string{""})
			if len(before) != len(after) {
				t.Fatalf("a failed %s changed the tree", req.Op)
			}
			for i := range before {
				if before[i] != after[i] {
					t.Fatalf("a failed %s changed %s", req.Op, before[i].Name)
				}
			}
		}
	})
}

func TestWatchDeliver(t *testing.T) {
	s, _, _ := newServer(t)
	sock := filepath.Join(t.TempDir(), "s")
	require.NoError(t, s.Listen(sock))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx)
	assert.Error(t, s.Deliver("Device.X", "1"), "nobody watching")

	c, err := net.Dial("unix", sock)
	require.NoError(t, err)
	defer c.Close()
	fmt.Fprintln(c, `{"op":"watch","path":"Device.DeviceInfo."}`)
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	assert.JSONEq(t, `{"ok":true}`, line)
	require.Eventually(t, func() bool { return s.Deliver("Device.DeviceInfo.ProvisioningCode", "X1") == nil }, 2*time.Second, 10*time.Millisecond)
	line, err = r.ReadString('\n')
	require.NoError(t, err)
	assert.JSONEq(t, `{"event":"set","path":"Device.DeviceInfo.ProvisioningCode","value":"X1"}`, line)
	assert.Error(t, s.Deliver("Device.ManagementServer.URL", "x"), "outside the watched prefix")
}
