package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/cwmp-agent/cwmp-agent/cmd/internal/config"
)

// shard is this process's part of a fleet run as several (pods of an
// Indexed Job, or processes on one host).
type shard struct {
	index, count int
}

// shardOf reads --shards and --shard-index, the index defaulting to
// $JOB_COMPLETION_INDEX: a Kubernetes Indexed Job gives each pod its own.
func shardOf(count int, index string, getenv func(string) string) (shard, error) {
	if count < 0 {
		return shard{}, &config.Error{Key: "--shards", Err: fmt.Errorf("%d: want 0 (not sharded) or more", count)}
	}
	if count == 0 {
		if index != "" {
			return shard{}, &config.Error{Key: "--shard-index", Err: fmt.Errorf("needs --shards")}
		}
		return shard{}, nil
	}
	key := "--shard-index"
	if index == "" {
		index, key = getenv("JOB_COMPLETION_INDEX"), "JOB_COMPLETION_INDEX"
		if index == "" {
			return shard{}, &config.Error{Key: "--shard-index", Err: fmt.Errorf("--shards %d needs --shard-index or $JOB_COMPLETION_INDEX", count)}
		}
	}
	i, err := strconv.Atoi(index)
	if err != nil || i < 0 || i >= count {
		return shard{}, &config.Error{Key: key, Err: fmt.Errorf("%q: want 0 to %d", index, count-1)}
	}
	return shard{index: i, count: count}, nil
}

// apply derives what must differ between shards from the index, so that
// no two collide whether they share a host or not: the CPEs (serial
// numbers, source addresses) are those of a fleet of count*shards, the
// Connection Request and UDP ports are the configured ones plus the index
// (each is announced to the ACS, in ConnectionRequestURL and
// UDPConnectionRequestAddress), and the state lives in
// state_dir/shard-<index>. The metrics port stays as configured: it is
// scraped per pod, or given as port 0 on one host.
func (s shard) apply(cfg *config.Agent, first *int, count int) error {
	*first += s.index * count
	for _, l := range []struct {
		key  string
		addr *string
	}{{"connection_request.listen", &cfg.ConnectionRequest.Listen}, {"udp_connection_request.listen", &cfg.UDP.Listen}} {
		if *l.addr == "" {
			continue
		}
		host, port, err := net.SplitHostPort(*l.addr)
		if err != nil {
			return &config.Error{Key: l.key, Err: err}
		}
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p+s.index > 65535 {
			return &config.Error{Key: l.key, Err: fmt.Errorf("port %q plus shard index %d is no port", port, s.index)}
		}
		if p != 0 {
			*l.addr = net.JoinHostPort(host, strconv.Itoa(p+s.index))
		}
	}
	cfg.StateDir = filepath.Join(cfg.StateDir, "shard-"+strconv.Itoa(s.index))
	return nil
}
