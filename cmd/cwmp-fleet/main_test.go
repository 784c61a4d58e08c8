package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/internal/testutil/testbin"
)

// binary is the built cwmp-fleet.
var binary string

func TestMain(m *testing.M) {
	binary = testbin.MustBuild("cwmp-fleet")
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

func TestDemo(t *testing.T) {
	var buf bytes.Buffer
	demoOut = &buf
	defer func() { demoOut = os.Stdout }()
	require.NoError(t, cmdDemo(nil))
	out := buf.String()
	for _, want := range []string{"Inform [0 BOOTSTRAP, 1 BOOT]", "Inform [6 CONNECTION REQUEST]", "GetParameterValuesResponse",
		"SetParameterValuesResponse Status 0", "AddObjectResponse InstanceNumber 1", "204 No Content"} {
		assert.Contains(t, out, want)
	}
}
