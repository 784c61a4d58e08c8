package datamodel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testSchema = `
model Test:1.0
object Dev.
TableCount     unsignedInt  R
Summary        string(64)   R  forced  default="Test:1.0[](Baseline:1)"
object Dev.Info.
Serial         string(64)   R  volatile
UpTime         unsignedInt  R  computed  canDeny
Version        string(64)   R  forced  activeForced
object Dev.Mgmt.
URL            string(256)  W
Password       string(256)  W  hidden
Interval       unsignedInt[1:] W  default=60
Enable         boolean      W
When           dateTime     W
ParameterKey   string(32)   R  paramkey  canDeny
Addr           string(256)  R  volatile  limit=Dev.Mgmt.AddrLimit
AddrLimit      unsignedInt  W
EntryCount     unsignedInt  R
object Dev.Mgmt.Entry.{i}.  volatile  count=EntryCount
OUI            string(6)    R  canDeny
object Dev.GW.
OUI            string(6)    R  volatile  notify=2
object Dev.Table.{i}.  W  count=TableCount  max=3  instances=1
Name           string(16)   W  default=x
Level          int[-1:]     W  default=-1
SubCount       unsignedInt  R
object Dev.Table.{i}.Sub.{i}.  W  count=SubCount
Flag           boolean      W
`

func newTestTree(t *testing.T, dir string, factory map[string]string) *Tree {
	t.Helper()
	s := testSchemaParsed(t)
	tr, err := New(s, Options{StateDir: dir, Factory: factory})
	require.NoError(t, err)
	require.NoError(t, tr.Load())
	return tr
}

func testSchemaParsed(t *testing.T) *Schema {
	t.Helper()
	s, err := ParseSchema(strings.NewReader(testSchema))
	require.NoError(t, err)
	return s
}

func names(vs []Value) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Name
	}
	return out
}

func TestSchemaPath(t *testing.T) {
	assert.Equal(t, "Dev.Table.{i}.Sub.{i}.Flag", SchemaPath("Dev.Table.12.Sub.3.Flag"))
	assert.Equal(t, "Dev.Mgmt.URL", SchemaPath("Dev.Mgmt.URL"))
	assert.Equal(t, "Dev.Table.{i}.", SchemaPath("Dev.Table.1."))
	assert.Equal(t, "Dev.Table.0.", SchemaPath("Dev.Table.0."), "0 is not an instance number")
}

func TestParseSchemaErrors(t *testing.T) {
	for name, text := range map[string]string{
		"no root":       "model X\n",
		"param first":   "A string R\n",
		"orphan object": "object A.\nobject A.B.C.\n",
		"bad type":      "object A.\nP float R\n",
		"bad access":    "object A.\nP string RW\n",
		"bad flag":      "object A.\nP string R sparkly\n",
		"bad default":   "object A.\nP unsignedInt R default=-3\n",
		"dup param":     "object A.\nP string R\nP string R\n",
		"bad count":     "object A.\nobject A.T.{i}. count=Nope\n",
		"writable one":  "object A.\nobject A.B. W\n",
		"bad limit":     "object A.\nP string R limit=A.Q\n",
		"quote":         "object A.\nP string R default=\"x\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseSchema(strings.NewReader(text))
			assert.Error(t, err)
		})
	}
}

func TestGetValues(t *testing.T) {
	tr := newTestTree(t, "", nil)
	require.NoError(t, tr.Bind("Dev.Info.UpTime", func(string) (string, error) { return "42", nil }))
	require.NoError(t, tr.Set("Dev.Mgmt.Password", "secret"))

	vs, err := tr.GetValues([]string{"Dev.Mgmt.Interval", "Dev.Info."})
	require.NoError(t, err)
	assert.Equal(t, []string{"Dev.Mgmt.Interval", "Dev.Info.Serial", "Dev.Info.UpTime", "Dev.Info.Version"}, names(vs))
	assert.Equal(t, "60", vs[0].Value)
	assert.Equal(t, UnsignedInt, vs[0].Type)
	assert.Equal(t, "42", vs[2].Value)

	vs, err = tr.GetValues([]string{"Dev.Mgmt.Password"})
	require.NoError(t, err)
	assert.Equal(t, "", vs[0].Value, "a hidden parameter reads back empty")
	assert.Equal(t, "secret", tr.MustGet("Dev.Mgmt.Password"), "the device itself sees the real value")

	all, err := tr.GetValues([]string{""})
	require.NoError(t, err)
	assert.Contains(t, names(all), "Dev.Table.1.Name")
	assert.Contains(t, names(all), "Dev.TableCount")
	for _, v := range all {
		if v.Name == "Dev.TableCount" {
			assert.Equal(t, "1", v.Value)
		}
	}

	for _, bad := range []string{"Dev.Nope", "Dev.Mgmt", "Dev.Mgmt.URL.", "Dev.Table.2.Name", "Dev.Table.x.Name", "Other.", "Dev", "Dev.Table.01.Name"} {
		_, err := tr.GetValues([]string{"Dev.Mgmt.URL", bad})
		assert.ErrorIs(t, err, ErrInvalidName, bad)
	}
	vs, err = tr.GetValues([]string{"Dev.Table."})
	require.NoError(t, err)
	assert.Equal(t, []string{"Dev.Table.1.Name", "Dev.Table.1.Level", "Dev.Table.1.SubCount"}, names(vs))
}

func TestGetNames(t *testing.T) {
	tr := newTestTree(t, "", nil)
	info := func(path string, next bool) []string {
		t.Helper()
		is, err := tr.GetNames(path, next)
		require.NoError(t, err)
		out := make([]string, len(is))
		for i, x := range is {
			w := "R"
			if x.Writable {
				w = "W"
			}
			out[i] = x.Name + " " + w
		}
		return out
	}
	assert.Equal(t, []string{"Dev. R"}, info("", true))
	all := info("", false)
	assert.Equal(t, "Dev. R", all[0])
	assert.Contains(t, all, "Dev.Table. W")
	assert.Contains(t, all, "Dev.Table.1. W")
	assert.Contains(t, all, "Dev.Table.1.Sub. W")
	assert.Contains(t, all, "Dev.Mgmt.URL W")
	assert.Contains(t, all, "Dev.Mgmt.Entry. R")
	assert.Equal(t, []string{"Dev.TableCount R", "Dev.Summary R", "Dev.Info. R", "Dev.Mgmt. R", "Dev.GW. R", "Dev.Table. W"}, info("Dev.", true))
	assert.Equal(t, []string{"Dev.Table.1. W"}, info("Dev.Table.", true))
	assert.Equal(t, []string{"Dev.Table.1.Name W", "Dev.Table.1.Level W", "Dev.Table.1.SubCount R", "Dev.Table.1.Sub. W"}, info("Dev.Table.1.", true))
	assert.Equal(t, []string{"Dev.Mgmt.URL W"}, info("Dev.Mgmt.URL", false))
	assert.Equal(t, []string{"Dev.GW. R", "Dev.GW.OUI R"}, info("Dev.GW.", false))

	_, err := tr.GetNames("Dev.Mgmt.URL", true)
	assert.ErrorIs(t, err, ErrInvalidArgument)
	_, err = tr.GetNames("Dev.Bogus.", false)
	assert.ErrorIs(t, err, ErrInvalidName)
}

func TestSetValuesAllOrNothing(t *testing.T) {
	tr := newTestTree(t, t.TempDir(), nil)
	key := "k1"
	err := tr.SetValues([]Change{
		{Path: "Dev.Mgmt.URL", Value: "http://acs.example/"},
		{Path: "Dev.Mgmt.Interval", Value: "0"},                    // below range: 9007
		{Path: "Dev.Info.Serial", Value: "X"},                      // read-only: 9008
		{Path: "Dev.Mgmt.Nope", Value: "1"},                        // unknown: 9005
		{Path: "Dev.Mgmt.Enable", Value: "maybe", Type: "xsd:int"}, // wrong type and bad value: 9006
	}, SetOptions{Origin: OriginACS, ParameterKey: &key})
	var se *SetError
	require.ErrorAs(t, err, &se)
	require.Len(t, se.Faults, 4)
	assert.ErrorIs(t, se.Faults[0], ErrInvalidValue)
	assert.Equal(t, "Dev.Mgmt.Interval", se.Faults[0].Path)
	assert.ErrorIs(t, se.Faults[1], ErrNotWritable)
	assert.ErrorIs(t, se.Faults[2], ErrInvalidName)
	assert.ErrorIs(t, se.Faults[3], ErrInvalidType)
	assert.Equal(t, "", tr.MustGet("Dev.Mgmt.URL"), "nothing is committed when one value fails")
	assert.Equal(t, "", tr.MustGet("Dev.Mgmt.ParameterKey"), "ParameterKey is set only on success")

	require.NoError(t, tr.SetValues([]Change{
		{Path: "Dev.Mgmt.URL", Value: "http://acs.example/"},
		{Path: "Dev.Mgmt.Interval", Value: "300", Type: "xsd:unsignedInt"},
		{Path: "Dev.Mgmt.Enable", Value: "1", Type: "xsd:boolean"},
		{Path: "Dev.Mgmt.AddrLimit", Value: "5", Type: "xsd:string"}, // lexically valid, tagged string: accepted
		{Path: "Dev.Table.1.Level", Value: "3", Type: "xsd:unsignedInt"},
	}, SetOptions{Origin: OriginACS, ParameterKey: &key}))
	assert.Equal(t, "300", tr.MustGet("Dev.Mgmt.Interval"))
	assert.Equal(t, "true", tr.MustGet("Dev.Mgmt.Enable"))
	assert.Equal(t, "k1", tr.MustGet("Dev.Mgmt.ParameterKey"))

	err = tr.SetValues([]Change{{Path: "Dev.Mgmt.URL", Value: "a"}, {Path: "Dev.Mgmt.URL", Value: "b"}}, SetOptions{Origin: OriginACS})
	assert.ErrorIs(t, err, ErrDuplicate)
	assert.Equal(t, "http://acs.example/", tr.MustGet("Dev.Mgmt.URL"))

	err = tr.SetValues([]Change{{Path: "Dev.Mgmt.URL", Value: "a", Type: "xsd:json"}}, SetOptions{Origin: OriginACS})
	assert.ErrorIs(t, err, ErrInvalidType)

	// The device may write what the ACS may not.
	require.NoError(t, tr.Set("Dev.Info.Serial", "SN1"))
	assert.Equal(t, "SN1", tr.MustGet("Dev.Info.Serial"))
	assert.ErrorIs(t, tr.Set("Dev.TableCount", "7"), ErrNotWritable)
}

func TestValidatorAndComputedWrites(t *testing.T) {
	tr := newTestTree(t, "", nil)
	require.NoError(t, tr.AddValidator("Dev.Mgmt.URL", func(_, v string) error {
		if !strings.HasPrefix(v, "http") {
			return errors.New("not an http URL")
		}
		return nil
	}))
	err := tr.SetValues([]Change{{Path: "Dev.Mgmt.URL", Value: "ftp://x"}}, SetOptions{Origin: OriginACS})
	assert.ErrorIs(t, err, ErrInvalidValue)
	assert.Contains(t, err.Error(), "not an http URL")
	require.NoError(t, tr.Bind("Dev.Info.UpTime", func(string) (string, error) { return "1", nil }))
	assert.ErrorIs(t, tr.Set("Dev.Info.UpTime", "5"), ErrNotWritable, "a bound computed value cannot be written")
}

func TestAddDeleteObject(t *testing.T) {
	dir := t.TempDir()
	tr := newTestTree(t, dir, nil)
	var evs []Event
	var mu sync.Mutex
	tr.Watch(func(e Event) { mu.Lock(); evs = append(evs, e); mu.Unlock() })

	key := "add1"
	n, err := tr.AddObject("Dev.Table.", SetOptions{Origin: OriginACS, ParameterKey: &key})
	require.NoError(t, err)
	assert.Equal(t, uint32(2), n, "factory instance 1 exists, so the first new one is 2")
	assert.Equal(t, "x", tr.MustGet("Dev.Table.2.Name"), "new instances get default values")
	assert.Equal(t, "2", tr.MustGet("Dev.TableCount"))
	assert.Equal(t, "add1", tr.MustGet("Dev.Mgmt.ParameterKey"))
	mu.Lock()
	assert.Equal(t, ObjectAdded, evs[0].Kind)
	assert.Equal(t, "Dev.Table.2.", evs[0].Path)
	assert.Equal(t, OriginACS, evs[0].Origin)
	var countEv *Event
	for i := range evs {
		if evs[i].Path == "Dev.TableCount" {
			countEv = &evs[i]
		}
	}
	mu.Unlock()
	require.NotNil(t, countEv, "a NumberOfEntries change is reported")
	assert.Equal(t, "2", countEv.Value)

	require.NoError(t, tr.DeleteObject("Dev.Table.2.", SetOptions{Origin: OriginACS}))
	n, err = tr.AddObject("Dev.Table.", SetOptions{Origin: OriginACS})
	require.NoError(t, err)
	assert.Equal(t, uint32(3), n, "instance numbers are never reused")
	_, err = tr.AddObject("Dev.Table.", SetOptions{Origin: OriginACS})
	require.NoError(t, err)
	_, err = tr.AddObject("Dev.Table.", SetOptions{Origin: OriginACS})
	assert.ErrorIs(t, err, ErrResources, "max=3")

	sub, err := tr.AddObject("Dev.Table.3.Sub.", SetOptions{Origin: OriginACS})
	require.NoError(t, err)
	assert.Equal(t, uint32(1), sub)
	assert.Equal(t, "1", tr.MustGet("Dev.Table.3.SubCount"))

	_, err = tr.AddObject("Dev.Mgmt.Entry.", SetOptions{Origin: OriginACS})
	assert.ErrorIs(t, err, ErrNotWritable, "the ACS cannot add to a read-only table")
	e, err := tr.AddObject("Dev.Mgmt.Entry.", SetOptions{Origin: OriginDevice})
	require.NoError(t, err, "the device can")
	require.NoError(t, tr.Set(fmt.Sprintf("Dev.Mgmt.Entry.%d.OUI", e), "00D09E"))

	for _, bad := range []string{"Dev.Table.3", "Dev.Table.", "Dev.Table.9.", "Dev.Mgmt.", "Dev.Table.3.Name"} {
		assert.ErrorIs(t, tr.DeleteObject(bad, SetOptions{Origin: OriginACS}), ErrInvalidName, bad)
	}
	for _, bad := range []string{"Dev.Table.3.", "Dev.Mgmt.", "Dev.Nope.", "Dev.Table"} {
		_, err := tr.AddObject(bad, SetOptions{Origin: OriginACS})
		assert.ErrorIs(t, err, ErrInvalidName, bad)
	}

	// Instances, counters and values survive a restart; volatile tables do not.
	require.NoError(t, tr.Set("Dev.Table.3.Name", "kept"))
	tr2 := newTestTree(t, dir, nil)
	inst, err := tr2.Instances("Dev.Table.")
	require.NoError(t, err)
	assert.Equal(t, []uint32{1, 3, 4}, inst)
	assert.Equal(t, "kept", tr2.MustGet("Dev.Table.3.Name"))
	assert.Equal(t, "1", tr2.MustGet("Dev.Table.3.SubCount"))
	inst, _ = tr2.Instances("Dev.Mgmt.Entry.")
	assert.Empty(t, inst)
	require.NoError(t, tr2.DeleteObject("Dev.Table.4.", SetOptions{Origin: OriginACS}))
	n, err = tr2.AddObject("Dev.Table.", SetOptions{Origin: OriginACS})
	require.NoError(t, err)
	assert.Equal(t, uint32(5), n, "the counter persists too")
}

func TestAttributes(t *testing.T) {
	dir := t.TempDir()
	tr := newTestTree(t, dir, nil)
	at, err := tr.GetAttributes([]string{"Dev.GW.", "Dev.Info.Version", "Dev.Mgmt.URL"})
	require.NoError(t, err)
	require.Len(t, at, 3)
	assert.Equal(t, 2, at[0].Notification, "notify=2 default")
	assert.Equal(t, 2, at[1].Notification, "forced active")
	assert.Equal(t, 0, at[2].Notification)
	assert.Equal(t, []string{}, at[2].AccessList)

	require.NoError(t, tr.SetAttributes([]AttrChange{
		{Name: "Dev.Mgmt.URL", NotificationChange: true, Notification: 1, AccessListChange: true, AccessList: []string{"Subscriber"}},
		{Name: "Dev.GW.", NotificationChange: true, Notification: 0},
		{Name: "Dev.Mgmt.Interval", NotificationChange: false, Notification: 99},
	}, OriginACS))
	n, _ := tr.Notification("Dev.Mgmt.URL")
	assert.Equal(t, 1, n)
	n, _ = tr.Notification("Dev.GW.OUI")
	assert.Equal(t, 0, n)
	n, _ = tr.Notification("Dev.Mgmt.Interval")
	assert.Equal(t, 0, n, "Notification is ignored when NotificationChange is false")

	for _, tc := range []struct {
		c   AttrChange
		err error
	}{
		{AttrChange{Name: "Dev.Info.UpTime", NotificationChange: true, Notification: 2}, ErrNotifyDenied},
		{AttrChange{Name: "Dev.Info.", NotificationChange: true, Notification: 2}, ErrNotifyDenied},
		{AttrChange{Name: "Dev.Info.Version", NotificationChange: true, Notification: 0}, ErrNotifyDenied},
		{AttrChange{Name: "Dev.Mgmt.URL", NotificationChange: true, Notification: 3}, ErrInvalidArgument},
		{AttrChange{Name: "Dev.Mgmt.URL", AccessListChange: true, AccessList: []string{"Everybody"}}, ErrInvalidArgument},
		{AttrChange{Name: "Dev.Nope", NotificationChange: true, Notification: 1}, ErrInvalidName},
	} {
		err := tr.SetAttributes([]AttrChange{{Name: "Dev.Mgmt.Enable", NotificationChange: true, Notification: 2}, tc.c}, OriginACS)
		assert.ErrorIs(t, err, tc.err, tc.c.Name)
		n, _ := tr.Notification("Dev.Mgmt.Enable")
		assert.Equal(t, 0, n, "SetParameterAttributes is all or nothing")
	}
	n, _ = tr.Notification("Dev.Info.UpTime")
	assert.Equal(t, 0, n)
	require.NoError(t, tr.SetAttributes([]AttrChange{{Name: "Dev.Info.UpTime", NotificationChange: true, Notification: 1}}, OriginACS), "passive is allowed on canDeny")
	require.NoError(t, tr.SetAttributes([]AttrChange{{Name: "Dev.Info.Version", NotificationChange: true, Notification: 2}}, OriginACS), "active on a forced-active parameter is accepted")

	// Attributes persist.
	tr2 := newTestTree(t, dir, nil)
	at, err = tr2.GetAttributes([]string{"Dev.Mgmt.URL", "Dev.GW.OUI"})
	require.NoError(t, err)
	assert.Equal(t, 1, at[0].Notification)
	assert.Equal(t, []string{"Subscriber"}, at[0].AccessList)
	assert.Equal(t, 0, at[1].Notification)

	// TR-111 1.2.2: defaults are re-applied.
	require.NoError(t, tr2.ResetNotification())
	n, _ = tr2.Notification("Dev.GW.OUI")
	assert.Equal(t, 2, n)
	n, _ = tr2.Notification("Dev.Mgmt.URL")
	assert.Equal(t, 1, n, "parameters without a default are left alone")

	w := tr2.Watched()
	var got []string
	for _, a := range w {
		got = append(got, a.Name)
	}
	assert.ElementsMatch(t, []string{"Dev.Info.UpTime", "Dev.Info.Version", "Dev.Mgmt.URL", "Dev.GW.OUI"}, got)
}

func TestPersistenceAndFactory(t *testing.T) {
	dir := t.TempDir()
	factory := map[string]string{"Dev.Mgmt.URL": "http://factory/", "Dev.Info.Serial": "F1", "Dev.Table.1.Name": "first"}
	tr := newTestTree(t, dir, factory)
	assert.Equal(t, "http://factory/", tr.MustGet("Dev.Mgmt.URL"))
	assert.Equal(t, "first", tr.MustGet("Dev.Table.1.Name"))
	key := "pk"
	require.NoError(t, tr.SetValues([]Change{{Path: "Dev.Mgmt.URL", Value: "http://acs/"}, {Path: "Dev.Mgmt.Password", Value: "pw"}}, SetOptions{Origin: OriginACS, ParameterKey: &key}))
	require.NoError(t, tr.Set("Dev.Mgmt.Addr", "198.51.100.1:7547"))

	tr2 := newTestTree(t, dir, factory)
	assert.Equal(t, "http://acs/", tr2.MustGet("Dev.Mgmt.URL"), "a written value wins over the factory value")
	assert.Equal(t, "pw", tr2.MustGet("Dev.Mgmt.Password"))
	assert.Equal(t, "pk", tr2.MustGet("Dev.Mgmt.ParameterKey"))
	assert.Equal(t, "", tr2.MustGet("Dev.Mgmt.Addr"), "volatile values are not persisted")

	// A changed factory value does not override what was written...
	tr3 := newTestTree(t, dir, map[string]string{"Dev.Mgmt.URL": "http://other/"})
	assert.Equal(t, "http://acs/", tr3.MustGet("Dev.Mgmt.URL"))
	// ...until a factory reset.
	var reset bool
	tr3.Watch(func(e Event) { reset = reset || e.Kind == Reset })
	require.NoError(t, tr3.FactoryReset())
	assert.True(t, reset)
	assert.Equal(t, "http://other/", tr3.MustGet("Dev.Mgmt.URL"))
	assert.Equal(t, "", tr3.MustGet("Dev.Mgmt.ParameterKey"))
	_, err := os.Stat(filepath.Join(dir, StateFile))
	assert.True(t, os.IsNotExist(err), "factory reset removes the saved state")

	_, err = New(testSchemaParsed(t), Options{Factory: map[string]string{"Dev.Nope": "1"}})
	assert.ErrorIs(t, err, ErrInvalidName)
	assert.Contains(t, err.Error(), "Dev.Nope")
	_, err = New(testSchemaParsed(t), Options{Factory: map[string]string{"Dev.Mgmt.Interval": "0"}})
	assert.ErrorIs(t, err, ErrInvalidValue)
}

func TestCorruptStateNeverStopsTheTree(t *testing.T) {
	for name, content := range map[string]string{
		"torn":     `{"crc32":1,"state":{"version":1,"values":{"Dev.Mgmt.URL":"x"`,
		"checksum": `{"crc32":1,"state":{"version":1,"values":{"Dev.Mgmt.URL":"x"}}}`,
		"garbage":  "\x00\x01binary",
		"version":  `{"crc32":0,"state":null}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, StateFile)
			require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
			tr, err := New(testSchemaParsed(t), Options{StateDir: dir, Factory: map[string]string{"Dev.Mgmt.URL": "http://f/"}})
			require.NoError(t, err)
			err = tr.Load()
			assert.ErrorIs(t, err, ErrCorruptState)
			assert.Equal(t, "http://f/", tr.MustGet("Dev.Mgmt.URL"), "factory defaults after a corrupt file")
			ents, _ := os.ReadDir(dir)
			var kept bool
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), StateFile+".bad-") {
					b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
					kept = string(b) == content
				}
			}
			assert.True(t, kept, "the bad file is kept for inspection")
			require.NoError(t, tr.Set("Dev.Mgmt.URL", "http://new/"))
			tr2 := newTestTree(t, dir, nil)
			assert.Equal(t, "http://new/", tr2.MustGet("Dev.Mgmt.URL"), "and the tree saves again normally")
		})
	}
}

func TestStateWithStaleEntries(t *testing.T) {
	dir := t.TempDir()
	tr := newTestTree(t, dir, nil)
	require.NoError(t, tr.Set("Dev.Mgmt.URL", "http://acs/"))
	require.NoError(t, tr.Save())
	// Apply a state with an entry the schema does not know and a bad value.
	sf := tr.snapshot()
	sf.Values["Dev.Gone"] = "1"
	sf.Values["Dev.Mgmt.Interval"] = "zero"
	sf.Tables["Dev.Nope."] = tableState{Next: 3, Instances: []uint32{1}}
	sf.Attrs["Dev.Gone"] = attrState{}
	tr.mu.Lock()
	tr.apply(sf)
	tr.mu.Unlock()
	assert.Equal(t, "60", tr.MustGet("Dev.Mgmt.Interval"))
	assert.Equal(t, "http://acs/", tr.MustGet("Dev.Mgmt.URL"))
}

func TestSaveFailureRollsBack(t *testing.T) {
	dir := t.TempDir()
	tr := newTestTree(t, dir, nil)
	require.NoError(t, tr.Set("Dev.Mgmt.URL", "http://one/"))
	// Make the state directory unwritable by replacing it with a file.
	tr.store = filepath.Join(dir, "blocked", "sub")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "blocked"), nil, 0o600))
	err := tr.SetValues([]Change{{Path: "Dev.Mgmt.URL", Value: "http://two/"}}, SetOptions{Origin: OriginACS})
	assert.ErrorIs(t, err, ErrApply)
	assert.Equal(t, "http://one/", tr.MustGet("Dev.Mgmt.URL"), "memory keeps what disk has")
	_, err = tr.AddObject("Dev.Table.", SetOptions{Origin: OriginACS})
	assert.ErrorIs(t, err, ErrApply)
	inst, _ := tr.Instances("Dev.Table.")
	assert.Equal(t, []uint32{1}, inst)
}

func TestWatchersSeeOrigin(t *testing.T) {
	tr := newTestTree(t, "", nil)
	var got []Event
	var hook []string
	cancel := tr.Watch(func(e Event) { got = append(got, e) })
	require.NoError(t, tr.OnChange("Dev.Mgmt.URL", func(e Event) { hook = append(hook, e.Value) }))
	require.NoError(t, tr.SetValues([]Change{{Path: "Dev.Mgmt.URL", Value: "a"}}, SetOptions{Origin: OriginACS}))
	require.NoError(t, tr.Set("Dev.Mgmt.Addr", "1.2.3.4:5"))
	require.NoError(t, tr.SetValues([]Change{{Path: "Dev.Mgmt.URL", Value: "a"}}, SetOptions{Origin: OriginACS}))
	require.Len(t, got, 3)
	assert.Equal(t, OriginACS, got[0].Origin)
	assert.Equal(t, "", got[0].Old)
	assert.Equal(t, OriginDevice, got[1].Origin)
	assert.Equal(t, "Dev.Mgmt.Addr", got[1].Path)
	assert.Equal(t, got[2].Old, got[2].Value, "a write of the same value is still an event")
	assert.Equal(t, []string{"a", "a"}, hook)
	cancel()
	require.NoError(t, tr.Set("Dev.Mgmt.Addr", "x"))
	assert.Len(t, got, 3)
}

func TestHandles(t *testing.T) {
	tr := newTestTree(t, "", nil)
	n, err := tr.AddObject("Dev.Table.", SetOptions{})
	require.NoError(t, err)
	h, err := tr.Handle(fmt.Sprintf("Dev.Table.%d.Name", n))
	require.NoError(t, err)
	v, ok := tr.Read(h)
	assert.True(t, ok)
	assert.Equal(t, "x", v)
	require.NoError(t, tr.DeleteObject(fmt.Sprintf("Dev.Table.%d.", n), SetOptions{}))
	_, ok = tr.Read(h)
	assert.False(t, ok, "a handle to a deleted instance is stale")
	_, err = tr.Handle("Dev.Table.")
	assert.ErrorIs(t, err, ErrInvalidName)
}

func TestForced(t *testing.T) {
	tr := newTestTree(t, "", nil)
	assert.Equal(t, []string{"Dev.Summary", "Dev.Info.Version"}, tr.Forced())
	vs, err := tr.ForcedValues()
	require.NoError(t, err)
	want, err := tr.GetValues(tr.Forced())
	require.NoError(t, err)
	assert.Equal(t, want, vs, "ForcedValues reads what Forced names")
}

func TestConcurrentUse(t *testing.T) {
	tr := newTestTree(t, t.TempDir(), nil)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				switch i % 4 {
				case 0:
					tr.SetValues([]Change{{Path: "Dev.Mgmt.Interval", Value: fmt.Sprint(i + 1)}}, SetOptions{Origin: OriginACS})
				case 1:
					tr.GetValues([]string{""})
				case 2:
					if n, err := tr.AddObject("Dev.Table.1.Sub.", SetOptions{}); err == nil {
						tr.DeleteObject(fmt.Sprintf("Dev.Table.1.Sub.%d.", n), SetOptions{})
					}
				case 3:
					tr.GetNames("", false)
					tr.GetAttributes([]string{"Dev."})
				}
			}
		}(g)
	}
	wg.Wait()
	v, err := tr.Instances("Dev.Table.1.Sub.")
	require.NoError(t, err)
	assert.Empty(t, v)
}

func TestAddInstanceWithValues(t *testing.T) {
	tr := newTestTree(t, t.TempDir(), nil)
	var seen []Event
	cancel := tr.Watch(func(e Event) {
		// The values are in place when the addition is announced.
		if e.Kind == ObjectAdded {
			v, err := tr.Get(e.Path + "OUI")
			require.NoError(t, err)
			assert.Equal(t, "00D09E", v)
		}
		seen = append(seen, e)
	})
	defer cancel()
	inst, err := tr.AddInstance("Dev.Mgmt.Entry.", map[string]string{"OUI": "00D09E"}, SetOptions{Origin: OriginDevice})
	require.NoError(t, err)
	assert.Equal(t, "00D09E", tr.MustGet(fmt.Sprintf("Dev.Mgmt.Entry.%d.OUI", inst)))
	assert.Equal(t, "1", tr.MustGet("Dev.Mgmt.EntryCount"))
	require.Len(t, seen, 2)

	// A value that breaks its type, or an unknown name, adds nothing.
	_, err = tr.AddInstance("Dev.Mgmt.Entry.", map[string]string{"OUI": "0123456789"}, SetOptions{Origin: OriginDevice})
	assert.ErrorIs(t, err, ErrInvalidValue)
	_, err = tr.AddInstance("Dev.Mgmt.Entry.", map[string]string{"Nope": "x"}, SetOptions{Origin: OriginDevice})
	assert.ErrorIs(t, err, ErrInvalidName)
	assert.Equal(t, "1", tr.MustGet("Dev.Mgmt.EntryCount"))
}

func TestFactoryTemplateCreatesInstancesAndOverlayWins(t *testing.T) {
	s := testSchemaParsed(t)
	shared := map[string]string{"Dev.Table.3.Name": "three", "Dev.Table.3.Sub.2.Flag": "1", "Dev.Mgmt.URL": "http://template/"}
	tr, err := New(s, Options{Factory: shared, FactoryOverlay: map[string]string{"Dev.Mgmt.URL": "http://mine/"}})
	require.NoError(t, err)
	assert.Equal(t, "three", tr.MustGet("Dev.Table.3.Name"))
	assert.Equal(t, "true", tr.MustGet("Dev.Table.3.Sub.2.Flag"))
	assert.Equal(t, "2", tr.MustGet("Dev.TableCount"), "the schema's instance 1 and the template's 3")
	assert.Equal(t, "1", tr.MustGet("Dev.Table.3.SubCount"))
	assert.Equal(t, "http://mine/", tr.MustGet("Dev.Mgmt.URL"), "the overlay wins")
	inst, err := tr.AddObject("Dev.Table.", SetOptions{Origin: OriginACS})
	require.NoError(t, err)
	assert.Equal(t, uint32(4), inst, "numbering continues after the template's instances")
	require.NoError(t, tr.FactoryReset())
	assert.Equal(t, "three", tr.MustGet("Dev.Table.3.Name"), "a factory reset brings the template back")
	assert.Len(t, shared, 3, "the shared template is never written")

	_, err = New(s, Options{Factory: map[string]string{"Dev.Table.1.Nope": "x"}})
	assert.ErrorIs(t, err, ErrInvalidName)
	_, err = New(s, Options{Factory: map[string]string{"Dev.Table.2.Name": "a", "Dev.Table.3.Name": "b", "Dev.Table.4.Name": "c"}})
	assert.ErrorIs(t, err, ErrResources, "max=3 holds for templates too")
}

// TestOnCommitOncePerOperation: a transaction of several values reaches an
// OnCommit hook once, with all its events (a component watching several
// parameters restarts once, not once per parameter).
func TestOnCommitOncePerOperation(t *testing.T) {
	tr := newTestTree(t, "", nil)
	var calls [][]Event
	tr.OnCommit(func(evs []Event) { calls = append(calls, evs) })
	key := "k1"
	require.NoError(t, tr.SetValues([]Change{{Path: "Dev.Mgmt.URL", Value: "http://a/"}, {Path: "Dev.Mgmt.Interval", Value: "30"},
		{Path: "Dev.Mgmt.Enable", Value: "1"}}, SetOptions{Origin: OriginACS, ParameterKey: &key}))
	require.Len(t, calls, 1)
	var paths []string
	for _, e := range calls[0] {
		paths = append(paths, e.Path)
	}
	assert.Equal(t, []string{"Dev.Mgmt.URL", "Dev.Mgmt.Interval", "Dev.Mgmt.Enable", "Dev.Mgmt.ParameterKey"}, paths)

	assert.Error(t, tr.SetValues([]Change{{Path: "Dev.Mgmt.Interval", Value: "0"}}, SetOptions{Origin: OriginACS}))
	assert.Len(t, calls, 1, "a refused transaction commits nothing")

	require.NoError(t, tr.FactoryReset())
	require.Len(t, calls, 2)
	assert.Equal(t, Reset, calls[1][0].Kind)
}

// TestSharedFactory: trees built from one factory with a Shared cache hold
// one copy of each object's values; a write to one tree copies that
// object's values and changes nothing in the others.
func TestSharedFactory(t *testing.T) {
	s := testSchemaParsed(t)
	sh := NewShared()
	factory := map[string]string{"Dev.Table.1.Name": "a", "Dev.Table.2.Name": "b"}
	var trees []*Tree
	for i := 0; i < 3; i++ {
		tr, err := New(s, Options{Factory: factory, Shared: sh})
		require.NoError(t, err)
		trees = append(trees, tr)
	}
	a, b := trees[0], trees[1]
	na, _ := a.lookup("Dev.Table.1.Name")
	nb, _ := b.lookup("Dev.Table.1.Name")
	require.True(t, na.n.shared && nb.n.shared)
	assert.Equal(t, &na.n.vals[0], &nb.n.vals[0], "one slice for both")
	require.NoError(t, a.SetValues([]Change{{Path: "Dev.Table.1.Name", Value: "z"}}, SetOptions{}))
	assert.Equal(t, "z", a.MustGet("Dev.Table.1.Name"))
	assert.Equal(t, "a", b.MustGet("Dev.Table.1.Name"), "the other trees keep the factory value")
	assert.Equal(t, "a", trees[2].MustGet("Dev.Table.1.Name"))
	_, err := a.AddInstance("Dev.Table.", map[string]string{"Name": "c"}, SetOptions{})
	require.NoError(t, err)
	vals, _ := b.GetNames("Dev.Table.", true)
	assert.Len(t, vals, 2, "an instance added to one tree is in that tree only")
	require.NoError(t, a.FactoryReset())
	assert.Equal(t, "a", a.MustGet("Dev.Table.1.Name"))
}

// TR-106 DiagnosticsState: the ACS may write Requested (and Canceled), the
// device alone None, Complete and the errors (schema flag wenum).
func TestWriteEnumRefusesDeviceOnlyValues(t *testing.T) {
	s, err := ParseSchema(strings.NewReader("model Device:1.1\nobject Device.\nobject Device.Ping.\nDiagnosticsState string W  enum=None|Requested|Complete|Error_Other  wenum=Requested\n"))
	require.NoError(t, err)
	tr, err := New(s, Options{})
	require.NoError(t, err)
	acs := SetOptions{Origin: OriginACS}
	require.NoError(t, tr.SetValues([]Change{{Path: "Device.Ping.DiagnosticsState", Value: "Requested"}}, acs))
	err = tr.SetValues([]Change{{Path: "Device.Ping.DiagnosticsState", Value: "Complete"}}, acs)
	require.ErrorIs(t, err, ErrInvalidValue)
	require.NoError(t, tr.Set("Device.Ping.DiagnosticsState", "Complete"), "the device reports Complete")
	assert.Equal(t, "Complete", tr.MustGet("Device.Ping.DiagnosticsState"))
}

func TestReplaceTableNumbersFromOne(t *testing.T) {
	s, err := ParseSchema(strings.NewReader("model Device:1.1\nobject Device.\nobject Device.T.\nN unsignedInt R\nobject Device.T.Hop.{i}.  count=N\nHost string R\n"))
	require.NoError(t, err)
	dir := t.TempDir()
	tr, err := New(s, Options{StateDir: dir})
	require.NoError(t, err)
	require.NoError(t, tr.ReplaceTable("Device.T.Hop.", []map[string]string{{"Host": "a"}, {"Host": "b"}, {"Host": "c"}}))
	require.NoError(t, tr.ReplaceTable("Device.T.Hop.", []map[string]string{{"Host": "x"}, {"Host": "y"}}))
	got, err := tr.Instances("Device.T.Hop.")
	require.NoError(t, err)
	assert.Equal(t, []uint32{1, 2}, got)
	assert.Equal(t, "y", tr.MustGet("Device.T.Hop.2.Host"))
	assert.Equal(t, "2", tr.MustGet("Device.T.N"))
	_, err = tr.Get("Device.T.Hop.3.Host")
	assert.ErrorIs(t, err, ErrInvalidName)
	assert.ErrorIs(t, tr.ReplaceTable("Device.T.Hop.", []map[string]string{{"Nope": "1"}}), ErrInvalidName)
	assert.Equal(t, "x", tr.MustGet("Device.T.Hop.1.Host"), "a refused replacement changes nothing")

	again, err := New(s, Options{StateDir: dir})
	require.NoError(t, err)
	require.NoError(t, again.Load())
	assert.Equal(t, "y", again.MustGet("Device.T.Hop.2.Host"), "persisted")
}
