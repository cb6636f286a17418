package waf

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"
	"github.com/goccy/go-yaml"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/ftw"
)

// TestTuneGroups: events are grouped by rule and variable, routes are
// counted, scoring rules and keyless variables get no exclusion, and the
// pack holds one SecRuleUpdateTargetById per rule and variable.
func TestTuneGroups(t *testing.T) {
	events := `{"uri":"/graphql?x=1","rules":[{"id":942100,"msg":"SQLi","vars":["ARGS:json.query"]},{"id":949110,"msg":"score","vars":["TX:blocking_inbound_anomaly_score"]}],"request":"UE9TVCAvZ3JhcGhxbCBIVFRQLzEuMQ0KDQo="}
{"uri":"/api/v2/graphql","method":"PATCH","rules":[{"id":942100,"msg":"SQLi","vars":["ARGS:json.query"]},{"id":911100,"msg":"Method","vars":["REQUEST_METHOD"]}]}
{"uri":"/x","method":"PUT\" x","rules":[{"id":911100,"msg":"Method","vars":["REQUEST_METHOD"]}]}

{"uri":"/notes/7","rules":[{"id":932100,"msg":"RCE","vars":["ARGS:json.note","ARGS:json a"]}]}
`
	sum, err := Tune(strings.NewReader(events), TuneOptions{Name: "tuned", Routes: []string{"/api"}})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Events != 4 || len(sum.Exclusions) != 2 || len(sum.Refused) != 2 || len(sum.Methods) != 1 || sum.Methods[0] != "PATCH" {
		t.Fatalf("summary %+v", sum)
	}
	if c := sum.config("tuned"); !strings.Contains(c, "setvar:'tx.allowed_methods=GET HEAD POST OPTIONS PATCH'") {
		t.Fatalf("config:\n%s", c)
	}
	for _, r := range sum.Refused {
		switch {
		case r.RuleID == 911100 && r.Var == "REQUEST_METHOD" && strings.Contains(r.Why, "no key"):
		case r.RuleID == 932100 && r.Var == "ARGS:json a" && strings.Contains(r.Why, "cannot name"):
		default:
			t.Errorf("refused %+v", r)
		}
	}
	e := sum.Exclusions[1]
	if e.RuleID != 942100 || e.Var != "ARGS:json.query" || e.Routes["/graphql"] != 1 || e.Routes["/api"] != 1 || len(e.samples) != 1 {
		t.Fatalf("exclusion %+v", e)
	}
	rules := sum.rules()
	if strings.Count(rules, "SecRuleUpdateTargetById") != 2 || !strings.Contains(rules, `SecRuleUpdateTargetById 942100 "!ARGS:json.query"`) ||
		strings.Contains(rules, "ruleRemoveById") || strings.Contains(rules, "SecRuleRemove") {
		t.Fatalf("rules:\n%s", rules)
	}
	if _, err := Tune(strings.NewReader("{not json\n"), TuneOptions{}); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("bad event: %v", err)
	}
}

// TestTuneEndToEnd: shadow-run the benign corpus with request samples,
// tune, load the pack: the corpus passes, the pack's own tests pass, and
// every CRS regression input that paranoia 1 blocks without the pack is
// still blocked with it.
func TestTuneEndToEnd(t *testing.T) {
	if testing.Short() || raceDetector {
		t.Skip("tune end to end: runs CRS over the corpus and the CRS regression inputs")
	}
	dir := t.TempDir()
	audit := filepath.Join(dir, "audit.jsonl")
	corpus := append(corpusStages(t, "testdata/benign/benign.yaml"), apiFalsePositives()...)

	shadow := serveStage(t, Config{Mode: filters.ModeShadow, Audit: audit, AuditRequests: true})
	for _, st := range corpus {
		shadow.srv.run(st)
	}
	shadow.close()

	src, err := os.Open(audit)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	opt := TuneOptions{Name: "tuned"}
	sum, err := Tune(src, opt)
	if err != nil {
		t.Fatal(err)
	}
	pack := filepath.Join(dir, "tuned")
	if err := sum.WritePack(pack, opt); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", sum.Text())

	tuned := serveStage(t, Config{Packs: []string{pack}})
	defer tuned.close()
	for i, st := range corpus {
		if res := tuned.srv.run(st); res.status == 403 {
			t.Errorf("corpus request %d still blocked with the tuned pack: rules %v", i+1, res.ids)
		}
	}
	// The pack's own tests, through the stage that loads it: what
	// `edgeguard rules test` runs (filters/waf/packtest).
	if passed := tuned.srv.packTests(t, pack); passed == 0 {
		t.Fatal("the tuned pack has no tests")
	}

	stock := serveStage(t, Config{})
	defer stock.close()
	var attacks, blocked, methods int
	for name, st := range crsAttackStages(t) {
		attacks++
		if stock.srv.run(st).status != 403 {
			continue
		}
		blocked++
		// A test of the method allow-list alone, for a method the corpus
		// uses, is the one input the pack means to let through.
		if ids := st.Output.Log.ExpectIDs; len(ids) == 1 && ids[0] == methodRuleID && st.Input.Method != nil && slices.Contains(sum.Methods, *st.Input.Method) {
			methods++
			continue
		}
		if res := tuned.srv.run(st); res.status != 403 {
			t.Errorf("%s: blocked at paranoia 1 without the tuned pack, status %d with it", name, res.status)
		}
	}
	t.Logf("%d CRS attack inputs, %d blocked at paranoia 1, all still blocked with the tuned pack but %d method-policy tests of methods the corpus uses (%v)",
		attacks, blocked, methods, sum.Methods)

	// Each exclusion is as narrow as it says: an attack in the excluded
	// variable is still blocked by the rules that still read it.
	for _, e := range sum.Exclusions {
		field, ok := strings.CutPrefix(e.Var, "ARGS:json.")
		if !ok {
			continue
		}
		for _, attack := range []string{"<script>alert(document.cookie)</script>", "1' UNION SELECT password FROM users--"} {
			method, uri, data := "POST", "/api/check", fmt.Sprintf(`{%q:%q}`, field, attack)
			st := ftwStage{Input: ftwInput{Method: &method, URI: &uri, Data: &data, Headers: yaml.MapSlice{
				{Key: "Host", Value: "api.example.com"}, {Key: "User-Agent", Value: "client/1.0"},
				{Key: "Accept", Value: "application/json"}, {Key: "Content-Type", Value: "application/json"},
			}}}
			if res := tuned.srv.run(st); res.status != 403 {
				t.Errorf("%q in %s passes the tuned pack (status %d)", attack, e.Var, res.status)
			}
		}
	}
}

// apiFalsePositives are benign API requests stock CRS blocks at paranoia 1
// (issue 13): a GraphQL query, a URL inside a JSON value, a shell command
// in a markdown field.
func apiFalsePositives() []ftwStage {
	bodies := []struct{ uri, body string }{
		{"/graphql", `{"query":"query Orders($id: ID!) { order(id: $id) { id items { sku name } } }","variables":{"id":"42"}}`},
		{"/api/webhooks", `{"name":"dev","target":"http://localhost:3000/hooks/order"}`},
		{"/api/notes", `{"title":"deploy","note":"Run ` + "`" + `curl -s https://example.com/install.sh | sh` + "`" + ` then ` + "`" + `cat /etc/os-release` + "`" + `"}`},
	}
	var out []ftwStage
	for _, b := range bodies {
		method, uri, data := "POST", b.uri, b.body
		out = append(out, ftwStage{Input: ftwInput{Method: &method, URI: &uri, Data: &data, Headers: yaml.MapSlice{
			{Key: "Host", Value: "api.example.com"}, {Key: "User-Agent", Value: "client/1.0"},
			{Key: "Accept", Value: "application/json"}, {Key: "Content-Type", Value: "application/json"},
		}}})
	}
	return out
}

type servedStage struct {
	f   *Filter
	srv *ftwServer
}

func (s servedStage) close() {
	s.srv.close()
	s.f.Close()
}

func serveStage(t *testing.T, cfg Config) servedStage {
	t.Helper()
	f, err := New(cfg, filters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startFTWServer(f)
	if err != nil {
		t.Fatal(err)
	}
	return servedStage{f, srv}
}

// corpusStages are the stages of a corpus file, outputs emptied.
func corpusStages(t *testing.T, file string) []ftwStage {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ftw.Decode(file, src)
	if err != nil {
		t.Fatal(err)
	}
	var out []ftwStage
	for _, tc := range f.Tests {
		for _, st := range tc.Stages {
			out = append(out, ftwStage{Input: st.Input})
		}
	}
	return out
}

// crsAttackStages are CRS's regression stages that expect a rule to match.
func crsAttackStages(t *testing.T) map[string]ftwStage {
	t.Helper()
	out := map[string]ftwStage{}
	err := fs.WalkDir(crstests.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		src, err := fs.ReadFile(crstests.FS, p)
		if err != nil {
			return err
		}
		f, err := ftw.Decode(p, src)
		if err != nil {
			return err
		}
		for _, tc := range f.Tests {
			for i, st := range tc.Stages {
				if len(st.Output.Log.ExpectIDs) > 0 {
					out[fmt.Sprintf("%d-%d/%d", f.RuleID, tc.TestID, i)] = ftwStage{Input: st.Input, Output: ftwOutput{Log: ftwLog{ExpectIDs: st.Output.Log.ExpectIDs}}}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzTune: any audit input is refused with an error or yields a pack
// whose rules file holds nothing but comments and per-variable
// SecRuleUpdateTargetById lines of excludable variables, and whose config
// file sets nothing but CRS's method allow-list.
func FuzzTune(f *testing.F) {
	f.Add([]byte(`{"uri":"/graphql","method":"POST","rules":[{"id":942100,"msg":"m","vars":["ARGS:json.query"]}],"request":"R0VUIC8gSFRUUC8xLjENCg0K"}` + "\n"))
	f.Add([]byte(`{"uri":"/x","method":"PUT","rules":[{"id":911100,"vars":["REQUEST_METHOD"]}]}` + "\n\n" + `{"uri":"/y?a","rules":[{"id":932100,"vars":["ARGS:a b","REQUEST_HEADERS:x-y","XML:/*"]}]}`))
	f.Add([]byte(`{"uri":"/","method":"PUT\" setvar:x","rules":[{"id":911100,"msg":"\n SecRuleRemoveById 1","vars":["ARGS:\"!x"]}]}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		sum, err := Tune(bytes.NewReader(src), TuneOptions{Name: "t"})
		if err != nil {
			return
		}
		for _, line := range strings.Split(sum.rules(), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			var id int
			var v string
			if n, _ := fmt.Sscanf(line, "SecRuleUpdateTargetById %d %s", &id, &v); n != 2 || !tunable(id) ||
				unexcludable(strings.Trim(v, `"!`)) != "" || line != fmt.Sprintf(`SecRuleUpdateTargetById %d "!%s"`, id, strings.Trim(v, `"!`)) {
				t.Fatalf("rules line %q", line)
			}
		}
		for _, line := range strings.Split(sum.config("t"), "\n") {
			if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, `SecAction "id:9509001,phase:1,pass,nolog,t:none,ver:'t',setvar:'tx.allowed_methods=`) {
				t.Fatalf("config line %q", line)
			}
		}
		for _, m := range sum.Methods {
			if !methodToken.MatchString(m) {
				t.Fatalf("method %q", m)
			}
		}
	})
}
