package config

import (
	"path/filepath"
	"strings"

	"github.com/edgeguard/edgeguard/filters/reputation"
)

// StateDirectoryEnv names the variable that says where a service may write
// state: systemd sets it from the unit's StateDirectory= (dist's unit:
// /var/lib/edgeguard) and dist's Dockerfile sets it to the image's volume.
const StateDirectoryEnv = "STATE_DIRECTORY"

// DefaultACMEStorage is tls.acme.storage when the file does not set it:
// under $STATE_DIRECTORY when that is set, else the config's directory.
const DefaultACMEStorage = "acme"

// placeState puts the state the file does not place — the ACME storage
// and the cache of lists followed by URL — under the state directory that
// getenv reports, when there is one. The config's own directory is where
// it goes otherwise, but a service unit with ProtectSystem=strict keeps
// /etc read-only, and a container's config is mounted read-only too: there
// the first certificate or list download would fail. A path the file sets
// is kept as written (a relative one still resolves against the config's
// directory). It runs before the stages' defaults, which cannot tell an
// unset path from their default.
func (c *Config) placeState(getenv func(string) string) {
	dir := stateDirectory(getenv)
	if dir == "" {
		return
	}
	if a := c.TLS.ACME; a != nil && a.Storage == "" {
		a.Storage = filepath.Join(dir, DefaultACMEStorage)
	}
	if c.Reputation.CacheDir == "" {
		c.Reputation.CacheDir = filepath.Join(dir, reputation.DefaultCacheDir)
	}
}

// stateDirectory is the first of the absolute paths in $STATE_DIRECTORY
// (systemd separates several with colons), or "" without one. A relative
// path is ignored: it would resolve against the config's directory, which
// is what an unset variable means already.
func stateDirectory(getenv func(string) string) string {
	first, _, _ := strings.Cut(getenv(StateDirectoryEnv), ":")
	if !filepath.IsAbs(first) {
		return ""
	}
	return filepath.Clean(first)
}
