package waf

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/corazawaf/coraza-coreruleset/v4"

	"github.com/edgeguard/edgeguard/filters"
)

// TestCtlByIDRules: a ctl:ruleRemoveTargetByTag is rewritten to a range of
// ids only when the rules carrying the tag are exactly the rules in that
// range over all the files; the first file is the one rewritten.
func TestCtlByIDRules(t *testing.T) {
	const ctl = "SecRule REQUEST_FILENAME \"@rx x\" \\\n    \"id:1,\\\n    phase:1,pass,\\\n    ctl:ruleRemoveTargetByTag=perf;REQUEST_FILENAME,\\\n    ver:'v'\"\n"
	rule := func(id int, tags ...string) string {
		var b strings.Builder
		for _, tg := range tags {
			b.WriteString(",tag:'" + tg + "'")
		}
		return `SecRule ARGS "@rx a" "id:` + strconv.Itoa(id) + `,phase:2,block` + b.String() + "\"\n"
	}
	tests := []struct {
		name  string
		files []string
		want  string // "" when the first file stays as it is
	}{
		{"the tagged rules are the range",
			[]string{ctl + rule(10, "perf") + rule(11, "x", "perf"), rule(12, "perf") + rule(13) + rule(9)},
			"SecRule REQUEST_FILENAME \"@rx x\" \"id:1,phase:1,pass,ctl:ruleRemoveTargetById=10-12;REQUEST_FILENAME,ver:'v'\"\n\n\n\n\n" +
				rule(10, "perf") + rule(11, "x", "perf")},
		{"ids need not be consecutive, only no other rule between",
			[]string{ctl + rule(10, "perf") + rule(20, "perf") + rule(30)},
			"SecRule REQUEST_FILENAME \"@rx x\" \"id:1,phase:1,pass,ctl:ruleRemoveTargetById=10-20;REQUEST_FILENAME,ver:'v'\"\n\n\n\n\n" +
				rule(10, "perf") + rule(20, "perf") + rule(30)},
		{"quoted ctl, single rule",
			[]string{`SecAction "id:1,pass,ctl:'ruleRemoveTargetByTag=perf;ARGS:x'"` + "\n" + rule(7, "perf")},
			`SecAction "id:1,pass,ctl:ruleRemoveTargetById=7-7;ARGS:x"` + "\n" + rule(7, "perf")},
		{"a chained rule's tag is not its parent's and has no id",
			[]string{ctl + rule(10, "perf") + "SecRule ARGS \"@rx a\" \"id:11,chain,block\"\nSecRule ARGS \"@rx b\" \"tag:'perf'\"\n" + rule(12, "perf")},
			""},
		{"tag set not contiguous in ids",
			[]string{ctl + rule(10, "perf") + rule(11) + rule(12, "perf")},
			""},
		{"another rule in the range without the tag, in another file",
			[]string{ctl + rule(10, "perf") + rule(12, "perf"), `SecAction "id:11,pass,nolog"` + "\n"},
			""},
		{"unknown tag",
			[]string{ctl + rule(10, "fast")},
			""},
		{"the tag named by a directive that is not a rule",
			[]string{ctl + rule(10, "perf"), `SecDefaultAction "phase:2,pass,tag:'perf'"` + "\n"},
			""},
		{"a rule that cannot be read",
			[]string{ctl + rule(10, "perf") + `SecRule ARGS "@rx a` + "\n"},
			""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var files [][]byte
			for _, f := range tc.files {
				files = append(files, []byte(f))
			}
			want, wantN := tc.want, 1
			if want == "" {
				want, wantN = tc.files[0], 0
			}
			got, n := ctlByIDRules(files[0], ctlTagRanges(files))
			if string(got) != want || n != wantN {
				t.Fatalf("rewrote %d:\n%s\nwant %d:\n%s", n, got, wantN, want)
			}
		})
	}
}

// crsFiles returns CRS's embedded rule files by name.
func crsFiles(t *testing.T) map[string][]byte {
	t.Helper()
	names, err := fs.Glob(coreruleset.FS, "@owasp_crs/*.conf")
	if err != nil || len(names) == 0 {
		t.Fatalf("CRS rule files: %v, %v", names, err)
	}
	files := map[string][]byte{}
	for _, n := range names {
		if files[n], err = fs.ReadFile(coreruleset.FS, n); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// TestCtlTagRangesCRS: in CRS v4.25 the rules tagged xss-perf-disable are
// exactly the rules with ids 941100..941400, counted here without the
// directive walk (each id: starts a rule, a tag: belongs to the last id
// before it, a chained rule having no id), and 941010 is the one ctl that
// is rewritten, every file keeping its line count.
func TestCtlTagRangesCRS(t *testing.T) {
	const tag = "xss-perf-disable"
	ranges := crsTagRanges()
	want := map[string]idRange{tag: {941100, 941400}}
	if !maps.Equal(ranges, want) {
		t.Fatalf("CRS tag ranges %v, want %v (say in filters/waf/README.md what changed)", ranges, want)
	}
	actions := regexp.MustCompile(`\bid:(\d+)|\btag:'([^']*)'`)
	tagged, inRange := map[int]bool{}, map[int]bool{}
	rewritten := 0
	for n, src := range crsFiles(t) {
		id := 0
		for _, m := range actions.FindAllStringSubmatch(string(src), -1) {
			switch {
			case m[1] != "":
				id, _ = strconv.Atoi(m[1])
				if id >= 941100 && id <= 941400 {
					inRange[id] = true
				}
			case m[2] == tag:
				tagged[id] = true
			}
		}
		out, k := ctlByIDRules(src, ranges)
		if strings.Count(string(out), "\n") != strings.Count(string(src), "\n") {
			t.Errorf("%s: %d lines rewritten to %d", n, strings.Count(string(src), "\n"), strings.Count(string(out), "\n"))
		}
		if k > 0 && !strings.Contains(string(out), "ctl:ruleRemoveTargetById=941100-941400;REQUEST_FILENAME,") {
			t.Errorf("%s: rewritten without the by-id ctl: %s", n, regexp.MustCompile(`ctl:ruleRemoveTarget[^,]*`).Find(out))
		}
		rewritten += k
	}
	if ids := slices.Sorted(maps.Keys(tagged)); !maps.Equal(tagged, inRange) || len(ids) == 0 {
		t.Errorf("ids tagged %s: %v\nids in 941100..941400: %v", tag, ids, slices.Sorted(maps.Keys(inRange)))
	}
	if rewritten != 1 {
		t.Errorf("%d CRS rules' ctl rewritten, want 1 with CRS v4.25 (941010; say in filters/waf/README.md what changed)", rewritten)
	}
}

// TestCtlTagRangesBuild: a build serves CRS with the by-id ctl unless
// something else it loads could tag a rule, add one to the range, or
// include text that is not checked; a stock build never does.
func TestCtlTagRangesBuild(t *testing.T) {
	const xss = "@owasp_crs/REQUEST-941-APPLICATION-ATTACK-XSS.conf"
	tests := []struct {
		name    string
		profile Profile
		pack    string // a rules file's text, "" for none
		stock   bool
		want    bool
	}{
		{"no profile, no pack", ProfileNone, "", false, true},
		{"the api profile's exclusions on 941xxx rules", ProfileAPI, "", false, true},
		{"the graphql profile", ProfileGraphQL, "", false, true},
		{"the web profile", ProfileWeb, "", false, true},
		{"a pack rule outside the range",
			ProfileNone, `SecRule ARGS "@rx a" "id:9500001,phase:2,deny,tag:'attack-xss'"` + "\n", false, true},
		{"a stock build", ProfileNone, "", true, false},
		{"a pack rule with the tag",
			ProfileNone, `SecRule ARGS "@rx a" "id:9500001,phase:2,deny,tag:'xss-perf-disable'"` + "\n", false, false},
		{"a pack rule with an id in the range",
			ProfileNone, `SecRule ARGS "@rx a" "id:941105,phase:2,deny"` + "\n", false, false},
		{"a pack updating the actions of rules in the range",
			ProfileNone, `SecRuleUpdateActionById 941100-941200 "pass"` + "\n", false, false},
		{"a pack including other files",
			ProfileNone, "Include more/*.conf\n", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := engineSettings{cfg: Config{Profile: tc.profile}.withDefaults(), stock: tc.stock}
			if tc.pack != "" {
				f := filepath.Join(t.TempDir(), "pack.conf")
				if err := os.WriteFile(f, []byte(tc.pack), 0o644); err != nil {
					t.Fatal(err)
				}
				s.packFiles.rules = []string{f}
			}
			before, after, err := profileDirectives(s.cfg.Profile, s.cfg.TextFields)
			if err != nil {
				t.Fatal(err)
			}
			fsys := s.rootFS(before, after)
			b, err := fsys.ReadFile(xss)
			if err != nil {
				t.Fatal(err)
			}
			byID := strings.Contains(string(b), "ctl:ruleRemoveTargetById=941100-941400;REQUEST_FILENAME")
			byTag := strings.Contains(string(b), "ctl:ruleRemoveTargetByTag=xss-perf-disable;REQUEST_FILENAME")
			if byID != tc.want || byTag == tc.want {
				t.Fatalf("ranges %v: by id %v, by tag %v; want by id %v", fsys.ctlRanges, byID, byTag, tc.want)
			}
		})
	}
}

// TestCtlByIDInDifferential: both configurations TestDifferential compares
// with stock Coraza (CRS's test setup at paranoia 4, and the default, each
// with the shipped packs) serve 941010's ctl by id, so its 0 differences
// cover the rewrite.
func TestCtlByIDInDifferential(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two WAFs")
	}
	for _, c := range diffConfigs() {
		before := ctlByIDServed.Load()
		f, err := newFilter(c.cfg, filters.Env{Dir: "."}, c.opt)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if n := ctlByIDServed.Load() - before; n != 1 {
			t.Errorf("%s: %d ctls served by id, want 1 (941010's)", c.name, n)
		}
	}
}

// TestReadRuleWithoutActions: a chained rule may have no action list (CRS
// writes 949111's so); it is read, has no chain action, and the rule after
// it is fused like any rule that starts a chain or stands alone.
func TestReadRuleWithoutActions(t *testing.T) {
	const child = `SecRule TX:EARLY_BLOCKING "@eq 1"`
	r, isRule, ok := readRule(child)
	if !isRule || !ok || len(r.actions) != 0 || r.vars != "TX:EARLY_BLOCKING" || r.op != "@eq 1" {
		t.Fatalf("readRule(%q) = %+v, %v, %v", child, r, isRule, ok)
	}
	src := "SecRule ARGS \"@rx a\" \"id:14,t:none,chain\"\n" + child + "\nSecRule ARGS \"@rx c\" \"id:15,t:none,t:cmdLine\"\n"
	want := "SecRule ARGS \"@rx a\" \"id:14,t:none,chain\"\n" + child + "\nSecRule ARGS \"@rxchain cmdLine c\" \"id:15,t:none\"\n"
	if got, n := fuseRules([]byte(src)); string(got) != want || n != 1 {
		t.Fatalf("fused %d:\n%s\nwant 1:\n%s", n, got, want)
	}
}
