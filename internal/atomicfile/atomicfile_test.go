package atomicfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteReplacesAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "state.json")
	require.NoError(t, Write(p, []byte("one"), 0o600))
	require.NoError(t, Write(p, []byte("two"), 0o600))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	ents, err := os.ReadDir(filepath.Dir(p))
	require.NoError(t, err)
	assert.Len(t, ents, 1, "temporary files must not be left behind")
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
}

func TestQuarantine(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.json")
	require.NoError(t, os.WriteFile(p, []byte("{"), 0o600))
	bad, err := Quarantine(p, "1")
	require.NoError(t, err)
	_, err = os.Stat(p)
	assert.True(t, os.IsNotExist(err))
	b, err := os.ReadFile(bad)
	require.NoError(t, err)
	assert.Equal(t, "{", string(b))
}

func TestJSONRoundTripAndCorruption(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "s.json")
	type st struct{ A int }
	require.NoError(t, WriteJSON(p, st{A: 7}))
	var got st
	require.NoError(t, ReadJSON(p, &got))
	assert.Equal(t, 7, got.A)

	var none st
	assert.ErrorIs(t, ReadJSON(filepath.Join(dir, "missing"), &none), os.ErrNotExist)

	b, _ := os.ReadFile(p)
	b[len(b)-3] ^= 1 // flip a bit inside the state
	require.NoError(t, os.WriteFile(p, b, 0o600))
	err := ReadJSON(p, &got)
	assert.ErrorIs(t, err, ErrCorrupt)
	_, serr := os.Stat(p)
	assert.True(t, os.IsNotExist(serr), "the corrupt file is moved aside")
	ents, _ := os.ReadDir(dir)
	assert.Len(t, ents, 1)
}
