package waf

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/filters"
)

// TestRulePlanInDifferential: both configurations TestDifferential
// compares with stock Coraza plan rules in both phases, and a benign GET
// through each has planned rules removed, so its 0 differences cover the
// plan; a JSON body, for which CRS's skip:1 (920539) may fire, has none
// removed in phase 2.
func TestRulePlanInDifferential(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two WAFs")
	}
	for _, c := range diffConfigs() {
		before := plannedTotal.Load()
		f, err := newFilter(c.cfg, filters.Env{Dir: "."}, c.opt)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// At paranoia 1 the plan leaves out the rules of higher levels,
		// which never run; at 4 (CRS's test setup) it takes them all.
		if n := plannedTotal.Load() - before; n < 60 {
			t.Errorf("%s: %d rules planned, want over 60", c.name, n)
		}
		h := stageHandler(f, http.HandlerFunc(okUpstream))
		skipped := plannedSkipped.Load()
		h.ServeHTTP(httptest.NewRecorder(), benignGET().request())
		if n := plannedSkipped.Load() - skipped; n < 40 {
			t.Errorf("%s: a benign GET had %d planned rules removed, want over 40", c.name, n)
		}

		// Phase 1's plan still runs for a JSON body; phase 2's must not.
		get := plannedSkipped.Load()
		h.ServeHTTP(httptest.NewRecorder(), benignGET().request())
		perGET := plannedSkipped.Load() - get
		post := plannedSkipped.Load()
		h.ServeHTTP(httptest.NewRecorder(), benignJSONPost(2048).request())
		if n := plannedSkipped.Load() - post; n >= perGET/2 {
			t.Errorf("%s: a JSON POST had %d planned rules removed (a GET %d): phase 2's plan ran beside CRS's skip:1 for JSON", c.name, n, perGET)
		}
	}
}

// TestRulePlanLoadedText: what else the build loads decides what the plan
// may hold. An update that adds to a rule's targets or changes its actions
// takes that rule out; one that only excludes targets does not; anything
// the plan cannot see through (an Include, an update by tag or message, a
// skip:N of another form, a body processor changed in phase 2) leaves it
// empty.
func TestRulePlanLoadedText(t *testing.T) {
	// The plan asks rx for the Matchers a build compiled.
	f, err := newFilter(Config{}, filters.Env{}, engineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	planned := func(p *rulePlan) map[int]bool {
		ids := map[int]bool{}
		for _, ph := range p.phases {
			for _, r := range ph.rules {
				ids[r.id] = true
			}
		}
		return ids
	}
	s := engineSettings{cfg: Config{}.withDefaults()}
	base := planned(s.rulePlan(rootFS{fuse: true}, "", ""))
	var id int
	for _, candidate := range []int{942140, 941110, 933110} {
		if base[candidate] {
			id = candidate
			break
		}
	}
	if id == 0 || len(base) < 60 {
		t.Fatalf("the default plan holds %d rules and none of the candidates", len(base))
	}
	idText := strconv.Itoa(id)
	for _, tc := range []struct {
		name, extra string
		want        func(ids map[int]bool) bool
	}{
		{"exclusion only", `SecRuleUpdateTargetById ` + idText + ` "!ARGS:q|!REQUEST_COOKIES:/^x/"`,
			func(ids map[int]bool) bool { return ids[id] && len(ids) == len(base) }},
		{"target added", `SecRuleUpdateTargetById ` + idText + ` "ARGS:q"`,
			func(ids map[int]bool) bool { return !ids[id] && len(ids) == len(base)-1 }},
		{"actions updated", `SecRuleUpdateActionById ` + idText + ` "t:none"`,
			func(ids map[int]bool) bool { return !ids[id] && len(ids) == len(base)-1 }},
		{"range updated", `SecRuleUpdateActionById ` + strconv.Itoa(id-1) + `-` + strconv.Itoa(id+1) + ` "t:none"`,
			func(ids map[int]bool) bool { return !ids[id] }},
		{"detection level set elsewhere", `SecAction "id:1,phase:1,pass,nolog,setvar:tx.detection_paranoia_level=4"`,
			func(ids map[int]bool) bool { return len(ids) > len(base)+40 }},
		{"include", `Include /nonexistent/*.conf`, func(ids map[int]bool) bool { return len(ids) == 0 }},
		{"update by tag", `SecRuleUpdateTargetByTag attack-sqli "ARGS:q"`, func(ids map[int]bool) bool { return len(ids) == 0 }},
		{"another skip", `SecRule ARGS "@rx x" "id:1,phase:2,pass,nolog,skip:1"`, func(ids map[int]bool) bool { return len(ids) == 0 }},
		{"body processor in phase 2", `SecRule ARGS "@rx x" "id:1,phase:2,pass,nolog,ctl:requestBodyProcessor=JSON"`,
			func(ids map[int]bool) bool { return len(ids) == 0 }},
		{"body processor in phase 1", `SecRule ARGS "@rx x" "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"`,
			func(ids map[int]bool) bool { return len(ids) == len(base) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := engineSettings{cfg: Config{}.withDefaults(), extra: tc.extra}
			if ids := planned(s.rulePlan(rootFS{fuse: true}, "", "")); !tc.want(ids) {
				t.Errorf("%d rules planned (%v for %d); default %d", len(ids), ids[id], id, len(base))
			}
		})
	}
}

// TestPlanRule: only a fused @rxchain rule, standing alone, on request
// collections, with a pattern rx compiled and a prefilter, is planned.
func TestPlanRule(t *testing.T) {
	// rx's cache must hold the patterns: build once.
	f, err := newFilter(Config{}, filters.Env{}, engineOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The operator of the first SQL injection rule the plan takes, as
	// fused.
	var pattern, chain string
	for _, src := range crsFusedFiles(t) {
		eachDirective(src, func(d string, _, _ int) {
			if r, isRule, ok := readRule(d); pattern == "" && isRule && ok {
				if _, _, _, _, planned := planRule(r); planned {
					args := strings.TrimPrefix(r.op, "@"+chainRxName+" ")
					chain, pattern, _ = strings.Cut(args, " ")
				}
			}
		})
	}
	if pattern == "" {
		t.Fatal("no rule of CRS's SQL injection file is planned")
	}
	rule := func(vars, op, actions string) string {
		return `SecRule ` + vars + ` "` + op + `" "` + actions + `"`
	}
	op := "@" + chainRxName + " " + chain + " " + pattern
	for _, tc := range []struct {
		name, directive string
		want            bool
		phase           int
	}{
		{"as CRS writes it", rule("REQUEST_COOKIES|!REQUEST_COOKIES:/__utm/|ARGS_NAMES|ARGS|XML:/*", op, "id:1,phase:2,block,t:none"), true, 2},
		{"phase 1", rule("REQUEST_HEADERS:Referer", op, "id:1,phase:1,block,t:none"), true, 1},
		{"negated", rule("ARGS", "!"+op, "id:1,phase:2,block,t:none"), false, 0},
		{"chain", rule("ARGS", op, "id:1,phase:2,block,t:none,chain"), false, 0},
		{"multiMatch", rule("ARGS", op, "id:1,phase:2,block,t:none,multiMatch"), false, 0},
		{"skip", rule("ARGS", op, "id:1,phase:2,block,t:none,skip:1"), false, 0},
		{"TX", rule("ARGS|TX:foo", op, "id:1,phase:2,block,t:none"), false, 0},
		{"count", rule("&ARGS", op, "id:1,phase:2,block,t:none"), false, 0},
		{"response phase", rule("ARGS", op, "id:1,phase:4,block,t:none"), false, 0},
		{"no id", rule("ARGS", op, "phase:2,block,t:none"), false, 0},
		{"unknown transformation", rule("ARGS", "@"+chainRxName+" nosuch "+pattern, "id:1,phase:2,block,t:none"), false, 0},
		{"pattern never compiled", rule("ARGS", "@"+chainRxName+" lowercase edgeguard-never-compiled-[0-9]", "id:1,phase:2,block,t:none"), false, 0},
		{"plain @rx", rule("ARGS", "@rx "+pattern, "id:1,phase:2,block,t:none"), false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _, ok := readRule(tc.directive)
			if !ok {
				t.Fatal("unreadable")
			}
			_, phase, _, _, got := planRule(r)
			if got != tc.want || phase != tc.phase {
				t.Errorf("planned %v in phase %d, want %v in %d", got, phase, tc.want, tc.phase)
			}
		})
	}
}

func crsFusedFiles(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	for _, n := range []string{"@owasp_crs/REQUEST-942-APPLICATION-ATTACK-SQLI.conf"} {
		b, _, err := rootFS{fuse: true}.read(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzPlanRule: reading a rule for the plan never panics, and a rule it
// takes is in phase 1 or 2, names at least one variable, all of them
// collections the plan may read, and holds a Matcher that can say no. A
// SecRuleUpdateTargetById it reads as exclusions only has nothing but
// negated targets.
func FuzzPlanRule(f *testing.F) {
	f.Add(`SecRule ARGS|!ARGS:x "@rxchain lowercase abc" "id:1,phase:2,block,t:none"`)
	f.Add(`SecRule REQBODY_PROCESSOR "@streq JSON" "id:2,phase:2,pass,t:none,nolog,skip:1"`)
	f.Add(`SecRule &ARGS "@rxchain lowercase,urlDecodeUni a\"b" "id:3,phase:1,t:none"`)
	f.Add(`942100 "!ARGS:q|!REQUEST_COOKIES:/^x/"`)
	f.Fuzz(func(t *testing.T, directive string) {
		if r, isRule, ok := readRule(directive); isRule && ok {
			if _, phase, chain, vars, planned := planRule(r); planned {
				if phase != 1 && phase != 2 || chain == "" || len(vars) == 0 {
					t.Fatalf("planned in phase %d with chain %q and %d variables", phase, chain, len(vars))
				}
				for _, v := range vars {
					if !planCollections[v] {
						t.Fatalf("planned on %s", v.Name())
					}
				}
			}
			if g, ok := readSkipGuard(r); ok && (g.phase < 1 || g.phase > 2 || g.literal == "") {
				t.Fatalf("skip guard %+v", g)
			}
		}
		if onlyExcludes(directive) {
			_, targets, _ := strings.Cut(strings.TrimSpace(directive), " ")
			for _, tg := range strings.Split(strings.Trim(strings.TrimSpace(targets), `"`), "|") {
				if !strings.HasPrefix(tg, "!") {
					t.Fatalf("target %q read as an exclusion", tg)
				}
			}
		}
	})
}
