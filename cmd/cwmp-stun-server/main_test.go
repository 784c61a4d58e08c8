package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/confkit"
)

func TestStunServerConfig(t *testing.T) {
	c, err := loadStunConfig(nil)
	require.NoError(t, err)
	assert.False(t, c.StunServer.SharePort, "the port is not shared unless asked")
	assert.Equal(t, ":3478", c.StunServer.Listen)

	c, err = loadStunConfig([]string{"--share-port", "--listen", "127.0.0.1:3478"})
	require.NoError(t, err)
	assert.True(t, c.StunServer.SharePort)
	assert.Equal(t, "127.0.0.1:3478", c.StunServer.Listen)

	f := filepath.Join(t.TempDir(), "s.yaml")
	require.NoError(t, os.WriteFile(f, []byte("stun_server:\n  share_port: true\n  copies: 0\n"), 0o600))
	c, err = loadStunConfig([]string{"--config", f})
	assert.True(t, c.StunServer.SharePort)
	assert.ErrorContains(t, err, "stun_server.copies")
}

// TestREADMEListsEveryKey keeps the README's configuration table true.
func TestREADMEListsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	for _, k := range confkit.Keys(defaultFile()) {
		if strings.HasPrefix(k.Name, "log.") {
			continue // the agent's table has them
		}
		assert.True(t, strings.Contains(string(b), "`"+k.Name+"`"), "README lacks the configuration key %s", k.Name)
	}
}
