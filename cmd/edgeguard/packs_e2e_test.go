package main

import (
	"bufio"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2ECRSPlugins: two published CRS plugins, as published, pass all
// their own regression tests through `edgeguard rules test -config`.
func TestE2ECRSPlugins(t *testing.T) {
	bin := binary(t)
	out, err := exec.Command(bin, "rules", "test", "-config", "../../testdata/plugins/crs-plugin-tests.yaml",
		"../../testdata/plugins/wordpress-rule-exclusions-plugin", "../../testdata/plugins/drupal-rule-exclusions-plugin").CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^73 passed, 0 failed$`).Match(out) {
		t.Fatalf("rules test: %v\n%s", err, out)
	}
}

// TestE2EPackTestUnknownKey: a pack test with a key go-ftw's schema does
// not define fails `rules test` with FILE:LINE instead of passing unchecked.
func TestE2EPackTestUnknownKey(t *testing.T) {
	bin := binary(t)
	pack := t.TempDir()
	os.MkdirAll(filepath.Join(pack, "tests"), 0o755)
	os.WriteFile(filepath.Join(pack, "pack.yaml"), []byte("name: p\n"), 0o644)
	os.WriteFile(filepath.Join(pack, "r.conf"), []byte(`SecRule ARGS:x "@streq y" "id:9592001,phase:1,deny,log"`+"\n"), 0o644)
	os.WriteFile(filepath.Join(pack, "tests", "t.yaml"), []byte(`rule_id: 9592001
tests:
  - test_id: 1
    stages:
      - input: {uri: "/?x=y"}
        output:
          status: 403
          response_contain: "blocked"
`), 0o644)
	out, err := exec.Command(bin, "rules", "test", pack).CombinedOutput()
	if exitCode(err) != 1 || !strings.Contains(string(out), filepath.Join(pack, "tests", "t.yaml")+`:8: unknown field "response_contain"`) {
		t.Fatalf("exit %d, output:\n%s", exitCode(err), out)
	}
}

// TestE2ETune: a shadow run of API traffic that stock CRS refuses, then
// `edgeguard tune`, then the proposed pack: its own tests pass, the same
// traffic passes in block mode, and attacks (also inside the variables it
// excludes) are still refused.
func TestE2ETune(t *testing.T) {
	bin := binary(t)
	up := echoUpstream(t)
	const base = "listen: \"127.0.0.1:0\"\nupstream: \"{{upstream}}\"\nadmin: {listen: \"127.0.0.1:0\"}\nstages: [waf]\n"
	ps := start(t, base+"waf: {mode: shadow, audit: audit.jsonl, audit_requests: true}\n", up.URL)
	benign := []struct{ method, path, body string }{
		{"PUT", "/api/items/42", `{"name":"widget","count":3}`},
		{"DELETE", "/api/items/42", ""},
		{"POST", "/api/notes", `{"title":"deploy","note":"Run ` + "`curl -s https://example.com/install.sh | sh`" + ` then ` + "`cat /etc/os-release`" + `"}`},
	}
	send := func(edge string, method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+edge+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, b := range benign {
		if code := send(ps.edge, b.method, b.path, b.body); code != 200 {
			t.Fatalf("shadow: %s %s: %d", b.method, b.path, code)
		}
	}
	// SIGTERM drains in-flight requests: after exit the audit file is whole.
	_ = ps.cmd.Process.Signal(syscall.SIGTERM)
	exitErr := <-ps.done
	ps.done <- exitErr
	audit := filepath.Join(ps.dir, "audit.jsonl")
	if n := countLines(t, audit); n != len(benign) {
		t.Fatalf("%d audit events, want %d", n, len(benign))
	}

	pack := filepath.Join(t.TempDir(), "tuned")
	out, err := exec.Command(bin, "tune", "-audit", audit, "-out", pack).CombinedOutput()
	if err != nil {
		t.Fatalf("tune: %v\n%s", err, out)
	}
	for _, want := range []string{"methods DELETE, PUT added", "variable ARGS:json.note"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("tune summary lacks %q:\n%s", want, out)
		}
	}
	rules, _ := os.ReadFile(filepath.Join(pack, "plugins", "tuned-after.conf"))
	if !strings.Contains(string(rules), `SecRuleUpdateTargetById 932235 "!ARGS:json.note"`) || strings.Contains(string(rules), "ruleRemoveById") {
		t.Errorf("proposed exclusions:\n%s", rules)
	}
	if out, err := exec.Command(bin, "rules", "test", pack).CombinedOutput(); err != nil {
		t.Fatalf("rules test on the proposed pack: %v\n%s", err, out)
	}

	pb := start(t, base+"waf: {packs: [\""+pack+"\"]}\n", up.URL)
	for _, b := range benign {
		if code := send(pb.edge, b.method, b.path, b.body); code != 200 {
			t.Errorf("with the tuned pack: %s %s: %d, want 200", b.method, b.path, code)
		}
	}
	attacks := []struct{ method, path, body string }{
		{"GET", "/api/items?id=" + url.QueryEscape("1' UNION SELECT password FROM users--"), ""},
		{"POST", "/api/notes", `{"note":"<script>alert(document.cookie)</script>"}`},
		{"POST", "/api/notes", `{"note":"1' UNION SELECT password FROM users--"}`},
		{"TRACE", "/api/items", ""},
	}
	for _, a := range attacks {
		if code := send(pb.edge, a.method, a.path, a.body); code != 403 && code != 405 {
			t.Errorf("with the tuned pack: attack %s %s %s: %d, want it refused", a.method, a.path, a.body, code)
		}
	}
}

func countLines(t *testing.T, file string) int {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		n++
	}
	return n
}
