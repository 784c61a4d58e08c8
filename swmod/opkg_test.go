package swmod

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/soap"
)

func targz(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	gz := gzip.NewWriter(&b)
	tw := tar.NewWriter(gz)
	for name, data := range files {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))}))
		_, err := tw.Write(data)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	return b.Bytes()
}

// The shipped opkg hook (packaging/libexec/opkg-du-hook) with an opkg
// stand-in on PATH: an ipk is installed and described, then removed.
func TestOpkgHookExample(t *testing.T) {
	hook, err := filepath.Abs("../packaging/libexec/opkg-du-hook")
	require.NoError(t, err)
	bin := t.TempDir()
	calls := filepath.Join(bin, "calls")
	opkg := `#!/bin/sh
echo "$@" >> ` + calls + `
case "$1" in
info) printf 'Package: %s\nVersion: 2.4-1\nDescription: A TV app\n' "$2" ;;
esac
`
	require.NoError(t, os.WriteFile(filepath.Join(bin, "opkg"), []byte(opkg), 0o755))
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	ipk := targz(t, map[string][]byte{"./control.tar.gz": targz(t, map[string][]byte{"./control": []byte("Package: tvapp\nVersion: 2.4-1\n")}),
		"./data.tar.gz": targz(t, map[string][]byte{"./usr/bin/tvapp": []byte("#!/bin/sh\n")})})

	r := newRig(t, "", &Hook{Command: hook})
	pkg := filepath.Join(t.TempDir(), "tvapp_2.4-1_arm.ipk")
	require.NoError(t, os.WriteFile(pkg, ipk, 0o600))
	r.m.cfg.Fetch = func(context.Context, string, string, string) (string, error) { return pkg, nil }
	r.run(t)
	require.NoError(t, r.m.ChangeDUState([]soap.DUOperation{{Op: "Install", URL: "http://f/tvapp_2.4-1_arm.ipk"}}, ""))
	r.m.SessionEnded()
	res := r.results(t, 1)[0][0]
	require.Equal(t, 0, res.Fault.FaultCode, "%+v", res)
	assert.Equal(t, "2.4-1", res.Version)
	assert.Equal(t, "tvapp", r.tree.MustGet(duTable+"1.Name"))
	assert.Equal(t, "A TV app", r.tree.MustGet(duTable+"1.Description"))

	require.NoError(t, r.m.ChangeDUState([]soap.DUOperation{{Op: "Uninstall", UUID: res.UUID}}, ""))
	r.m.SessionEnded()
	assert.Equal(t, "Uninstalled", r.results(t, 2)[1][0].CurrentState)
	log, err := os.ReadFile(calls)
	require.NoError(t, err)
	assert.Contains(t, string(log), "install --force-reinstall "+pkg)
	assert.Contains(t, string(log), "remove tvapp")

	// Not an ipk: 9018.
	bad := filepath.Join(t.TempDir(), "x.ipk")
	require.NoError(t, os.WriteFile(bad, []byte("junk"), 0o600))
	r.m.cfg.Fetch = func(context.Context, string, string, string) (string, error) { return bad, nil }
	require.NoError(t, r.m.ChangeDUState([]soap.DUOperation{{Op: "Install", URL: "http://f/x.ipk"}}, ""))
	r.m.SessionEnded()
	assert.Equal(t, 9018, r.results(t, 3)[2][0].Fault.FaultCode)
}
