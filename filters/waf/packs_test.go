package waf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// wordpressPlugin is a published CRS plugin in testdata/plugins.
const wordpressPlugin = "../../testdata/plugins/wordpress-rule-exclusions-plugin"

// TestPluginLayout: plugin files are sorted into their points, and a
// .conf file in plugins/ that CRS would not load is refused.
func TestPluginLayout(t *testing.T) {
	p, err := LoadPack(".", wordpressPlugin)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Config) != 1 || len(p.Before) != 1 || len(p.After) != 0 || len(p.Rules) != 0 || len(p.Tests) != 25 ||
		p.Meta.Name != "wordpress-rule-exclusions-plugin" {
		t.Fatalf("pack %+v", p)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "plugins"), 0o755)
	os.WriteFile(filepath.Join(dir, "plugins", "x-rules.conf"), []byte("SecAction \"id:9599001,pass,nolog\"\n"), 0o644)
	if _, err := LoadPack("", dir); !errors.Is(err, ErrPack) || !strings.Contains(err.Error(), "x-rules.conf") {
		t.Fatalf("stray plugin file: %v", err)
	}
}
