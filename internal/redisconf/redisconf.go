// Package redisconf holds the one shape of Redis settings that every part of
// edgeguard that talks to Redis takes (quota, reputation, the forward
// shield), and builds a go-redis UniversalClient from it, so a single node,
// Sentinel and Redis Cluster are all one config away.
package redisconf

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/redis/go-redis/v9"
)

// DefaultTimeout bounds every Redis call when Config.Timeout is unset. Edge
// requests must not queue behind a slow Redis; 50ms is far above a healthy
// round trip on a LAN and far below what a client notices.
const DefaultTimeout = 50 * time.Millisecond

// Config is how to reach Redis.
type Config struct {
	// Addrs are host:port pairs. One address: a single node. Several with
	// Cluster: true: seed nodes of a Redis Cluster. Several with MasterName:
	// Sentinel addresses.
	Addrs []string `yaml:"addrs" json:"addrs"`
	// Cluster says the addresses are Redis Cluster nodes.
	Cluster bool `yaml:"cluster,omitempty" json:"cluster,omitempty"`
	// MasterName, when set, makes Addrs Sentinel addresses for this master.
	MasterName string `yaml:"master_name,omitempty" json:"master_name,omitempty"`
	// Username and Password authenticate (Redis ACL); empty means none.
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
	Password string `yaml:"password,omitempty" json:"password,omitempty"`
	// DB is the database number (single node and Sentinel only).
	DB int `yaml:"db,omitempty" json:"db,omitempty"`
	// Timeout bounds each call: dial, read and write. Default 50ms.
	Timeout filters.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// PoolSize is the connection pool size per node; 0 means go-redis's
	// default (10 per CPU).
	PoolSize int `yaml:"pool_size,omitempty" json:"pool_size,omitempty"`
	// TLS turns on TLS to Redis with the system roots.
	TLS bool `yaml:"tls,omitempty" json:"tls,omitempty"`
}

// IsZero reports whether no Redis is configured.
func (c Config) IsZero() bool { return len(c.Addrs) == 0 }

// Validate checks the settings; field names are relative to the Redis block.
func (c Config) Validate() error {
	var errs []error
	for i, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, filters.FieldErrorf(fmt.Sprintf("addrs[%d]", i), "%q is not host:port", a))
		}
	}
	if c.Cluster && c.MasterName != "" {
		errs = append(errs, filters.FieldErrorf("cluster", "cluster and master_name exclude each other"))
	}
	if c.Cluster && c.DB != 0 {
		errs = append(errs, filters.FieldErrorf("db", "Redis Cluster has only database 0"))
	}
	if c.DB < 0 {
		errs = append(errs, filters.FieldErrorf("db", "must not be negative"))
	}
	if c.PoolSize < 0 {
		errs = append(errs, filters.FieldErrorf("pool_size", "must not be negative"))
	}
	return errors.Join(errs...)
}

// Key returns a string that is the same for the same settings and differs
// for any other: the key under which successive users of these settings
// share one client (see internal/usagepool).
func (c Config) Key() string {
	b, err := json.Marshal(c)
	if err != nil {
		panic("redisconf: Key: " + err.Error()) // plain fields only: cannot fail
	}
	return string(b)
}

// CallTimeout returns the per-call timeout with the default applied.
func (c Config) CallTimeout() time.Duration {
	if c.Timeout <= 0 {
		return DefaultTimeout
	}
	return c.Timeout.D()
}

// Options returns the go-redis options these settings stand for.
func (c Config) Options() *redis.UniversalOptions {
	t := c.CallTimeout()
	o := &redis.UniversalOptions{
		Addrs:         c.Addrs,
		IsClusterMode: c.Cluster,
		MasterName:    c.MasterName,
		Username:      c.Username,
		Password:      c.Password,
		DB:            c.DB,
		DialTimeout:   t,
		ReadTimeout:   t,
		WriteTimeout:  t,
		PoolSize:      c.PoolSize,
		// A pool wait longer than the call timeout would let requests queue
		// on a saturated pool; fail as fast as a slow call would.
		PoolTimeout: t,
		// Retries multiply the worst-case latency of a request; the callers
		// have their own fallbacks (on_error), so one attempt is enough.
		MaxRetries: -1,
	}
	if c.TLS {
		o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return o
}

// NewClient returns a client for these settings: a cluster client when
// Cluster is set, a failover client with MasterName, a plain one otherwise.
func (c Config) NewClient() redis.UniversalClient {
	return redis.NewUniversalClient(c.Options())
}
