package config

import "testing"

// TestStateDirectory: the ACME storage and the list cache a file leaves
// unset go under $STATE_DIRECTORY (its first path) when that is set, and
// beside the config otherwise; a path the file sets is kept as written.
func TestStateDirectory(t *testing.T) {
	const unset = "upstream: http://127.0.0.1:9000\ntls: {acme: {domains: [edge.test]}}\n"
	const set = "upstream: http://127.0.0.1:9000\ntls: {acme: {domains: [edge.test], storage: certs}}\nreputation: {cache_dir: lists}\n"
	for _, tc := range []struct {
		name, env, file     string
		storage, listsCache string
	}{
		{"no variable", "", unset, "", ""}, // "": beside the config, as tls_acme.go and the reputation stage default
		{"systemd", "/var/lib/edgeguard", unset, "/var/lib/edgeguard/acme", "/var/lib/edgeguard/lists-cache"},
		{"several directories", "/var/lib/edgeguard:/var/lib/other", unset, "/var/lib/edgeguard/acme", "/var/lib/edgeguard/lists-cache"},
		{"trailing slash", "/var/lib/edgeguard/", unset, "/var/lib/edgeguard/acme", "/var/lib/edgeguard/lists-cache"},
		{"relative variable ignored", "state", unset, "", ""},
		{"set in the file", "/var/lib/edgeguard", set, "certs", "lists"},
		{"set in the file, no variable", "", set, "certs", "lists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(StateDirectoryEnv, tc.env)
			cfg, err := Parse("state.yaml", []byte(tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.TLS.ACME.Storage; got != tc.storage {
				t.Errorf("tls.acme.storage %q, want %q", got, tc.storage)
			}
			if got := cfg.Reputation.CacheDir; got != tc.listsCache {
				t.Errorf("reputation.cache_dir %q, want %q", got, tc.listsCache)
			}
		})
	}
}
