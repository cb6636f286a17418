// Command gen writes the benign API corpus (../corpus/api.yaml): ordinary
// requests of the shapes public APIs document, in go-ftw's format, for the
// WAF quality report (filters/waf, TestQualityReport). Run from filters/waf:
//
//	go run ./testdata/benign/gen -o testdata/benign/corpus/api.yaml
//
// The shapes follow the request examples of public documentation: the
// GitHub REST API (issues, comments, pulls, contents, hooks, releases,
// search), the GitHub GraphQL API (queries and mutations with variables,
// fragments, aliases, directives), Stripe's API (form-encoded bodies with
// bracketed keys, metadata, expand[]), the JSON:API specification
// (include, sparse fieldsets, sort, page[], filter[], compound documents,
// relationship updates), the Swagger Petstore OpenAPI description (path,
// query, header and form parameters, multipart uploadImage), OAuth 2.0
// token requests (RFC 6749, RFC 7523 JWT bearer) and website forms. The
// values vary from a seeded generator, so the output is the same on every
// run. None of it comes from CRS's tests.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"
)

type request struct {
	desc    string
	method  string
	uri     string
	headers [][2]string
	body    string
}

type gen struct {
	rng *rand.Rand
	out []request
}

func (g *gen) pick(xs ...string) string { return xs[g.rng.IntN(len(xs))] }
func (g *gen) n(lo, hi int) int         { return lo + g.rng.IntN(hi-lo+1) }

func main() {
	out := flag.String("o", "", "output file (default stdout)")
	flag.Parse()
	g := &gen{rng: rand.New(rand.NewPCG(2026, 13))}
	for range 4 {
		g.githubREST()
		g.githubGraphQL()
		g.stripe()
		g.jsonAPI()
		g.petstore()
		g.oauthAndForms()
	}
	b := g.render()
	if *out == "" {
		os.Stdout.Write(b)
		return
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		log.Fatal(err)
	}
}

// Values of the kinds real payloads carry.
var (
	users  = []string{"octocat", "monalisa", "hubot", "mona-lisa", "kyoko-t", "jürgen_m", "fatima.z"}
	repos  = []string{"hello-world", "Spoon-Knife", "linguist", "docs", "edgeguard", "api-client.js"}
	emails = []string{"octocat@github.com", "jenny.rosen@example.com", "john@email.com", "kyoko+billing@example.co.jp", "j.mueller@beispiel.de", "support@example.org"}
	titles = []string{"Found a bug", "Login page returns 500 after upgrade", "Docs: typo in README", "Feature request: dark mode", "ログイン画面でエラーが発生します", "Fehler beim Hochladen von Dateien", "خطأ في صفحة الدفع", "Crash on startup 🚀", "Support for IPv6 addresses", "Update dependency lodash to v4.17.21"}
	names  = []string{"Jenny Rosen", "Monalisa Octocat", "John James", "山田 太郎", "Jürgen Müller", "Zoë Saldaña", "Ольга Петрова", "محمد علي"}
	// urls are what structured URL fields (webhook targets, image sources)
	// hold in production: public addresses. Loopback URLs appear in prose
	// (markdown) and as OAuth redirect URIs of native apps (RFC 8252).
	urls     = []string{"https://example.com/webhook", "https://api.example.com/v1/items?page=2", "https://docs.github.com/en/rest", "https://hooks.slack.com/services/T000/B000/XXXX", "https://example.com/images/productivity.png", "https://cdn.example.net/p/8f3a/dog@2x.jpg"}
	langs    = []string{"en-US,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8", "ja,en-US;q=0.7", "fr-FR,fr;q=0.9", "ar,en;q=0.5"}
	markdown = []string{
		"I'm having a problem with this.",
		"Steps to reproduce:\n\n1. Clone the repo\n2. Run `npm install && npm test`\n3. See the error\n\n```\nTypeError: Cannot read properties of undefined (reading 'map')\n    at render (src/app.js:42:17)\n```",
		"Me too! Running on **Ubuntu 24.04** with Go 1.26.\n\n> Expected: the build passes\n> Actual: it fails",
		"Fixed in #1347. Thanks @monalisa for the review :tada:",
		"To reproduce:\n\n```bash\ngit clone https://github.com/octocat/hello-world.git\ncd hello-world\nmake build\n./bin/server --port 8080\n```",
		"The query is slow:\n\n```sql\nSELECT id, title FROM issues WHERE repo_id = 42 ORDER BY created_at DESC LIMIT 30;\n```\n\nAn index on `(repo_id, created_at)` helps.",
		"Workaround until the fix ships:\n\n```python\nimport os\npath = os.path.join(os.getcwd(), 'config.yaml')\nwith open(path) as f:\n    print(f.read())\n```",
		"See https://docs.github.com/en/rest/issues and the [changelog](https://github.blog/changelog/).",
		"## Summary\n\n- adds `--dry-run`\n- documents the `EDGEGUARD_CONFIG` variable\n\n## Test plan\n\n`go test ./...` passes locally.",
		"Clear the cache with `rm -rf ~/.cache/go-build` and run `go clean -modcache`, then retry.",
		"Die Übersetzung ist fertig. Bitte prüfen: *Einstellungen → Konto → Sicherheit*.",
		"再現手順を追加しました。`curl -s http://localhost:3000/api/items | jq .` の出力を添付します。",
		"Contact me at octocat@github.com if you need the logs.",
		"The webhook posts to http://localhost:3000/hooks/github with `Content-Type: application/json`.",
		"Version bump: `1.4.2` → `1.5.0`. Breaking: `Client.Do(ctx, req)` now returns `(*Response, error)`.",
		"Run this in the console:\n\n```js\nconst res = await fetch('/api/items', { method: 'POST', body: JSON.stringify({ name: 'x' }) });\nconsole.log(await res.json());\n```",
		"LGTM 👍",
		"Can you rebase on `main`? There is a conflict in `go.sum`.",
	}
	jwts = []string{
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
		"eyJhbGciOiJSUzI1NiIsImtpZCI6IjFlOWdkazcifQ.eyJpc3MiOiJodHRwczovL3NlcnZlci5leGFtcGxlLmNvbSIsInN1YiI6IjI0ODI4OTc2MTAwMSIsImF1ZCI6InM2QmhkUmtxdDMiLCJleHAiOjEzMTEyODE5NzAsImlhdCI6MTMxMTI4MDk3MH0.ggW8hZ1EuVLuxNuuIJKX_V8a_OMXzR0EHR9R6jgdqrOOF4daGU96Sr_P6qJp6IcmD3HP99Obi1PRs",
	}
	agents = []string{"octokit-rest.js/20.0.2", "curl/8.5.0", "Stripe/v1 PythonBindings/7.1.0", "python-requests/2.32.3", "Go-http-client/2.0", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "PostmanRuntime/7.39.0", "okhttp/4.12.0"}
)

func (g *gen) add(desc, method, uri string, headers [][2]string, body string) {
	h := [][2]string{{"Host", "api.example.com"}, {"User-Agent", g.pick(agents...)}, {"Accept-Language", g.pick(langs...)}}
	h = append(h, headers...)
	g.out = append(g.out, request{desc: desc, method: method, uri: uri, headers: h, body: body})
}

func jsonOf(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		log.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func (g *gen) ghHeaders(body bool) [][2]string {
	h := [][2]string{{"Accept", "application/vnd.github+json"}, {"X-GitHub-Api-Version", "2022-11-28"},
		{"Authorization", "Bearer " + g.pick("ghp_16C7e42F292c6912E7710c838347Ae178B4a", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS")}}
	if body {
		h = append(h, [2]string{"Content-Type", "application/json"})
	}
	return h
}

// githubREST: the request examples of docs.github.com/en/rest.
func (g *gen) githubREST() {
	for range 6 {
		o, r := g.pick(users...), g.pick(repos...)
		base := "/repos/" + url.PathEscape(o) + "/" + r
		q := url.Values{"state": {g.pick("open", "closed", "all")}, "labels": {g.pick("bug,ui", "enhancement", "good first issue")}, "sort": {g.pick("created", "updated", "comments")}, "direction": {g.pick("asc", "desc")}, "per_page": {fmt.Sprint(g.n(10, 100))}, "page": {fmt.Sprint(g.n(1, 9))}}
		g.add("GitHub list issues", "GET", base+"/issues?"+q.Encode(), g.ghHeaders(false), "")
		n := g.n(1, 4000)
		g.add("GitHub get issue", "GET", fmt.Sprintf("%s/issues/%d", base, n), g.ghHeaders(false), "")
		g.add("GitHub create issue", "POST", base+"/issues", g.ghHeaders(true), jsonOf(map[string]any{"title": g.pick(titles...), "body": g.pick(markdown...), "assignees": []string{g.pick(users...)}, "milestone": g.n(1, 9), "labels": []string{g.pick("bug", "documentation", "help wanted")}}))
		g.add("GitHub update issue", "PATCH", fmt.Sprintf("%s/issues/%d", base, n), g.ghHeaders(true), jsonOf(map[string]any{"state": "closed", "state_reason": g.pick("completed", "not_planned")}))
		g.add("GitHub create comment", "POST", fmt.Sprintf("%s/issues/%d/comments", base, n), g.ghHeaders(true), jsonOf(map[string]any{"body": g.pick(markdown...)}))
		g.add("GitHub update comment", "PATCH", fmt.Sprintf("%s/issues/comments/%d", base, g.n(100000, 999999)), g.ghHeaders(true), jsonOf(map[string]any{"body": g.pick(markdown...)}))
		g.add("GitHub delete comment", "DELETE", fmt.Sprintf("%s/issues/comments/%d", base, g.n(100000, 999999)), g.ghHeaders(false), "")
		g.add("GitHub lock issue", "PUT", fmt.Sprintf("%s/issues/%d/lock", base, n), g.ghHeaders(true), jsonOf(map[string]any{"lock_reason": g.pick("off-topic", "too heated", "resolved", "spam")}))
		g.add("GitHub merge pull", "PUT", fmt.Sprintf("%s/pulls/%d/merge", base, n), g.ghHeaders(true), jsonOf(map[string]any{"commit_title": "Expand enum", "commit_message": "Add a new value to the merge_method enum", "merge_method": g.pick("merge", "squash", "rebase")}))
		g.add("GitHub create pull", "POST", base+"/pulls", g.ghHeaders(true), jsonOf(map[string]any{"title": "Amazing new feature", "body": g.pick(markdown...), "head": o + ":new-feature", "base": "main", "draft": g.rng.IntN(2) == 0}))
		content := base64.StdEncoding.EncodeToString([]byte(g.pick("my new file contents", "# Hello\n\nThis is a README.\n", "package main\n\nfunc main() {}\n", "{\n  \"name\": \"demo\",\n  \"version\": \"1.0.0\"\n}\n")))
		g.add("GitHub create file (base64 content)", "PUT", base+"/contents/"+g.pick("notes/hello.txt", "README.md", "docs/index.md", "cmd/main.go", "src/app.js", "package.json", "go.mod", "Dockerfile"), g.ghHeaders(true), jsonOf(map[string]any{"message": "my commit message", "committer": map[string]string{"name": g.pick(names...), "email": g.pick(emails...)}, "content": content}))
		g.add("GitHub create webhook", "POST", base+"/hooks", g.ghHeaders(true), jsonOf(map[string]any{"name": "web", "active": true, "events": []string{"push", "pull_request"}, "config": map[string]string{"url": g.pick(urls...), "content_type": "json", "insecure_ssl": "0"}}))
		g.add("GitHub create release", "POST", base+"/releases", g.ghHeaders(true), jsonOf(map[string]any{"tag_name": fmt.Sprintf("v1.%d.0", g.n(0, 20)), "target_commitish": "main", "name": fmt.Sprintf("v1.%d.0", g.n(0, 20)), "body": g.pick(markdown...), "draft": false, "prerelease": false, "generate_release_notes": false}))
		g.add("GitHub star", "PUT", "/user/starred/"+o+"/"+r, append(g.ghHeaders(false), [2]string{"Content-Length", "0"}), "")
		g.add("GitHub unstar", "DELETE", "/user/starred/"+o+"/"+r, g.ghHeaders(false), "")
		sq := url.Values{"q": {g.pick("windows label:bug language:python state:open", "addClass in:file language:js repo:jquery/jquery", "tetris language:assembly", "is:pr is:merged author:octocat")}, "sort": {g.pick("created", "stars", "updated")}, "order": {g.pick("asc", "desc")}}
		g.add("GitHub search", "GET", "/search/"+g.pick("issues", "code", "repositories")+"?"+sq.Encode(), g.ghHeaders(false), "")
		g.add("GitHub list commits", "GET", base+"/commits?"+url.Values{"since": {"2026-11-01T00:00:00Z"}, "author": {g.pick(emails...)}, "path": {g.pick("src/app.js", "README.md")}}.Encode(), g.ghHeaders(false), "")
	}
}

// githubGraphQL: the examples of docs.github.com/en/graphql (forming calls).
var gqlQueries = []struct{ query, vars string }{
	{"query($number_of_repos:Int!) {\n  viewer {\n    name\n    repositories(last: $number_of_repos) {\n      nodes {\n        name\n      }\n    }\n  }\n}", `{"number_of_repos": %d}`},
	{"query FindIssueID {\n  repository(owner:\"octocat\", name:\"Hello-World\") {\n    issue(number:%d) {\n      id\n    }\n  }\n}", ``},
	{"mutation AddReactionToIssue {\n  addReaction(input:{subjectId:\"MDU6SXNzdWUyMzEzOTE1NTE=\",content:HOORAY}) {\n    reaction {\n      content\n    }\n    subject {\n      id\n    }\n  }\n}", ``},
	{"query {\n  repository(owner:\"octocat\", name:\"Hello-World\") {\n    issues(last:%d, states:CLOSED) {\n      edges {\n        node {\n          title\n          url\n          labels(first:5) {\n            edges {\n              node {\n                name\n              }\n            }\n          }\n        }\n      }\n    }\n  }\n}", ``},
	{"query($owner: String!, $name: String!, $first: Int = 10, $after: String) {\n  repository(owner: $owner, name: $name) {\n    pullRequests(first: $first, after: $after, orderBy: {field: CREATED_AT, direction: DESC}) {\n      pageInfo { hasNextPage endCursor }\n      nodes { number title author { login } }\n    }\n  }\n}", `{"owner": "octocat", "name": "Hello-World", "first": %d, "after": "Y3Vyc29yOnYyOpHOAAGz"}`},
	{"mutation AddComment($input: AddCommentInput!) {\n  addComment(input: $input) {\n    commentEdge { node { id body url } }\n  }\n}", `{"input": {"subjectId": "I_kwDOAbc%d", "body": %m}}`},
	{"fragment userFields on User {\n  login\n  name\n  avatarUrl(size: 64)\n}\n\nquery($login: String!, $withRepos: Boolean!) {\n  user(login: $login) {\n    ...userFields\n    repositories(first: 5) @include(if: $withRepos) {\n      totalCount\n    }\n  }\n}", `{"login": %u, "withRepos": true}`},
	{"query {\n  viewer { login }\n  rateLimit { limit cost remaining resetAt }\n  octo: organization(login: \"github\") { name }\n  search(query: \"language:go stars:>%d\", type: REPOSITORY, first: 3) {\n    nodes { ... on Repository { nameWithOwner stargazerCount } }\n  }\n}", ``},
	{"mutation($input: CreateIssueInput!) {\n  createIssue(input: $input) {\n    issue { number url }\n  }\n}", `{"input": {"repositoryId": "R_kgDOH%d", "title": %t, "body": %m}}`},
	{"query IntrospectionLite {\n  __schema {\n    queryType { name }\n    types { name kind }\n  }\n}", ``},
	{"query($id: ID!) {\n  node(id: $id) {\n    __typename\n    ... on Issue { title state closedAt }\n    ... on PullRequest { title mergedAt }\n  }\n}", `{"id": "MDU6SXNzdWU%d"}`},
	{"mutation UpdateProjectItem($project: ID!, $item: ID!, $field: ID!, $value: String!) {\n  updateProjectV2ItemFieldValue(input: {projectId: $project, itemId: $item, fieldId: $field, value: {text: $value}}) {\n    projectV2Item { id }\n  }\n}", `{"project": "PVT_kwDO%d", "item": "PVTI_lADO", "field": "PVTF_lADO", "value": %m}`},
}

func (g *gen) githubGraphQL() {
	for range 5 {
		for _, q := range gqlQueries {
			query := q.query
			if strings.Count(query, "%d") == 1 {
				query = fmt.Sprintf(query, g.n(1, 500))
			}
			doc := map[string]any{"query": query}
			if q.vars != "" {
				var vars any
				if err := json.Unmarshal([]byte(g.fill(q.vars)), &vars); err != nil {
					log.Fatalf("variables %s: %v", q.vars, err)
				}
				doc["variables"] = vars
			}
			if strings.HasPrefix(query, "query") && g.rng.IntN(3) == 0 {
				doc["operationName"] = nil
			}
			g.add("GitHub GraphQL", "POST", "/graphql", [][2]string{{"Authorization", "bearer " + g.pick("ghp_16C7e42F292c6912E7710c838347Ae178B4a", jwts[0])}, {"Content-Type", "application/json"}, {"Accept", "application/json"}}, jsonOf(doc))
		}
	}
}

// fill replaces the verbs of a variables template: %d with a number, %t
// with a title, %m with a markdown text, %u with a user name (the last
// three as JSON strings).
func (g *gen) fill(tmpl string) string {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '%' || i+1 == len(tmpl) {
			b.WriteByte(tmpl[i])
			continue
		}
		i++
		switch tmpl[i] {
		case 'd':
			fmt.Fprint(&b, g.n(1, 9999))
		case 't':
			b.WriteString(jsonOf(g.pick(titles...)))
		case 'm':
			b.WriteString(jsonOf(g.pick(markdown...)))
		case 'u':
			b.WriteString(jsonOf(g.pick(users...)))
		default:
			log.Fatalf("template %q: unknown verb %%%c", tmpl, tmpl[i])
		}
	}
	return b.String()
}

// stripe: docs.stripe.com/api request examples (form-encoded bodies).
func (g *gen) stripe() {
	auth := func(body bool) [][2]string {
		h := [][2]string{{"Authorization", "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc"}, {"Stripe-Version", "2024-06-20"}}
		if body {
			h = append(h, [2]string{"Content-Type", "application/x-www-form-urlencoded"}, [2]string{"Idempotency-Key", fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", g.rng.Uint32(), g.n(0, 0xffff), g.n(0, 0xfff), g.n(0, 0xfff), g.rng.Uint64()&0xffffffffffff)})
		}
		return h
	}
	for range 6 {
		cus := fmt.Sprintf("cus_NffrFeUf%04dHib", g.n(0, 9999))
		form := url.Values{"email": {g.pick(emails...)}, "name": {g.pick(names...)}, "description": {g.pick("Customer for "+g.pick(emails...), "VIP, ships to Berlin", "顧客メモ: 請求書は月末")}, "metadata[order_id]": {fmt.Sprint(g.n(1000, 9999))}, "preferred_locales[]": {g.pick("en", "de", "ja")}}
		g.add("Stripe create customer", "POST", "/v1/customers", auth(true), form.Encode())
		g.add("Stripe update customer", "POST", "/v1/customers/"+cus, auth(true), url.Values{"metadata[segment]": {g.pick("enterprise", "startup")}, "address[line1]": {g.pick("510 Townsend St", "Friedrichstraße 123", "1-2-3 Shibuya")}, "address[city]": {g.pick("San Francisco", "Berlin", "東京")}, "address[postal_code]": {fmt.Sprint(g.n(10000, 99999))}}.Encode())
		g.add("Stripe retrieve customer", "GET", "/v1/customers/"+cus+"?expand[]=default_source&expand[]=invoice_settings.default_payment_method", auth(false), "")
		g.add("Stripe delete customer", "DELETE", "/v1/customers/"+cus, auth(false), "")
		g.add("Stripe list charges", "GET", fmt.Sprintf("/v1/charges?limit=%d&created[gte]=%d&starting_after=ch_3MmlLrLkdIwHu7ix0snN0B15", g.n(3, 100), 1700000000+g.n(0, 9999999)), auth(false), "")
		g.add("Stripe payment intent", "POST", "/v1/payment_intents", auth(true), url.Values{"amount": {fmt.Sprint(g.n(100, 99999))}, "currency": {g.pick("usd", "eur", "jpy")}, "automatic_payment_methods[enabled]": {"true"}, "receipt_email": {g.pick(emails...)}, "statement_descriptor_suffix": {"ORDER 42"}}.Encode())
		g.add("Stripe checkout session", "POST", "/v1/checkout/sessions", auth(true), url.Values{"success_url": {"https://example.com/success?session_id={CHECKOUT_SESSION_ID}"}, "cancel_url": {"https://example.com/cancel"}, "line_items[0][price]": {"price_1MotwRLkdIwHu7ixYcPLm5uZ"}, "line_items[0][quantity]": {fmt.Sprint(g.n(1, 5))}, "mode": {g.pick("payment", "subscription")}, "customer_email": {g.pick(emails...)}}.Encode())
		g.add("Stripe search", "GET", "/v1/customers/search?"+url.Values{"query": {g.pick("email:'jenny.rosen@example.com'", "name:'Jane Doe' AND metadata['foo']:'bar'", "created>1692980000")}}.Encode(), auth(false), "")
	}
}

// jsonAPI: the examples of jsonapi.org/format.
func (g *gen) jsonAPI() {
	h := func(body bool) [][2]string {
		x := [][2]string{{"Accept", "application/vnd.api+json"}, {"Authorization", "Bearer " + g.pick(jwts...)}}
		if body {
			x = append(x, [2]string{"Content-Type", "application/vnd.api+json"})
		}
		return x
	}
	for range 7 {
		id := fmt.Sprint(g.n(1, 999))
		g.add("JSON:API include and fields", "GET", "/articles?include=author,comments.author&fields[articles]=title,body,author&fields[people]=name", h(false), "")
		g.add("JSON:API sort and page", "GET", fmt.Sprintf("/articles?sort=%s&page[number]=%d&page[size]=%d", g.pick("-created,title", "title", "-updated"), g.n(1, 20), g.n(5, 50)), h(false), "")
		g.add("JSON:API filter", "GET", fmt.Sprintf("/comments?filter[post]=%s&filter[author]=%d", g.pick("1,2", "42"), g.n(1, 99)), h(false), "")
		g.add("JSON:API create photo", "POST", "/photos", h(true), jsonOf(map[string]any{"data": map[string]any{"type": "photos", "attributes": map[string]any{"title": g.pick("Ember Hamster", "Sonnenuntergang über Hamburg", "富士山"), "src": g.pick(urls...)}, "relationships": map[string]any{"photographer": map[string]any{"data": map[string]string{"type": "people", "id": "9"}}}}}))
		g.add("JSON:API update article", "PATCH", "/articles/"+id, h(true), jsonOf(map[string]any{"data": map[string]any{"type": "articles", "id": id, "attributes": map[string]any{"title": g.pick("To TDD or Not", "JSON:API paints my bikeshed!"), "body": g.pick(markdown...)}}}))
		g.add("JSON:API update relationship", "PATCH", "/articles/"+id+"/relationships/tags", h(true), jsonOf(map[string]any{"data": []map[string]string{{"type": "tags", "id": "2"}, {"type": "tags", "id": "3"}}}))
		g.add("JSON:API add to relationship", "POST", "/articles/"+id+"/relationships/comments", h(true), jsonOf(map[string]any{"data": []map[string]string{{"type": "comments", "id": fmt.Sprint(g.n(1, 999))}}}))
		g.add("JSON:API delete", "DELETE", "/photos/"+id, h(false), "")
		g.add("JSON:API remove from relationship", "DELETE", "/articles/"+id+"/relationships/comments", h(true), jsonOf(map[string]any{"data": []map[string]string{{"type": "comments", "id": "12"}}}))
	}
}

// petstore: the Swagger Petstore OpenAPI description (petstore3.swagger.io).
func (g *gen) petstore() {
	h := func(ct string) [][2]string {
		x := [][2]string{{"Accept", "application/json"}, {"api_key", "special-key"}}
		if ct != "" {
			x = append(x, [2]string{"Content-Type", ct})
		}
		return x
	}
	for range 6 {
		id := g.n(1, 99999)
		pet := map[string]any{"id": id, "name": g.pick("doggie", "Bello", "ポチ", "Mimi"), "category": map[string]any{"id": 1, "name": g.pick("Dogs", "Cats")}, "photoUrls": []string{g.pick(urls...)}, "tags": []map[string]any{{"id": 0, "name": g.pick("friendly", "vaccinated")}}, "status": g.pick("available", "pending", "sold")}
		g.add("Petstore findByStatus", "GET", "/api/v3/pet/findByStatus?status="+g.pick("available", "pending", "sold"), h(""), "")
		g.add("Petstore findByTags", "GET", "/api/v3/pet/findByTags?tags=tag1&tags=tag2&tags="+g.pick("friendly", "vaccinated"), h(""), "")
		g.add("Petstore add pet", "POST", "/api/v3/pet", h("application/json"), jsonOf(pet))
		g.add("Petstore update pet", "PUT", "/api/v3/pet", h("application/json"), jsonOf(pet))
		g.add("Petstore update pet with form", "POST", fmt.Sprintf("/api/v3/pet/%d?name=%s&status=sold", id, url.QueryEscape(g.pick("doggie", "Bello"))), h(""), "")
		g.add("Petstore delete pet", "DELETE", fmt.Sprintf("/api/v3/pet/%d", id), h(""), "")
		g.add("Petstore order", "POST", "/api/v3/store/order", h("application/json"), jsonOf(map[string]any{"id": 10, "petId": id, "quantity": g.n(1, 9), "shipDate": "2026-11-30T10:00:00.000Z", "status": "approved", "complete": true}))
		g.add("Petstore login", "GET", "/api/v3/user/login?username="+g.pick("theUser", "user1")+"&password=12345", h(""), "")
		g.add("Petstore create users", "POST", "/api/v3/user/createWithList", h("application/json"), jsonOf([]map[string]any{{"id": 10, "username": "theUser", "firstName": "John", "lastName": "James", "email": g.pick(emails...), "password": "12345", "phone": "12345", "userStatus": 1}}))
		g.add("Petstore get user", "GET", "/api/v3/user/"+g.pick("theUser", "user1"), h(""), "")
		b := fmt.Sprintf("b%016x", g.rng.Uint64())
		// Image bytes stand in as printable text: the corpus is YAML.
		img := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("JFIF-%d-%x", id, g.rng.Uint64())))
		body := "--" + b + "\r\nContent-Disposition: form-data; name=\"additionalMetadata\"\r\n\r\n" + g.pick("front view", "Foto vom Tierarzt", "写真") + "\r\n--" + b +
			"\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + g.pick("dog.jpg", "IMG_2041.jpeg") + "\"\r\nContent-Type: image/jpeg\r\n\r\n" + img + "\r\n--" + b + "--\r\n"
		g.add("Petstore uploadImage (multipart)", "POST", fmt.Sprintf("/api/v3/pet/%d/uploadImage", id), h("multipart/form-data; boundary="+b), body)
	}
}

// oauthAndForms: OAuth 2.0 token requests (RFC 6749 4.1.3 and 4.4, RFC
// 7523 2.1) and ordinary website forms.
func (g *gen) oauthAndForms() {
	form := [][2]string{{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}}
	for range 6 {
		g.add("OAuth authorization_code", "POST", "/oauth/token", append(form, [2]string{"Authorization", "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW"}), url.Values{"grant_type": {"authorization_code"}, "code": {"SplxlOBeZQQYbYS6WxSbIA"}, "redirect_uri": {g.pick("https://client.example.com/cb", "https://app.example.com/auth/callback", "https://www.example.org/oauth/callback", "com.example.app:/oauth2redirect/example-provider", "http://127.0.0.1:51004/oauth2redirect/example-provider")}}.Encode())
		g.add("OAuth client_credentials", "POST", "/oauth/token", form, url.Values{"grant_type": {"client_credentials"}, "scope": {g.pick("read:org repo", "payments:write")}, "client_id": {"s6BhdRkqt3"}, "client_secret": {"7Fjfp0ZBr1KtDRbnfVdmIw"}}.Encode())
		g.add("OAuth JWT bearer", "POST", "/oauth/token", form, url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {g.pick(jwts...)}}.Encode())
		g.add("Login form", "POST", "/login", form, url.Values{"email": {g.pick(emails...)}, "password": {g.pick("correct horse battery staple", "Pa$$w0rd!2026", "hunter2")}, "remember_me": {"on"}, "next": {"/account/orders"}}.Encode())
		g.add("Contact form", "POST", "/contact", form, url.Values{"name": {g.pick(names...)}, "email": {g.pick(emails...)}, "subject": {g.pick(titles...)}, "message": {g.pick("Hello, I ordered on Monday and have not received a confirmation. Order 4711.", "Guten Tag, können Sie nach Österreich liefern?", "注文番号 1234 の配送状況を教えてください。", "Is there a discount for students? My university e-mail is a.student@uni.example.edu")}}.Encode())
		g.add("Newsletter form", "POST", "/newsletter", form, url.Values{"email": {g.pick(emails...)}, "lists[]": {"product", "events"}}.Encode())
		g.add("Search page", "GET", "/search?"+url.Values{"q": {g.pick("wireless headphones", "O'Reilly books", "c++ primer", "50% off", "size 10 & wide", "café au lait", "how to use select in html")}, "page": {fmt.Sprint(g.n(1, 5))}}.Encode(), [][2]string{{"Accept", "text/html"}}, "")
		g.add("Preflight", "OPTIONS", "/api/v1/items", [][2]string{{"Origin", "https://app.example.com"}, {"Access-Control-Request-Method", g.pick("PUT", "DELETE", "PATCH")}, {"Access-Control-Request-Headers", "authorization,content-type"}}, "")
		g.add("HEAD check", "HEAD", "/api/v1/items/"+fmt.Sprint(g.n(1, 999)), [][2]string{{"Accept", "application/json"}}, "")
	}
}

func (g *gen) render() []byte {
	type input struct {
		Method  string        `yaml:"method"`
		URI     string        `yaml:"uri"`
		Headers yaml.MapSlice `yaml:"headers"`
		Data    *string       `yaml:"data,omitempty"`
	}
	type stage struct {
		Input  input          `yaml:"input"`
		Output map[string]any `yaml:"output"`
	}
	type test struct {
		TestID int     `yaml:"test_id"`
		Desc   string  `yaml:"desc"`
		Stages []stage `yaml:"stages"`
	}
	var tests []test
	for i, r := range g.out {
		in := input{Method: r.method, URI: r.uri}
		for _, h := range r.headers {
			in.Headers = append(in.Headers, yaml.MapItem{Key: h[0], Value: h[1]})
		}
		if r.body != "" {
			b := r.body
			in.Data = &b
		}
		tests = append(tests, test{TestID: i + 1, Desc: r.desc + ": " + r.method + " " + strings.SplitN(r.uri, "?", 2)[0], Stages: []stage{{Input: in, Output: map[string]any{}}}})
	}
	b, err := yaml.MarshalWithOptions(map[string]any{"rule_id": 0, "tests": tests}, yaml.UseLiteralStyleIfMultiline(true))
	if err != nil {
		log.Fatal(err)
	}
	counts := map[string]int{}
	for _, r := range g.out {
		counts[r.method]++
	}
	var ms []string
	for m, c := range counts {
		ms = append(ms, fmt.Sprintf("%s %d", m, c))
	}
	sort.Strings(ms)
	head := fmt.Sprintf("# Benign API corpus: %d requests (%s).\n# Generated by testdata/benign/gen (see its doc comment for the sources); do not edit.\n", len(g.out), strings.Join(ms, ", "))
	return append([]byte(head), b...)
}
