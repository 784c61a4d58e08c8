package datamodel

import (
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// memBackend holds values and fails Set on one path.
type memBackend struct {
	mu     sync.Mutex
	vals   map[string]string
	failOn string
	sets   []string
}

func (m *memBackend) Get(path string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.vals[path], nil
}

func (m *memBackend) Set(path, v string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sets = append(m.sets, path+"="+v)
	if path == m.failOn {
		return errors.New("device refused")
	}
	m.vals[path] = v
	return nil
}

func TestMountReadsWritesAndRollsBack(t *testing.T) {
	dir := t.TempDir()
	tr := newTestTree(t, dir, nil)
	b := &memBackend{vals: map[string]string{"Dev.Mgmt.URL": "http://sys/", "Dev.Mgmt.Interval": "30", "Dev.Mgmt.Enable": "false"}}
	require.NoError(t, tr.Mount("Dev.Mgmt.URL", b))
	require.NoError(t, tr.Mount("Dev.Mgmt.Interval", b))
	require.NoError(t, tr.Mount("Dev.Mgmt.Enable", b))
	assert.Error(t, tr.Mount("Dev.Nope.", b))
	assert.Equal(t, "http://sys/", tr.MustGet("Dev.Mgmt.URL"), "reads come from the backend")

	// All applied.
	require.NoError(t, tr.SetValues([]Change{{Path: "Dev.Mgmt.URL", Value: "http://a/"}, {Path: "Dev.Mgmt.Interval", Value: "60"}},
		SetOptions{Origin: OriginACS}))
	assert.Equal(t, "60", b.vals["Dev.Mgmt.Interval"])
	assert.Equal(t, "http://a/", tr.MustGet("Dev.Mgmt.URL"))

	// The third apply fails: the first two are set back, the tree is
	// unchanged, the failing name is reported as an apply error.
	b.failOn = "Dev.Mgmt.Enable"
	b.sets = nil
	err := tr.SetValues([]Change{{Path: "Dev.Mgmt.URL", Value: "http://b/"}, {Path: "Dev.Mgmt.Interval", Value: "90"},
		{Path: "Dev.Mgmt.Enable", Value: "true"}}, SetOptions{Origin: OriginACS})
	var se *SetError
	require.ErrorAs(t, err, &se)
	require.Len(t, se.Faults, 1)
	assert.Equal(t, "Dev.Mgmt.Enable", se.Faults[0].Path)
	assert.ErrorIs(t, se.Faults[0], ErrApply)
	assert.Equal(t, []string{"Dev.Mgmt.URL=http://b/", "Dev.Mgmt.Interval=90", "Dev.Mgmt.Enable=true",
		"Dev.Mgmt.Interval=60", "Dev.Mgmt.URL=http://a/"}, b.sets, "applied in order, rolled back in reverse")
	assert.Equal(t, "http://a/", b.vals["Dev.Mgmt.URL"])
	assert.Equal(t, "60", b.vals["Dev.Mgmt.Interval"])

	// Mounted values are the backend's: not persisted by the tree.
	tr2 := newTestTree(t, dir, nil)
	assert.Equal(t, "", tr2.MustGet("Dev.Mgmt.URL"))

	// A subtree mount with {i}.
	sub := &memBackend{vals: map[string]string{"Dev.Table.1.Name": "from-system"}}
	require.NoError(t, tr.Mount("Dev.Table.{i}.", sub))
	assert.Equal(t, "from-system", tr.MustGet("Dev.Table.1.Name"))
	assert.True(t, tr.Mounted("Dev.Table.1.Level"))
	assert.False(t, tr.Mounted("Dev.Mgmt.When"))
}
