package backend

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/datamodel"
	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testfiles"
)

// schema500 has a subtree of 500 writable parameters and a few others.
func schema500(t testing.TB) *datamodel.Schema {
	t.Helper()
	var b strings.Builder
	b.WriteString("model Test:1.0\nobject Dev.\nobject Dev.Info.\nModel string(64) R\nName string(64) W\nobject Dev.Sub.\n")
	for i := 0; i < 500; i++ {
		fmt.Fprintf(&b, "P%d string(64) W\n", i)
	}
	s, err := datamodel.ParseSchema(strings.NewReader(b.String()))
	require.NoError(t, err)
	return s
}

func script(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755))
	return p
}

func TestLoadMapping(t *testing.T) {
	s := schema500(t)
	m := `mounts:
  - path: Dev.Info.Model
    file: /etc/model
  - path: Dev.Sub.
    command:
      get: [/usr/bin/sub, get]
      set: /usr/bin/sub set
      timeout: 2s
      cache: 500ms
  - path: Dev.Info.Name
    control: true
`
	es, err := Load(strings.NewReader(m), s)
	require.NoError(t, err)
	require.Len(t, es, 3)
	assert.Equal(t, Entry{Path: "Dev.Info.Model", Line: 2, File: "/etc/model"}, es[0])
	assert.Equal(t, []string{"/usr/bin/sub", "get"}, es[1].Command.Get)
	assert.Equal(t, []string{"/usr/bin/sub", "set"}, es[1].Command.Set)
	assert.Equal(t, "2s", es[1].Command.Timeout.String())
	assert.True(t, es[2].Control)

	bad := `mounts:
  - path: Dev.Nope
    file: /x
  - path: Dev.Sub.
    file: /x
  - path: Dev.Info.Model
    file: relative
    command: {get: /bin/true}
  - path: Dev.Info.Name
    commnd: {get: /bin/true}
  - file: /x
  - path: Dev.Sub.
    command: {timeout: soon}
extra: 1
`
	_, err = Load(strings.NewReader(bad), s)
	require.Error(t, err)
	for _, want := range []string{"line 2: Dev.Nope: no such parameter", "line 4: Dev.Sub.: a file holds one parameter",
		"line 7: file: want an absolute path", "line 6: Dev.Info.Model: give only one backend", "line 10: unknown key \"commnd\"",
		"line 11: path: required", "line 13: command.timeout", "line 13: command.get: required", "line 14: unknown key \"extra\""} {
		assert.Contains(t, err.Error(), want)
	}
	es, err = Load(strings.NewReader(""), s)
	assert.NoError(t, err)
	assert.Empty(t, es)
}

// TestCommandSubtreeForksOnce: a GetParameterValues over 500 mapped
// parameters runs the get command once.
func TestCommandSubtreeForksOnce(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(dir, "runs")
	get := script(t, dir, "get", fmt.Sprintf(`echo run >> %s
i=0
while [ $i -lt 500 ]; do echo "{\"name\":\"Dev.Sub.P$i\",\"value\":\"v$i\"}"; i=$((i+1)); done
`, count))
	tr, err := datamodel.New(schema500(t), datamodel.Options{})
	require.NoError(t, err)
	cmds, err := Mount(tr, []Entry{{Path: "Dev.Sub.", Command: &CommandSpec{Get: []string{get}, Timeout: 5e9, Cache: 5e9}}}, nil)
	require.NoError(t, err)
	vs, err := tr.GetValues([]string{"Dev.Sub."})
	require.NoError(t, err)
	require.Len(t, vs, 500)
	assert.Equal(t, "v499", vs[499].Value)
	assert.Equal(t, 1, cmds["Dev.Sub."].Runs())
	b, _ := os.ReadFile(count)
	assert.Equal(t, 1, strings.Count(string(b), "run"), "one fork for 500 parameters")
}

// TestCommandSetRollsBack: the third apply fails; the first two are set
// back to their old values; the failure names the parameter.
func TestCommandSetRollsBack(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	os.WriteFile(state, []byte(""), 0o644)
	get := script(t, dir, "get", fmt.Sprintf(`for p in P0 P1 P2; do
v=$(grep "^Dev.Sub.$p=" %[1]s | tail -1 | cut -d= -f2)
echo "{\"name\":\"Dev.Sub.$p\",\"value\":\"${v:-init}\"}"
done
`, state))
	set := script(t, dir, "set", fmt.Sprintf(`[ "$1" = Dev.Sub.P2 ] && { echo "P2 is locked" >&2; exit 3; }
echo "$1=$2" >> %s
`, state))
	tr, err := datamodel.New(schema500(t), datamodel.Options{})
	require.NoError(t, err)
	_, err = Mount(tr, []Entry{{Path: "Dev.Sub.", Command: &CommandSpec{Get: []string{get}, Set: []string{set}, Timeout: 5e9, Cache: 0}}}, nil)
	require.NoError(t, err)
	err = tr.SetValues([]datamodel.Change{{Path: "Dev.Sub.P0", Value: "a"}, {Path: "Dev.Sub.P1", Value: "b"}, {Path: "Dev.Sub.P2", Value: "c"}},
		datamodel.SetOptions{Origin: datamodel.OriginACS})
	var se *datamodel.SetError
	require.ErrorAs(t, err, &se)
	require.Len(t, se.Faults, 1)
	assert.Equal(t, "Dev.Sub.P2", se.Faults[0].Path)
	assert.ErrorIs(t, se.Faults[0], datamodel.ErrApply)
	assert.Contains(t, se.Faults[0].Error(), "P2 is locked")
	b, _ := os.ReadFile(state)
	assert.Equal(t, "Dev.Sub.P0=a\nDev.Sub.P1=b\nDev.Sub.P1=init\nDev.Sub.P0=init\n", string(b), "applied, then rolled back in reverse")
	assert.Equal(t, "init", tr.MustGet("Dev.Sub.P0"))
}

func TestFileAndControl(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "model")
	os.WriteFile(f, []byte("HG-1\n"), 0o644)
	tr, err := datamodel.New(schema500(t), datamodel.Options{})
	require.NoError(t, err)
	var delivered []string
	deliver := func(p, v string) error {
		if delivered == nil {
			return errors.New("no device daemon is watching")
		}
		delivered = append(delivered, p+"="+v)
		return nil
	}
	_, err = Mount(tr, []Entry{{Path: "Dev.Info.Model", File: f}, {Path: "Dev.Info.Name", Control: true}}, deliver)
	require.NoError(t, err)
	assert.Equal(t, "HG-1", tr.MustGet("Dev.Info.Model"))
	os.WriteFile(f, []byte("HG-2\n"), 0o644)
	assert.Equal(t, "HG-2", tr.MustGet("Dev.Info.Model"), "read live")

	// The daemon pushes a value: stored, not delivered back.
	require.NoError(t, tr.Set("Dev.Info.Name", "from-daemon"))
	assert.Equal(t, "from-daemon", tr.MustGet("Dev.Info.Name"))
	// The ACS writes with no daemon watching: refused.
	err = tr.SetValues([]datamodel.Change{{Path: "Dev.Info.Name", Value: "acs"}}, datamodel.SetOptions{Origin: datamodel.OriginACS})
	assert.ErrorIs(t, err, datamodel.ErrApply)
	delivered = []string{}
	require.NoError(t, tr.SetValues([]datamodel.Change{{Path: "Dev.Info.Name", Value: "acs"}}, datamodel.SetOptions{Origin: datamodel.OriginACS}))
	assert.Equal(t, []string{"Dev.Info.Name=acs"}, delivered)
	assert.Equal(t, "acs", tr.MustGet("Dev.Info.Name"))
}

// FuzzMapping: any mapping file loads or fails with errors; it never
// panics, and what loads names paths of the schema.
func FuzzMapping(f *testing.F) {
	testfiles.AddSeeds(f, "FuzzMapping")
	s := schema500(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := Load(strings.NewReader(string(b)), s)
		if err != nil {
			return
		}
		for _, e := range es {
			if e.Path == "" || (e.File == "" && e.Command == nil && !e.Control) {
				t.Fatalf("loaded an incomplete entry %+v", e)
			}
		}
	})
}
