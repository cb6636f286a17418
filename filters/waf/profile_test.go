package waf

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/filters"
)

func TestProfileValidate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		fields []string
	}{
		{"each profile", Config{Profile: ProfileGraphQL, TextFields: []string{"json.note", "json.post.body", "message", "json.a-b_c"}}, nil},
		{"unknown profile", Config{Profile: "rest"}, []string{"profile"}},
		{"profiles are lower case", Config{Profile: "API"}, []string{"profile"}},
		{"text field with SecLang syntax", Config{TextFields: []string{"json.note", `json.x"`, "json.a|ARGS", "json.a,json.b", "!json.a", "json a", ""}},
			[]string{"text_fields[1]", "text_fields[2]", "text_fields[3]", "text_fields[4]", "text_fields[5]", "text_fields[6]"}},
		{"text field too long", Config{TextFields: []string{"json." + strings.Repeat("a", 124)}}, []string{"text_fields[0]"}},
		{"partial with a JSON profile", Config{Profile: ProfileAPI, BodyLimitAction: BodyLimitPartial}, []string{"body_limit_action"}},
		{"partial with graphql", Config{Profile: ProfileGraphQL, BodyLimitAction: BodyLimitPartial}, []string{"body_limit_action"}},
		{"partial with web", Config{Profile: ProfileWeb, BodyLimitAction: BodyLimitPartial}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var got []string
			for _, e := range unjoin(err) {
				var fe *filters.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("error %v is not a *filters.FieldError", e)
				}
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, tc.fields) {
				t.Fatalf("fields %v, want %v (%v)", got, tc.fields, err)
			}
		})
	}
}

const (
	markdownNote = "Steps:\\n\\n```bash\\ngit clone https://github.com/octocat/hello-world.git\\ncd hello-world\\nmake build\\n./bin/server --port 8080\\n```\\n\\nThen `curl -s http://localhost:3000/api/items | jq .`"
	graphqlDoc   = `mutation AddComment($input: AddCommentInput!) {\n  addComment(input: $input) {\n    commentEdge { node { id body url } }\n  }\n}`
)

// TestProfileDecisions: what each profile lets through, and that every
// exclusion is as narrow as it claims: the same attack inside an excluded
// field, beside it, or in a field of a similar name is still refused.
func TestProfileDecisions(t *testing.T) {
	note := []string{"json.note"}
	tests := []struct {
		name       string
		profile    Profile
		textFields []string
		method     string
		target     string
		body       string
		ctype      string
		deny       bool
		wantRules  []int // some of the rules that must match a denied request
	}{
		{name: "stock CRS refuses PUT", method: "PUT", target: "/api/items/7", body: `{"name":"widget"}`, deny: true, wantRules: []int{911100}},
		{name: "web refuses PUT", profile: ProfileWeb, method: "PUT", target: "/api/items/7", body: `{"name":"widget"}`, deny: true, wantRules: []int{911100}},
		{name: "api allows PUT", profile: ProfileAPI, method: "PUT", target: "/api/items/7", body: `{"name":"widget"}`},
		{name: "api allows PATCH", profile: ProfileAPI, method: "PATCH", target: "/api/items/7", body: `{"name":"widget"}`},
		{name: "api allows DELETE", profile: ProfileAPI, method: "DELETE", target: "/api/items/7"},
		{name: "api still refuses an unknown method", profile: ProfileAPI, method: "PROPFIND", target: "/api/items/7", deny: true, wantRules: []int{911100}},
		{name: "stock CRS refuses merge-patch+json", method: "POST", target: "/api/items/7", body: `{"name":"widget"}`, ctype: "application/merge-patch+json", deny: true, wantRules: []int{920420}},
		{name: "api allows merge-patch+json", profile: ProfileAPI, method: "PATCH", target: "/api/items/7", body: `{"name":"widget"}`, ctype: "application/merge-patch+json"},
		{name: "api still refuses a type off its list", profile: ProfileAPI, method: "POST", target: "/api/items", body: `{"name":"widget"}`, ctype: "application/x-foo+json", deny: true, wantRules: []int{920420}},
		{name: "api refuses .env", profile: ProfileAPI, method: "GET", target: "/config/app.env", deny: true, wantRules: []int{920440}},
		{name: "api parses +json bodies: SQLi in merge-patch+json", profile: ProfileAPI, method: "PATCH", target: "/api/items/7", body: `{"name":"1' UNION SELECT password FROM users--"}`, ctype: "application/merge-patch+json", deny: true, wantRules: []int{942100}},

		{name: "api refuses a GraphQL document", profile: ProfileAPI, method: "POST", target: "/graphql", body: `{"query":"` + graphqlDoc + `","variables":{"input":{"subjectId":"I_1","body":"LGTM"}}}`, deny: true, wantRules: []int{942290}},
		{name: "graphql allows a GraphQL document", profile: ProfileGraphQL, method: "POST", target: "/graphql", body: `{"query":"` + graphqlDoc + `","variables":{"input":{"subjectId":"I_1","body":"LGTM"}}}`},
		{name: "graphql: SQLi in a variable", profile: ProfileGraphQL, method: "POST", target: "/graphql", body: `{"query":"` + graphqlDoc + `","variables":{"input":{"subjectId":"1' OR '1'='1' --","body":"LGTM"}}}`, deny: true, wantRules: []int{942100}},
		{name: "graphql: XSS in the document", profile: ProfileGraphQL, method: "POST", target: "/graphql", body: `{"query":"query { search(q: \"<script>alert(1)</script>\") { id } }"}`, deny: true, wantRules: []int{941100}},
		{name: "graphql: SQLi tautology in the document", profile: ProfileGraphQL, method: "POST", target: "/graphql", body: `{"query":"query { user(name: \"x' OR 1=1 UNION SELECT password FROM users --\") { id } }"}`, deny: true},
		{name: "graphql: the exclusion is json.query only", profile: ProfileGraphQL, method: "POST", target: "/graphql", body: `{"q":"` + graphqlDoc + `"}`, deny: true, wantRules: []int{942290}},
		{name: "graphql: not a nested query key", profile: ProfileGraphQL, method: "POST", target: "/graphql", body: `{"batch":{"query":"` + graphqlDoc + `"}}`, deny: true, wantRules: []int{942290}},

		{name: "markdown in an undeclared field", profile: ProfileAPI, method: "POST", target: "/api/notes", body: `{"note":"` + markdownNote + `"}`, deny: true, wantRules: []int{932235}},
		{name: "markdown in a declared text field", profile: ProfileAPI, textFields: note, method: "POST", target: "/api/notes", body: `{"note":"` + markdownNote + `"}`},
		{name: "text fields work without a profile", textFields: note, method: "POST", target: "/api/notes", body: `{"note":"` + markdownNote + `"}`},
		{name: "XSS in a declared text field", profile: ProfileAPI, textFields: note, method: "POST", target: "/api/notes", body: `{"note":"nice <script>alert(document.cookie)</script>"}`, deny: true, wantRules: []int{941100}},
		{name: "XSS event handler in a declared text field", profile: ProfileAPI, textFields: note, method: "POST", target: "/api/notes", body: `{"note":"<img src=x onerror=alert(1)>"}`, deny: true},
		{name: "SQLi in a declared text field", profile: ProfileAPI, textFields: note, method: "POST", target: "/api/notes", body: `{"note":"1' UNION SELECT password FROM users--"}`, deny: true, wantRules: []int{942100}},
		{name: "path traversal in a declared text field", profile: ProfileAPI, textFields: note, method: "POST", target: "/api/notes", body: `{"note":"../../../../etc/passwd"}`, deny: true, wantRules: []int{930100}},
		{name: "command injection beside a markdown field", profile: ProfileAPI, textFields: note, method: "POST", target: "/api/notes", body: `{"note":"` + markdownNote + `","title":"x; cat /etc/passwd"}`, deny: true, wantRules: []int{932160}},
		{name: "same key deeper is not declared", profile: ProfileAPI, textFields: note, method: "POST", target: "/api/notes", body: `{"items":[{"note":"` + markdownNote + `"}]}`, deny: true, wantRules: []int{932235}},
		{name: "a longer key is not declared", profile: ProfileAPI, textFields: note, method: "POST", target: "/api/notes", body: `{"notes":"` + markdownNote + `"}`, deny: true, wantRules: []int{932235}},
		{name: "declared JSON field does not cover the query string", profile: ProfileAPI, textFields: note, method: "GET", target: "/api/notes?note=x%3B+cat+%2Fetc%2Fpasswd", deny: true, wantRules: []int{932160}},
	}
	filtersByCfg := map[string]*Filter{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := string(tc.profile) + "|" + strings.Join(tc.textFields, ",")
			f := filtersByCfg[key]
			if f == nil {
				f = newTestFilter(t, Config{Profile: tc.profile, TextFields: tc.textFields})
				filtersByCfg[key] = f
			}
			hdr := map[string]string{"User-Agent": "api-client/1.0", "Accept": "application/json"}
			if tc.body != "" {
				hdr["Content-Type"] = "application/json"
				if tc.ctype != "" {
					hdr["Content-Type"] = tc.ctype
				}
			}
			r := newRequest(tc.method, tc.target, tc.body, hdr)
			v := f.Check(r)
			defer r.Finish()
			if v.Deny != tc.deny {
				t.Fatalf("Deny = %v, want %v (rules %v, reason %q)", v.Deny, tc.deny, v.RuleIDs, v.Reason)
			}
			if tc.deny && v.StatusCode() != http.StatusForbidden {
				t.Errorf("status %d, want 403", v.StatusCode())
			}
			for _, id := range tc.wantRules {
				if !slices.Contains(v.RuleIDs, id) {
					t.Errorf("RuleIDs %v lack %d", v.RuleIDs, id)
				}
			}
		})
	}
}
