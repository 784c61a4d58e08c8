package imagepages

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadOnlyImage(t *testing.T) {
	s, e, ok := readOnlyImage("00400000-008a9000 r-xp 00000000 fe:00 42  /bin/x", 42)
	assert.True(t, ok)
	assert.Equal(t, uintptr(0x400000), s)
	assert.Equal(t, uintptr(0x8a9000), e)
	for _, l := range []string{
		"00d70000-00dde000 rw-p 00970000 fe:00 42 /bin/x", // writable: data
		"00400000-008a9000 r-xp 00000000 fe:00 43 /bin/y", // another file
		"7ffc-7ffd r--p 00000000 00:00 0",                 // anonymous
		"zz-008a9000 r-xp 00000000 fe:00 42 /bin/x",
		"008a9000-00400000 r-xp 00000000 fe:00 42 /bin/x",
		"",
	} {
		_, _, ok := readOnlyImage(l, 42)
		assert.False(t, ok, l)
	}
}

// rssFile reads the process's file-backed resident memory (kB).
func rssFile(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "RssFile:" {
			n, err := strconv.Atoi(f[1])
			require.NoError(t, err)
			return n
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// TestReleaseShrinksTheResidentImage: the test binary's own pages leave
// the resident set, and the code still runs afterwards (it comes back from
// the page cache).
func TestReleaseShrinksTheResidentImage(t *testing.T) {
	if _, err := os.Stat("/proc/self/maps"); err != nil {
		t.Skip("no /proc/self/maps: ", err)
	}
	before := rssFile(t)
	n, err := Release()
	require.NoError(t, err)
	assert.Positive(t, n)
	after := rssFile(t)
	assert.Less(t, after, before, "RssFile %d kB -> %d kB", before, after)
	// Code and read-only data still work: format, parse and compare again.
	assert.Equal(t, "12345", strconv.Itoa(12345))
}
