package packtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/waf"
)

// pluginDirs are the two published CRS plugins in testdata/plugins.
var pluginDirs = []string{
	"../../../testdata/plugins/wordpress-rule-exclusions-plugin",
	"../../../testdata/plugins/drupal-rule-exclusions-plugin",
}

// pluginTestConfig is testdata/plugins/crs-plugin-tests.yaml's waf block.
var pluginTestConfig = waf.Config{Paranoia: 4, InboundThreshold: 10000}

// TestCRSPlugins: two published CRS plugins load as published (config,
// before and after files at CRS's plugin points) and all their own
// regression tests pass.
func TestCRSPlugins(t *testing.T) {
	if testing.Short() {
		t.Skip("CRS plugins: builds CRS at paranoia 4")
	}
	var out bytes.Buffer
	passed, failed, err := Run(&out, pluginTestConfig, filters.Env{Dir: "."}, pluginDirs...)
	if err != nil || failed != 0 || passed != 73 {
		t.Fatalf("passed %d failed %d err %v\n%s", passed, failed, err, out.String())
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
	passed, failed, err := Run(&out, waf.Config{}, filters.Env{}, dir)
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
	passed, failed, err := Run(&out, waf.Config{}, filters.Env{}, dir)
	if err != nil || passed != 1 || failed != 0 || !strings.Contains(out.String(), "SKIP d/b.yaml: meta.enabled is false") {
		t.Fatalf("passed %d failed %d err %v\n%s", passed, failed, err, out.String())
	}
}

// TestShippedPacks runs the packs in rules/ the way `edgeguard rules test`
// does: api-hardening with the profile its pack.yaml names (it needs the
// api profile's content types in CRS's allow-list).
func TestShippedPacks(t *testing.T) {
	var out bytes.Buffer
	passed, failed, err := Run(&out, waf.Config{}, filters.Env{Dir: "."}, "../../../rules/api-hardening", "../../../rules/crs-tuning-example")
	if err != nil || failed != 0 || passed < 20 {
		t.Fatalf("passed %d failed %d err %v\n%s", passed, failed, err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != passed+1 || lines[len(lines)-1] != strconv.Itoa(passed)+" passed, 0 failed" {
		t.Fatalf("output:\n%s", out.String())
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "PASS ") {
			t.Fatalf("line %q", l)
		}
	}
}

// TestPacksReportFailures: a test that fails is reported, not hidden.
func TestPacksReportFailures(t *testing.T) {
	dir := t.TempDir()
	pack := filepath.Join(dir, "p")
	os.MkdirAll(filepath.Join(pack, "tests"), 0o755)
	os.WriteFile(filepath.Join(pack, "pack.yaml"), []byte("name: p\n"), 0o644)
	os.WriteFile(filepath.Join(pack, "r.conf"), []byte(`SecRule ARGS:x "@streq y" "id:9592001,phase:1,deny,log"`+"\n"), 0o644)
	os.WriteFile(filepath.Join(pack, "tests", "t.yaml"), []byte(`rule_id: 9592001
tests:
  - test_id: 1
    stages:
      - input: {uri: "/?x=y", headers: {Host: localhost, User-Agent: t, Accept: "*/*"}}
        output: {status: 403, log: {expect_ids: [9592001]}}
  - test_id: 2
    stages:
      - input: {uri: "/?x=z", headers: {Host: localhost, User-Agent: t, Accept: "*/*"}}
        output: {status: 403, log: {expect_ids: [9592001]}}
`), 0o644)
	var out bytes.Buffer
	passed, failed, err := Run(&out, waf.Config{}, filters.Env{}, pack)
	if err != nil || passed != 1 || failed != 1 || !strings.Contains(out.String(), "FAIL p/t.yaml 9592001-2: expected rule 9592001 did not match; status 200, want [403]") {
		t.Fatalf("passed %d failed %d err %v\n%s", passed, failed, err, out.String())
	}
}

// TestValidate: a pack whose rules do not compile is refused with the
// error New gives (FILE:LINE), a test file that does not decode is
// refused, and the shipped packs pass.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "pack.yaml"), []byte("name: bad\n"), 0o644)
	os.WriteFile(filepath.Join(bad, "rules.conf"), []byte("SecRule ARGS:a \"@streq x\" \"id:9591001,phase:1,denyy\"\n"), 0o644)
	_, want := waf.New(waf.Config{Packs: []string{bad}}, filters.Env{})
	if want == nil {
		t.Fatal("waf.New accepts the bad pack")
	}
	if err := Validate(waf.Config{Packs: []string{bad}}, filters.Env{}); err == nil || err.Error() != want.Error() {
		t.Fatalf("Validate: %v, want New's %v", err, want)
	}

	badTest := filepath.Join(dir, "badtest")
	os.MkdirAll(filepath.Join(badTest, "tests"), 0o755)
	os.WriteFile(filepath.Join(badTest, "pack.yaml"), []byte("name: badtest\n"), 0o644)
	os.WriteFile(filepath.Join(badTest, "r.conf"), []byte("SecRule ARGS:x \"@streq y\" \"id:9591101,phase:1,deny,log\"\n"), 0o644)
	os.WriteFile(filepath.Join(badTest, "tests", "t.yaml"), []byte("rule_id: 1\ntests:\n  - test_id: 1\n    stages:\n      - input: {uri: /}\n        output: {uris: [/a]}\n"), 0o644)
	if err := Validate(waf.Config{Packs: []string{badTest}}, filters.Env{}); err == nil || !strings.Contains(err.Error(), "t.yaml:6") {
		t.Fatalf("Validate of a pack whose test does not decode: %v, want t.yaml:6", err)
	}
	if err := Validate(waf.Config{Packs: []string{"../../../rules/api-hardening", "../../../rules/crs-tuning-example"}}, filters.Env{Dir: "."}); err != nil {
		t.Fatalf("shipped packs: %v", err)
	}
	if err := Validate(waf.Config{Packs: []string{filepath.Join(dir, "missing")}}, filters.Env{}); !errors.Is(err, waf.ErrPack) {
		t.Fatalf("Validate of a missing pack: %v, want waf.ErrPack", err)
	}
}
