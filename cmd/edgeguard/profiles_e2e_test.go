package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters/waf"
)

// TestE2EWAFProfiles: a route's profile applies to that route only (a
// GraphQL document passes on /graphql, the same body elsewhere is refused),
// REST methods pass under api, and an attack in a GraphQL variable or in a
// declared text field is still refused.
func TestE2EWAFProfiles(t *testing.T) {
	up := echoUpstream(t)
	p := start(t, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
routes:
  - {path: /graphql, upstream: default}
  - {path: /, upstream: default}
stages: [waf]
waf: {profile: api, text_fields: [json.note]}
route_stages:
  /graphql: {waf: {profile: graphql}}
`, up.URL)
	const doc = `mutation AddComment($input: AddCommentInput!) {\n  addComment(input: $input) { commentEdge { node { id } } }\n}`
	tests := []struct {
		name, method, path, body string
		want                     int
	}{
		{"GraphQL document on the graphql route", "POST", "/graphql", `{"query":"` + doc + `","variables":{"input":{"body":"LGTM"}}}`, 200},
		{"the same document on an api route", "POST", "/api/comments", `{"query":"` + doc + `"}`, 403},
		{"SQLi in a GraphQL variable", "POST", "/graphql", `{"query":"` + doc + `","variables":{"input":{"body":"1' UNION SELECT password FROM users--"}}}`, 403},
		{"PATCH under api", "PATCH", "/api/items/7", `{"name":"widget"}`, 200},
		{"DELETE under api", "DELETE", "/api/items/7", "", 200},
		{"markdown in the declared text field", "POST", "/api/notes", `{"note":"Run:\n\n` + "```bash\\ngit clone https://github.com/octocat/hello-world.git\\ncd hello-world\\nmake build\\n```" + `"}`, 200},
		{"XSS in the declared text field", "POST", "/api/notes", `{"note":"<script>alert(document.cookie)</script>"}`, 403},
	}
	c := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, "http://"+p.edge+tc.path, strings.NewReader(tc.body))
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}

// TestE2EWAFProfileConfigErrors: a bad profile, a text field that would
// be SecLang syntax, and partial with a JSON profile are refused by
// validate with FILE:LINE.
func TestE2EWAFProfileConfigErrors(t *testing.T) {
	bin := binary(t)
	tests := []struct {
		name, waf string
		want      string // after FILE:LINE:
	}{
		{"unknown profile", "waf:\n  profile: rest\n", `:4: .*profile.*"rest": want web, api or graphql`},
		{"text field with syntax", "waf:\n  text_fields: [json.note, \"json.x|ARGS\"]\n", `:4: .*text_fields\[1\]`},
		{"partial with api", "waf:\n  profile: api\n  body_limit_action: partial\n", `:5: .*body_limit_action.*partial with profile api`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := filepath.Join(t.TempDir(), "edge.yaml")
			if err := os.WriteFile(cfg, []byte("upstream: http://127.0.0.1:9\nstages: [waf]\n"+tc.waf), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, "validate", "-config", cfg).CombinedOutput()
			if code := exitCode(err); code != 1 {
				t.Fatalf("validate exit %d, want 1:\n%s", code, out)
			}
			if !regexp.MustCompile(regexp.QuoteMeta(cfg) + tc.want).Match(out) {
				t.Fatalf("validate output lacks %s%s:\n%s", cfg, tc.want, out)
			}
		})
	}
}

// TestDemoUsesAPIProfile: the demo stands for a JSON API.
func TestDemoUsesAPIProfile(t *testing.T) {
	cfg, err := demoConfig("127.0.0.1:0", "127.0.0.1:0", "http://127.0.0.1:9")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WAF.Profile != waf.ProfileAPI {
		t.Fatalf("demo waf.profile %q, want api", cfg.WAF.Profile)
	}
}
