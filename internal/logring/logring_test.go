package logring

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestKeepsWholeRecentLines(t *testing.T) {
	r := New(50)
	for i := 0; i < 20; i++ {
		fmt.Fprintf(r, "line %02d\n", i)
	}
	s := r.String()
	assert.LessOrEqual(t, len(s), 50)
	assert.True(t, strings.HasPrefix(s, "line "), "starts at a line boundary: %q", s)
	assert.True(t, strings.HasSuffix(s, "line 19\n"))
}
