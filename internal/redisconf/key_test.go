package redisconf

import (
	"testing"

	"github.com/edgeguard/edgeguard/filters"
)

// TestKey: settings that dial the same client share a key; a change to any
// field gives another, so a reload with new settings never reuses the old
// client.
func TestKey(t *testing.T) {
	base := Config{Addrs: []string{"127.0.0.1:6379"}, Timeout: filters.Duration(50e6)}
	if base.Key() != (Config{Addrs: []string{"127.0.0.1:6379"}, Timeout: filters.Duration(50e6)}).Key() {
		t.Fatal("equal settings, different keys")
	}
	for name, change := range map[string]func(*Config){
		"addrs":       func(c *Config) { c.Addrs = []string{"127.0.0.1:6380"} },
		"cluster":     func(c *Config) { c.Cluster = true },
		"master_name": func(c *Config) { c.MasterName = "m" },
		"username":    func(c *Config) { c.Username = "u" },
		"password":    func(c *Config) { c.Password = "p" },
		"db":          func(c *Config) { c.DB = 1 },
		"timeout":     func(c *Config) { c.Timeout = filters.Duration(20e6) },
		"pool_size":   func(c *Config) { c.PoolSize = 3 },
		"tls":         func(c *Config) { c.TLS = true },
	} {
		c := base
		c.Addrs = append([]string(nil), base.Addrs...)
		change(&c)
		if c.Key() == base.Key() {
			t.Errorf("changing %s keeps the key", name)
		}
	}
}
