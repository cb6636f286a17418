package waf

import (
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	txhttp "github.com/corazawaf/coraza/v3/http"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/ftw"
)

// The quality report: for stock CRS and each profile, how many of CRS's
// own regression attack inputs are blocked (by the paranoia level of the
// rule the test expects) and how many benign requests are (false
// positives), through edgeguard and through plain Coraza with the same
// CRS and the same profile files. Run it with
//
//	go test -count=1 -run TestQualityReport -v ./filters/waf/
//
// Plain Coraza runs in a child process (this test binary re-executed by
// startChild, as in the differential test), because edgeguard's
// operators, once registered, would serve every WAF of the process.

// corpusTextFields are the free-text fields of the benign corpus's
// payloads, declared as an operator of those APIs would declare them.
var corpusTextFields = []string{"json.body", "json.variables.input.body", "json.variables.value", "json.data.attributes.body", "message"}

type qualityCase struct {
	name string
	cfg  Config
}

func qualityCases() []qualityCase {
	tf := corpusTextFields
	return []qualityCase{
		{"stock CRS", Config{}},
		{"web", Config{Profile: ProfileWeb, TextFields: tf}},
		{"api", Config{Profile: ProfileAPI, TextFields: tf}},
		{"graphql", Config{Profile: ProfileGraphQL, TextFields: tf}},
	}
}

// qualityInput is one request of the report.
type qualityInput struct {
	Name string `json:"name"`
	// Set is "attack" (a CRS regression input expecting a rule), or the
	// benign set: "rest" and "graphql" (the corpus), "mixed" (benign.yaml).
	Set string `json:"set"`
	// PL is the paranoia level of the rule an attack expects.
	PL  int    `json:"pl"`
	Raw []byte `json:"raw"`
}

// crsParanoia maps each CRS rule id to its paranoia level (its
// paranoia-level/N tag).
func crsParanoia(t *testing.T) map[int]int {
	t.Helper()
	out := map[int]int{}
	idRx, plRx := regexp.MustCompile(`id:(\d+)`), regexp.MustCompile(`paranoia-level/(\d)`)
	files, err := fs.Glob(coreruleset.FS, "@owasp_crs/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("listing CRS's rules: %v (%d files)", err, len(files))
	}
	for _, f := range files {
		src, err := fs.ReadFile(coreruleset.FS, f)
		if err != nil {
			t.Fatal(err)
		}
		// A rule starts at the beginning of a line; its chained links are indented.
		for _, r := range regexp.MustCompile(`\n(?:SecRule|SecAction)`).Split(string(src), -1) {
			id, pl := idRx.FindStringSubmatch(r), plRx.FindStringSubmatch(r)
			if id != nil && pl != nil {
				n, _ := strconv.Atoi(id[1])
				out[n], _ = strconv.Atoi(pl[1])
			}
		}
	}
	return out
}

// qualityInputs gathers the attack inputs of CRS's regression tests (each
// stage that expects a rule; the tests crsSkips names are left out) and
// the benign sets.
func qualityInputs(t *testing.T) []qualityInput {
	t.Helper()
	pls := crsParanoia(t)
	var out []qualityInput
	err := walkCRSFiles(func(_ string, file ftwFile) error {
		for _, tc := range file.Tests {
			name := fmt.Sprintf("%d-%d", file.RuleID, tc.TestID)
			if _, skip := crsSkips[name]; skip {
				continue
			}
			for i, st := range tc.Stages {
				ids := st.Output.Log.ExpectIDs
				if len(ids) == 0 {
					continue
				}
				pl := 4
				for _, id := range ids {
					if l, ok := pls[id]; ok && l < pl {
						pl = l
					} else if !ok {
						pl = 1 // the engine's own rules (200002: body does not parse)
					}
				}
				raw, err := st.Input.Request()
				if err != nil {
					return fmt.Errorf("%s stage %d: %w", name, i, err)
				}
				out = append(out, qualityInput{Name: fmt.Sprintf("%s/%d", name, i), Set: "attack", PL: pl, Raw: raw})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []struct{ file, set string }{{"testdata/benign/corpus/api.yaml", ""}, {"testdata/benign/benign.yaml", "mixed"}} {
		src, err := os.ReadFile(b.file)
		if err != nil {
			t.Fatal(err)
		}
		file, err := parseFTW(src)
		if err != nil {
			t.Fatalf("%s: %v", b.file, err)
		}
		for _, tc := range file.Tests {
			set := b.set
			if set == "" {
				set = "rest"
				if strings.HasPrefix(tc.Desc, "GitHub GraphQL") {
					set = "graphql"
				}
			}
			raw, err := tc.Stages[0].Input.Request()
			if err != nil {
				t.Fatalf("%s %d: %v", b.file, tc.TestID, err)
			}
			out = append(out, qualityInput{Name: fmt.Sprintf("%s %d (%s)", filepath.Base(b.file), tc.TestID, tc.Desc), Set: set, Raw: raw})
		}
	}
	return out
}

// blocked reports whether a status is a refusal: anything but the echo
// upstream's 200, including no response at all (a drop).
func blocked(status int) bool { return status != http.StatusOK }

// runEdgeguard sends every input through the stage built from cfg, in
// block mode at paranoia 1, and returns the statuses.
func runEdgeguard(t *testing.T, cfg Config, in []qualityInput) []int {
	t.Helper()
	f, err := New(cfg, filters.Env{Dir: "."})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	srv, err := startDiffServer(f)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	out := make([]int, len(in))
	for i, r := range in {
		out[i] = srv.run(r.Raw).Status
	}
	return out
}

// corazaDirectives is plain Coraza's own recommended configuration, CRS
// and the profile files, as a Coraza user would write them.
func corazaDirectives(cfg Config) (string, error) {
	before, after, err := profileDirectives(cfg.Profile, cfg.TextFields)
	if err != nil {
		return "", err
	}
	return "Include @coraza.conf-recommended\nSecRuleEngine On\nSecResponseBodyAccess Off\nInclude @crs-setup.conf.example\n" +
		before + "\nInclude @owasp_crs/*.conf\n" + after, nil
}

// runCoraza does what runEdgeguard does through Coraza's own net/http
// middleware.
func runCoraza(cfg Config, in []qualityInput) ([]int, error) {
	d, err := corazaDirectives(cfg)
	if err != nil {
		return nil, err
	}
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).WithDirectives(d))
	if err != nil {
		return nil, fmt.Errorf("plain Coraza: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: txhttp.WrapHandler(w, http.HandlerFunc(ftw.Echo)), ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	out := make([]int, len(in))
	for i, r := range in {
		out[i] = ftw.Exchange(ln.Addr().String(), r.Raw, ftw.IOTimeout).Status
	}
	return out, nil
}

// TestQualityCorazaChild is the plain-Coraza side of TestQualityReport; run
// on its own it skips.
func TestQualityCorazaChild(t *testing.T) {
	var in []qualityInput
	childInput(t, "the plain-Coraza side of TestQualityReport: runs only as its child", &in)
	out := map[string][]int{}
	for _, c := range qualityCases() {
		var err error
		if out[c.name], err = runCoraza(c.cfg, in); err != nil {
			t.Fatal(err)
		}
	}
	if pluginsRegistered.Load() {
		t.Fatal("the plain-Coraza side registered edgeguard's operators or transformations")
	}
	childOutput(t, out)
}

// qualityRow counts one configuration's outcomes: blocked of total per
// attack paranoia level and per benign set.
type qualityRow struct {
	attack [5][2]int // [pl]{blocked, total}
	benign map[string][2]int
}

func tally(in []qualityInput, statuses []int) qualityRow {
	row := qualityRow{benign: map[string][2]int{}}
	for i, r := range in {
		b := 0
		if blocked(statuses[i]) {
			b = 1
		}
		if r.Set == "attack" {
			row.attack[r.PL][0] += b
			row.attack[r.PL][1]++
			continue
		}
		c := row.benign[r.Set]
		row.benign[r.Set] = [2]int{c[0] + b, c[1] + 1}
	}
	return row
}

func (q qualityRow) cells() []string {
	var out []string
	for pl := 1; pl <= 4; pl++ {
		a := q.attack[pl]
		out = append(out, fmt.Sprintf("%d/%d", a[0], a[1]))
	}
	for _, set := range []string{"rest", "graphql", "mixed"} {
		c := q.benign[set]
		out = append(out, fmt.Sprintf("%d/%d (%.1f %%)", c[0], c[1], 100*float64(c[0])/float64(max(c[1], 1))))
	}
	return out
}

// TestQualityReport prints the quality table (-v) and holds the profiles
// to the acceptance bar: every paranoia-1 attack input that stock CRS
// blocks is still blocked under every profile, and at most 1 % of the
// benign API corpus is blocked with api (REST requests) and graphql (REST
// and GraphQL requests). Not in -short or -race (minutes).
func TestQualityReport(t *testing.T) {
	if testing.Short() || raceDetector {
		t.Skip("quality report: not in -short or -race")
	}
	if inChild() {
		t.Skip("in a child")
	}
	in := qualityInputs(t)
	wait := startChild(t, "TestQualityCorazaChild", in)
	eg := map[string][]int{}
	for _, c := range qualityCases() {
		eg[c.name] = runEdgeguard(t, c.cfg, in)
	}
	var cz map[string][]int
	wait(&cz)
	var table strings.Builder
	table.WriteString("| engine | config | attacks PL1 | PL2 | PL3 | PL4 | FP REST | FP GraphQL | FP mixed |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, eng := range []struct {
		name string
		res  map[string][]int
	}{{"edgeguard", eg}, {"Coraza", cz}} {
		for _, c := range qualityCases() {
			fmt.Fprintf(&table, "| %s | %s | %s |\n", eng.name, c.name, strings.Join(tally(in, eng.res[c.name]).cells(), " | "))
		}
	}
	t.Logf("blocked of total, paranoia 1, inbound threshold 5:\n%s", table.String())
	checkQuality(t, in, eg)
}

// policyInputs are CRS regression inputs that pass under a profile on
// purpose, by profile, each with the reason: they test a default the
// profile changes, or put their payload in a field the report declares as
// free text (corpusTextFields).
var policyInputs = map[string]map[string]string{
	"web": {"951240-1/0": textFieldInput},
	"api": {
		"911100-6/0": "DELETE, which the api profile allows (tx.allowed_methods)",
		"951240-1/0": textFieldInput,
	},
	"graphql": {
		"911100-6/0": "DELETE, which the graphql profile allows (tx.allowed_methods)",
		"951240-1/0": textFieldInput,
	},
}

const textFieldInput = "its payload (PHP function names, rule 933150) is the value of json.body, declared a text field here; the rule it tests, 951240, is a response rule, not run in this report"

// checkQuality holds edgeguard's results to the acceptance bar.
func checkQuality(t *testing.T, in []qualityInput, res map[string][]int) {
	t.Helper()
	stock := res["stock CRS"]
	for _, c := range qualityCases()[1:] {
		var lost []string
		fp := map[string][]string{}
		for i, r := range in {
			got := res[c.name][i]
			switch {
			case r.Set == "attack" && r.PL == 1 && blocked(stock[i]) && !blocked(got):
				if why, ok := policyInputs[c.name][r.Name]; ok {
					t.Logf("%s: %s passes: %s", c.name, r.Name, why)
					continue
				}
				lost = append(lost, r.Name)
			case r.Set != "attack" && blocked(got):
				fp[r.Set] = append(fp[r.Set], fmt.Sprintf("%s: %d", r.Name, got))
			}
		}
		if len(lost) > 0 {
			sort.Strings(lost)
			t.Errorf("%s: %d paranoia-1 attack inputs blocked by stock CRS pass: %s", c.name, len(lost), strings.Join(lost, ", "))
		}
		row := tally(in, res[c.name])
		sets := map[string][]string{"api": {"rest"}, "graphql": {"rest", "graphql"}}[c.name]
		for _, set := range sets {
			if n := row.benign[set]; n[0]*100 > n[1] {
				t.Errorf("%s: %d of %d benign %s requests blocked (over 1 %%): %s", c.name, n[0], n[1], set, strings.Join(fp[set], "; "))
			}
		}
		for _, set := range sets {
			t.Logf("%s: false positives in %s: %s", c.name, set, strings.Join(fp[set], "; "))
		}
	}
}
