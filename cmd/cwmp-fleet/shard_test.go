package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/config"
)

func TestShardOf(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "JOB_COMPLETION_INDEX" {
				return v
			}
			return ""
		}
	}
	s, err := shardOf(0, "", env("2"))
	require.NoError(t, err)
	assert.Equal(t, shard{}, s, "not sharded without --shards, whatever the environment")
	s, err = shardOf(3, "", env("2"))
	require.NoError(t, err)
	assert.Equal(t, shard{index: 2, count: 3}, s, "the index of an Indexed Job's pod")
	s, err = shardOf(3, "1", env("2"))
	require.NoError(t, err)
	assert.Equal(t, shard{index: 1, count: 3}, s, "--shard-index wins")
	for _, c := range []struct {
		shards        int
		index, env    string
		wantKey, want string
	}{
		{3, "", "", "--shard-index", "needs --shard-index or $JOB_COMPLETION_INDEX"},
		{3, "3", "", "--shard-index", "want 0 to 2"},
		{3, "-1", "", "--shard-index", "want 0 to 2"},
		{3, "", "x", "JOB_COMPLETION_INDEX", "want 0 to 2"},
		{0, "1", "", "--shard-index", "needs --shards"},
		{-2, "", "", "--shards", "want 0"},
	} {
		_, err := shardOf(c.shards, c.index, env(c.env))
		var ce *config.Error
		require.ErrorAs(t, err, &ce, "%+v", c)
		assert.Equal(t, c.wantKey, ce.Key)
		assert.ErrorContains(t, err, c.want)
	}
}

// TestShardApply: what a shard derives from its index.
func TestShardApply(t *testing.T) {
	cfg := config.Defaults()
	cfg.ConnectionRequest.Listen, cfg.UDP.Listen, cfg.StateDir = "127.0.0.1:7547", ":0", "/var/lib/f"
	first := 1
	require.NoError(t, shard{index: 2, count: 3}.apply(cfg, &first, 100))
	assert.Equal(t, 201, first, "CPEs 201 to 300 of 300")
	assert.Equal(t, "127.0.0.1:7549", cfg.ConnectionRequest.Listen)
	assert.Equal(t, ":0", cfg.UDP.Listen, "port 0 stays 0: the kernel picks")
	assert.Equal(t, "/var/lib/f/shard-2", cfg.StateDir)
	cfg.ConnectionRequest.Listen = ":65535"
	assert.Error(t, shard{index: 1, count: 2}.apply(cfg, &first, 1), "no port past 65535")
}
