package waf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/filters"
)

// pluginDirs are the two published CRS plugins in testdata/plugins.
var pluginDirs = []string{
	"../../testdata/plugins/wordpress-rule-exclusions-plugin",
	"../../testdata/plugins/drupal-rule-exclusions-plugin",
}

// pluginTestConfig is testdata/plugins/crs-plugin-tests.yaml's waf block.
func pluginTestConfig() Config { return Config{Paranoia: 4, InboundThreshold: 10000} }

// TestCRSPlugins: two published CRS plugins load as published (config,
// before and after files at CRS's plugin points) and all their own
// regression tests pass.
func TestCRSPlugins(t *testing.T) {
	if testing.Short() {
		t.Skip("CRS plugins: builds CRS at paranoia 4")
	}
	var out bytes.Buffer
	passed, failed, err := RunPackTests(&out, pluginTestConfig(), filters.Env{Dir: "."}, pluginDirs...)
	if err != nil || failed != 0 || passed != 73 {
		t.Fatalf("passed %d failed %d err %v\n%s", passed, failed, err, out.String())
	}
}

// TestPluginLayout: plugin files are sorted into their points, and a
// .conf file in plugins/ that CRS would not load is refused.
func TestPluginLayout(t *testing.T) {
	p, err := LoadPack(".", pluginDirs[0])
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

// TestPluginPoints: a before file's phase-1 ctl:ruleRemoveById takes
// effect on a phase-1 CRS rule (920350, Host is an IP), which it cannot
// when loaded after CRS; an after file's SecRuleUpdateTargetById needs
// CRS's rule to exist.
func TestPluginPoints(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "plugins"), 0o755)
	os.MkdirAll(filepath.Join(dir, "tests"), 0o755)
	os.WriteFile(filepath.Join(dir, "plugins", "p-config.conf"), []byte(`SecAction "id:9599010,phase:1,pass,nolog,setvar:tx.p_plugin_enabled=1"`+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "plugins", "p-before.conf"), []byte(`SecRule TX:p_plugin_enabled "@eq 1" "id:9599011,phase:1,pass,nolog,ctl:ruleRemoveById=920350"`+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "plugins", "p-after.conf"), []byte(`SecRuleUpdateTargetById 942100 "!ARGS:q"`+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "tests", "t.yaml"), []byte(`rule_id: 9599011
tests:
  - test_id: 1
    stages:
      - input: {uri: "/?q=1'%20or%20'1'='1", headers: {Host: 10.0.0.1, User-Agent: t, Accept: "*/*"}}
        output: {status: 200, log: {no_expect_ids: [920350, 942100]}}
`), 0o644)
	var out bytes.Buffer
	passed, failed, err := RunPackTests(&out, Config{}, filters.Env{}, dir)
	if err != nil || passed != 1 || failed != 0 {
		t.Fatalf("passed %d failed %d err %v\n%s", passed, failed, err, out.String())
	}
}

// TestPackTestDisabled: a file whose meta.enabled is false is skipped and
// said so, not run and not counted as passed.
func TestPackTestDisabled(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "tests"), 0o755)
	os.WriteFile(filepath.Join(dir, "pack.yaml"), []byte("name: d\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "r.conf"), []byte(`SecRule ARGS:x "@streq y" "id:9592101,phase:1,deny,log"`+"\n"), 0o644)
	test := "rule_id: 9592101\ntests:\n  - test_id: 1\n    stages:\n      - input: {uri: \"/?x=y\", headers: {Host: localhost}}\n        output: {status: %d}\n"
	os.WriteFile(filepath.Join(dir, "tests", "a.yaml"), []byte(fmt.Sprintf(test, 403)), 0o644)
	os.WriteFile(filepath.Join(dir, "tests", "b.yaml"), []byte("meta: {enabled: false}\n"+fmt.Sprintf(test, 200)), 0o644)
	var out bytes.Buffer
	passed, failed, err := RunPackTests(&out, Config{}, filters.Env{}, dir)
	if err != nil || passed != 1 || failed != 0 || !strings.Contains(out.String(), "SKIP d/b.yaml: meta.enabled is false") {
		t.Fatalf("passed %d failed %d err %v\n%s", passed, failed, err, out.String())
	}
}
