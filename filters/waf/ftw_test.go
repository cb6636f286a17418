package waf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/filters"
)

// TestFTWStrict: everything that would let a test pass without checking
// what it says is refused, with the line it is on.
func TestFTWStrict(t *testing.T) {
	const head = "meta: {author: x}\nrule_id: 1\ntests:\n  - test_id: 1\n    stages:\n"
	tests := []struct {
		name, stages string
		wantLine     int
		want         string
	}{
		{"unknown key in output", "      - input: {uri: /}\n        output:\n          status: 200\n          uris: [/a]\n", 9, `unknown field "uris"`},
		{"unknown key in input", "      - input:\n          uri: /\n          url: /x\n        output: {status: 200}\n", 8, `unknown field "url"`},
		{"output nested in input", "      - input:\n          uri: /\n          output: {status: 403}\n", 8, `unknown field "output"`},
		{"no output", "      - input: {uri: /}\n", 6, "stage has no output"},
		{"response needs albedo", "      - input: {uri: /, response: {status: 500}}\n        output: {status: 200}\n", 6, "response is not supported"},
		{"https", "      - input: {uri: /, protocol: https}\n        output: {status: 200}\n", 6, `protocol "https"`},
		{"bad regexp", "      - input: {uri: /}\n        output: {log: {no_match_regex: 'a('}}\n", 7, "log.no_match_regex"},
		{"isolated without one id", "      - input: {uri: /}\n        output: {isolated: true, log: {expect_ids: [1, 2]}}\n", 7, "isolated needs exactly one id"},
		{"data and encoded_data", "      - input: {data: a, encoded_data: YQ==}\n        output: {status: 200}\n", 6, "both data and encoded_data"},
		{"headers beside a whole request", "      - input: {encoded_request: R0VUIC8gSFRUUC8xLjANCg0K, headers: {A: b}}\n        output: {status: 200}\n", 6, "would not be sent"},
		{"legacy wrapper and input", "      - stage: {input: {uri: /}, output: {status: 200}}\n        input: {uri: /}\n", 6, "both the legacy stage: wrapper"},
		{"bad status", "      - input: {uri: /}\n        output: {status: 42}\n", 7, "status 42"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeFTW("f.yaml", []byte(head+tc.stages))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrFTW) {
				t.Errorf("%v does not wrap ErrFTW", err)
			}
			prefix := "f.yaml:" + itoa(tc.wantLine) + ": "
			if !strings.Contains(err.Error(), prefix) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want %q and %q", err, prefix, tc.want)
			}
		})
	}
}

// TestFTWForms: the legacy forms CRS files use decode to the same stage as
// the current one, and every key of the schema is accepted.
func TestFTWForms(t *testing.T) {
	legacy := "rule_id: 1\ntests:\n  - test_id: 1\n    stages:\n      - stage:\n          input: {uri: /a, method: POST, data: x=1}\n          output: {status: [200, 403], log: {expect_ids: [1]}}\n"
	f, err := decodeFTW("l.yaml", []byte(legacy))
	if err != nil {
		t.Fatal(err)
	}
	st := f.Tests[0].Stages[0]
	if st.Input.URI == nil || *st.Input.URI != "/a" || len(st.Output.Status) != 2 || st.Output.Log.ExpectIDs[0] != 1 {
		t.Fatalf("legacy stage decoded as %+v", st)
	}
	every := `meta: {author: a, enabled: true, name: n, description: d, version: v1, tags: [x]}
rule_id: 1
tests:
  - test_title: 1-1
    test_id: 1
    desc: d
    tags: [t]
    stages:
      - description: s
        input:
          dest_addr: 127.0.0.1
          port: 80
          protocol: http
          uri: /
          version: HTTP/1.1
          method: POST
          ordered_headers: [{name: Host, value: a}, {name: Host, value: b}]
          encoded_data: eD0x
          save_cookie: true
          stop_magic: true
          autocomplete_headers: true
          virtual_host_mode: false
        output:
          status: 200
          response_contains: "HTTP/1.1"
          log_contains: "id"
          no_log_contains: "x"
          log: {expect_ids: [1], no_expect_ids: [2], match_regex: a, no_match_regex: b}
          expect_error: false
          retry_once: true
          isolated: true
`
	f, err = decodeFTW("e.yaml", []byte(every))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := f.Tests[0].Stages[0].Input.rawRequest()
	if err != nil {
		t.Fatal(err)
	}
	want := "POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\nx=1"
	if string(raw) != want {
		t.Fatalf("raw %q\nwant %q", raw, want)
	}
	if _, err := decodeFTW("c.yaml", []byte("# comments only\n")); err != nil {
		t.Fatalf("a comments-only file: %v", err)
	}
}

// TestPackTestAssertsNothing: a pack test whose output is empty is refused
// by the pack runner with FILE:LINE (a corpus file may have one).
func TestPackTestAssertsNothing(t *testing.T) {
	src := []byte("rule_id: 1\ntests:\n  - test_id: 1\n    stages:\n      - input: {uri: /}\n        output: {}\n")
	if _, err := decodeFTW("c.yaml", src); err != nil {
		t.Fatalf("schema allows an empty output: %v", err)
	}
	if _, err := decodePackTest("p.yaml", src); err == nil || !strings.Contains(err.Error(), "p.yaml:6: output asserts nothing") {
		t.Fatalf("pack test: %v", err)
	}
}

// TestFTWRunnerChecks: each assertion fails when what it states is false.
func TestFTWRunnerChecks(t *testing.T) {
	rec := ftwRecord{ids: []int{941100, 949110}, logs: []string{`[id "941100"] XSS`}}
	res := ftwResult{status: 403, response: []byte("HTTP/1.1 403 Forbidden\r\n\r\nblocked"), rec: rec}
	tests := []struct {
		name string
		out  ftwOutput
		fail bool
	}{
		{"status ok", ftwOutput{Status: ftwStatus{403}}, false},
		{"status wrong", ftwOutput{Status: ftwStatus{200}}, true},
		{"expect id", ftwOutput{Log: ftwLog{ExpectIDs: []int{941100}}}, false},
		{"expect missing id", ftwOutput{Log: ftwLog{ExpectIDs: []int{942100}}}, true},
		{"no expect id that matched", ftwOutput{Log: ftwLog{NoExpectIDs: []int{941100}}}, true},
		{"isolated, scoring aside", ftwOutput{Isolated: true, Log: ftwLog{ExpectIDs: []int{941100}}}, false},
		{"response_contains", ftwOutput{ResponseContains: "blocked"}, false},
		{"response_contains absent", ftwOutput{ResponseContains: "welcome"}, true},
		{"log_contains", ftwOutput{LogContains: `id "941100"`}, false},
		{"no_log_contains", ftwOutput{NoLogContains: `id "941100"`}, true},
		{"expect_error on a 403", ftwOutput{ExpectError: true}, false},
	}
	for _, tc := range tests {
		if got := len(tc.out.verify(res)) > 0; got != tc.fail {
			t.Errorf("%s: failed=%v, want %v (%v)", tc.name, got, tc.fail, tc.out.verify(res))
		}
	}
	iso := ftwOutput{Isolated: true, Log: ftwLog{ExpectIDs: []int{941100}}}
	res.rec.ids = append(res.rec.ids, 941160)
	if len(iso.verify(res)) == 0 {
		t.Error("isolated passed with a second attack rule matching")
	}
}

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
	passed, failed, err := TestPacks(&out, pluginTestConfig(), filters.Env{Dir: "."}, pluginDirs...)
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
	passed, failed, err := TestPacks(&out, Config{}, filters.Env{}, dir)
	if err != nil || passed != 1 || failed != 0 {
		t.Fatalf("passed %d failed %d err %v\n%s", passed, failed, err, out.String())
	}
}
