package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func post(t *testing.T, edge, path, ctype string, body []byte) (int, seen) {
	t.Helper()
	resp, err := http.Post("http://"+edge+path, ctype, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	var s seen
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &s)
	return resp.StatusCode, s
}

// TestE2EWAF: attacks are refused with 403, a benign JSON body reaches the
// upstream byte for byte, shadow mode lets the attack through and audits
// it, and bodies over the limit are refused or inspected in part.
func TestE2EWAF(t *testing.T) {
	up := echoUpstream(t)
	const base = `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
stages: [waf]
`
	p := start(t, base+"waf: {paranoia: 1, body_limit: 4KiB}\n", up.URL)
	c := &http.Client{Timeout: 10 * time.Second}
	attacks := []struct{ name, method, path, ctype, body string }{
		{"SQL injection in the query", "GET", "/items?id=" + url.QueryEscape("1' UNION SELECT password FROM users--"), "", ""},
		{"XSS in a JSON body", "POST", "/comments", "application/json", `{"comment": "<script>alert(document.cookie)</script>"}`},
		{"path traversal", "GET", "/download?file=" + url.QueryEscape("../../../../etc/passwd"), "", ""},
	}
	for _, a := range attacks {
		req, _ := http.NewRequest(a.method, "http://"+p.edge+a.path, strings.NewReader(a.body))
		if a.ctype != "" {
			req.Header.Set("Content-Type", a.ctype)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", a.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("%s: %d, want 403", a.name, resp.StatusCode)
		}
		if id := resp.Header.Get("X-Request-Id"); id == "" || !strings.Contains(string(body), id) || strings.Contains(string(body), "script") {
			t.Errorf("%s: deny body %q must name the request id and never echo the payload", a.name, body)
		}
	}

	benign := []byte(`{"order": {"id": 1234, "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}], "note": "ring twice, thanks"}}`)
	code, s := post(t, p.edge, "/orders", "application/json", benign)
	if code != 200 || s.Body != string(benign) {
		t.Fatalf("benign JSON: %d, upstream got %q", code, s.Body)
	}
	big := []byte(`{"doc": "` + strings.Repeat("a", 5000) + `"}`)
	if code, _ := post(t, p.edge, "/upload", "application/json", big); code != http.StatusRequestEntityTooLarge {
		t.Errorf("body over body_limit with reject: %d, want 413", code)
	}

	// partial: the first body_limit bytes are inspected, the whole body goes on.
	pp := start(t, base+"waf: {body_limit: 4KiB, body_limit_action: partial}\n", up.URL)
	form := []byte("a=" + strings.Repeat("x", 5000))
	if code, s := post(t, pp.edge, "/form", "application/x-www-form-urlencoded", form); code != 200 || s.Body != string(form) {
		t.Errorf("benign form over the limit with partial: %d, upstream got %d bytes", code, len(s.Body))
	}
	attack := []byte("q=" + url.QueryEscape("1' UNION SELECT password FROM users--") + "&pad=" + strings.Repeat("x", 5000))
	if code, _ := post(t, pp.edge, "/form", "application/x-www-form-urlencoded", attack); code != 403 {
		t.Errorf("attack in the inspected prefix with partial: %d, want 403", code)
	}

	// shadow: the attack reaches the upstream, and the audit event is logged.
	ps := start(t, base+"waf: {mode: shadow}\n", up.URL)
	resp, err := c.Get("http://" + ps.edge + attacks[0].path)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("shadow mode: %v %v, want the attack let through", err, resp)
	}
	resp.Body.Close()
	ev, _ := ps.log.waitFor(t, 0, 5*time.Second, map[string]string{"msg": "waf audit", "shadow": "true"})
	if ev["request_id"] != resp.Header.Get("X-Request-Id") {
		t.Errorf("audit event for request %v, want %s", ev["request_id"], resp.Header.Get("X-Request-Id"))
	}
}

// TestE2ERulePacks: the shipped packs pass their own tests through
// `edgeguard rules test`, and a pack with a syntax error fails validate
// with its FILE:LINE.
func TestE2ERulePacks(t *testing.T) {
	bin := binary(t)
	// Packs are the directories with a pack.yaml (rules/profile-* are the
	// embedded profiles' SecLang, loaded by waf.profile, not packs).
	metas, _ := filepath.Glob("../../rules/*/pack.yaml")
	var packs []string
	for _, m := range metas {
		packs = append(packs, filepath.Dir(m))
	}
	if len(packs) < 2 {
		t.Fatalf("shipped packs: %v", packs)
	}
	out, err := exec.Command(bin, append([]string{"rules", "test"}, packs...)...).CombinedOutput()
	if err != nil || !regexp.MustCompile(`(?m)^\d+ passed, 0 failed$`).Match(out) {
		t.Fatalf("rules test %v: %v\n%s", packs, err, out)
	}

	dir := t.TempDir()
	bad, _ := filepath.Abs("../../testdata/packs/bad")
	cfg := filepath.Join(dir, "edge.yaml")
	os.WriteFile(cfg, []byte("upstream: http://127.0.0.1:9\nstages: [waf]\nwaf: {packs: [\""+bad+"\"]}\n"), 0o644)
	out, err = exec.Command(bin, "validate", "-config", cfg).CombinedOutput()
	if err == nil {
		t.Fatalf("validate accepted a pack with a syntax error:\n%s", out)
	}
	if !regexp.MustCompile(`rules\.conf:5: `).Match(out) {
		t.Fatalf("validate output lacks FILE:LINE of the bad directive:\n%s", out)
	}
	if code := exitCode(err); code != 1 {
		t.Fatalf("validate exit %d, want 1", code)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}
