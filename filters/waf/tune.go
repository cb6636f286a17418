package waf

import (
	"bufio"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
)

// This file turns the audit events of a shadow run (or of real blocks)
// into a proposed exclusion pack: one SecRuleUpdateTargetById per rule and
// variable that matched, never a whole rule removed, with go-ftw tests
// replaying the sampled requests and a summary of what it would allow. The
// operator reviews it before loading it.

// TuneOptions shape a proposed pack.
type TuneOptions struct {
	// Name is the pack's name (pack.yaml) and its files' prefix.
	Name string
	// Samples is how many requests per rule and variable become tests.
	Samples int
	// Routes are path prefixes to group events by (the longest that
	// matches); a path under none is its own route.
	Routes []string
}

// TuneSummary is what a proposed pack would change.
type TuneSummary struct {
	Events     int // audit events read
	Exclusions []TuneExclusion
	// Refused are matches no per-variable exclusion can fix (a variable
	// without a key, such as REQUEST_METHOD, or a key SecLang cannot name
	// safely): they need a setting or a review, never a removed rule.
	Refused []TuneRefusal
	// Methods are request methods CRS refused (911100): the fix is CRS's
	// own setting, tx.allowed_methods, written to the pack's config file.
	Methods       []string
	methodSamples [][]byte
}

// TuneExclusion is one rule no longer reading one variable.
type TuneExclusion struct {
	RuleID  int
	Message string
	Var     string
	Routes  map[string]int // route -> matches
	samples [][]byte
}

// TuneRefusal is a match the tuner leaves alone, and why.
type TuneRefusal struct {
	RuleID int
	Var    string
	Route  string
	Why    string
}

// excludableKey is what a variable key may be to be named in SecLang
// unquoted (json.query, user-agent, files[]).
var excludableKey = regexp.MustCompile(`^[A-Za-z0-9_.\-\[\]]{1,128}$`)

// excludableCollections are the collections whose members name one input.
var excludableCollections = []string{"ARGS", "ARGS_GET", "ARGS_POST", "ARGS_NAMES", "REQUEST_COOKIES", "REQUEST_COOKIES_NAMES", "REQUEST_HEADERS", "FILES", "FILES_NAMES"}

// methodRuleID is CRS's method allow-list rule; methodToken is a method
// name safe to write into its setting.
const methodRuleID = 911100

var methodToken = regexp.MustCompile(`^[A-Z]{1,20}$`)

// crsAllowedMethods is CRS's default tx.allowed_methods (crs-setup.conf).
var crsAllowedMethods = []string{"GET", "HEAD", "POST", "OPTIONS"}

// tunable reports whether id is a CRS detection rule: not a scoring or
// reporting rule, not edgeguard's engine rules or a pack's.
func tunable(id int) bool {
	return id >= 911000 && id < 980000 && !ReportingRule(id)
}

// Tune reads audit events (JSON lines) from events and proposes a pack.
func Tune(events io.Reader, opt TuneOptions) (*TuneSummary, error) {
	if opt.Samples <= 0 {
		opt.Samples = 3
	}
	sum := &TuneSummary{}
	byKey := map[string]*TuneExclusion{}
	refused := map[string]bool{}
	sc := bufio.NewScanner(events)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var ev auditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("audit event at line %d: %w", line, err)
		}
		sum.Events++
		route := routeOf(ev.URI, opt.Routes)
		for _, r := range ev.Rules {
			if !tunable(r.ID) {
				continue
			}
			if r.ID == methodRuleID && methodToken.MatchString(ev.Method) {
				if !slices.Contains(sum.Methods, ev.Method) {
					sum.Methods = append(sum.Methods, ev.Method)
					if len(ev.Request) > 0 {
						sum.methodSamples = append(sum.methodSamples, ev.Request)
					}
				}
				continue
			}
			for _, v := range r.Vars {
				if why := unexcludable(v); why != "" {
					if k := fmt.Sprint(r.ID, v, route); !refused[k] {
						refused[k] = true
						sum.Refused = append(sum.Refused, TuneRefusal{RuleID: r.ID, Var: v, Route: route, Why: why})
					}
					continue
				}
				k := fmt.Sprint(r.ID, " ", v)
				e := byKey[k]
				if e == nil {
					e = &TuneExclusion{RuleID: r.ID, Message: r.Message, Var: v, Routes: map[string]int{}}
					byKey[k] = e
					sum.Exclusions = append(sum.Exclusions, *e)
				}
				e.Routes[route]++
				if len(ev.Request) > 0 && len(e.samples) < opt.Samples {
					e.samples = append(e.samples, ev.Request)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading audit events: %w", err)
	}
	for i, e := range sum.Exclusions {
		sum.Exclusions[i] = *byKey[fmt.Sprint(e.RuleID, " ", e.Var)]
	}
	slices.SortFunc(sum.Exclusions, func(a, b TuneExclusion) int {
		return cmp.Or(cmp.Compare(a.RuleID, b.RuleID), cmp.Compare(a.Var, b.Var))
	})
	return sum, nil
}

// unexcludable says why v cannot get a per-variable exclusion ("" if it can).
func unexcludable(v string) string {
	coll, key, ok := strings.Cut(v, ":")
	switch {
	case !ok:
		return "the variable has no key: excluding it would switch the rule off for every request"
	case !slices.Contains(excludableCollections, coll):
		return "not a request input a per-variable exclusion should drop"
	case !excludableKey.MatchString(key):
		return "the key holds characters SecLang cannot name unquoted"
	}
	return ""
}

// routeOf is the longest of routes that is a prefix of uri's path, on
// segment boundaries, or the path itself.
func routeOf(uri string, routes []string) string {
	p, _, _ := strings.Cut(uri, "?")
	best := ""
	for _, r := range routes {
		if underPrefix(p, r) && len(r) > len(best) {
			best = r
		}
	}
	if best == "" {
		return p
	}
	return best
}

// WritePack writes the proposed pack to dir: pack.yaml, the exclusions as
// a CRS plugin's after file (SecRuleUpdateTargetById needs CRS's rules
// loaded), tests/<name>.yaml and SUMMARY.txt.
func (s *TuneSummary) WritePack(dir string, opt TuneOptions) error {
	if err := os.MkdirAll(filepath.Join(dir, pluginDir), 0o755); err != nil {
		return fmt.Errorf("creating the tuned pack: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "tests"), 0o755); err != nil {
		return fmt.Errorf("creating the tuned pack: %w", err)
	}
	meta := fmt.Sprintf("name: %s\nversion: 0.1.0\ndescription: proposed by edgeguard tune from %d audit events; review before use\n", opt.Name, s.Events)
	files := map[string]string{
		"pack.yaml": meta,
		filepath.Join(pluginDir, opt.Name+"-config.conf"): s.config(opt.Name),
		filepath.Join(pluginDir, opt.Name+"-after.conf"):  s.rules(),
		"SUMMARY.txt": s.Text(),
	}
	if tests, ok, err := s.tests(); err != nil {
		return err
	} else if ok {
		files[filepath.Join("tests", opt.Name+".yaml")] = tests
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return fmt.Errorf("writing the tuned pack: %w", err)
		}
	}
	return nil
}

// config is the pack's config file: CRS's method allow-list widened by the
// methods the run saw refused (CRS reads tx.allowed_methods only if it is
// not set yet, so this must load ahead of CRS's rules).
func (s *TuneSummary) config(name string) string {
	if len(s.Methods) == 0 {
		return "# Proposed by edgeguard tune: no CRS setting to change.\n"
	}
	methods := slices.Concat(crsAllowedMethods, s.Methods)
	slices.Sort(s.Methods)
	return fmt.Sprintf("# Proposed by edgeguard tune: CRS refused %s (rule 911100); allow them as\n# CRS means operators to, through tx.allowed_methods.\nSecAction \"id:9509001,phase:1,pass,nolog,t:none,ver:'%s',setvar:'tx.allowed_methods=%s'\"\n",
		strings.Join(s.Methods, ", "), name, strings.Join(methods, " "))
}

func (s *TuneSummary) rules() string {
	var b strings.Builder
	b.WriteString("# Proposed by edgeguard tune. Each line stops one CRS rule from reading one\n# variable; every other variable stays inspected by it.\n")
	for _, e := range s.Exclusions {
		fmt.Fprintf(&b, "\n# %d (%s) matched %s: %s\n", e.RuleID, oneLine(e.Message), e.Var, e.routeList())
		fmt.Fprintf(&b, "SecRuleUpdateTargetById %d \"!%s\"\n", e.RuleID, e.Var)
	}
	return b.String()
}

// oneLine keeps what an audit event says (a rule message, a path) on one
// line of a comment: a newline in it would start a directive.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' || r == '\u0085' {
			return ' '
		}
		return r
	}, s)
}

func (e TuneExclusion) routeList() string {
	routes := make([]string, 0, len(e.Routes))
	for r := range e.Routes {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	parts := make([]string, len(routes))
	for i, r := range routes {
		parts[i] = fmt.Sprintf("%s ×%d", oneLine(r), e.Routes[r])
	}
	return strings.Join(parts, ", ")
}

// tests are go-ftw tests replaying each exclusion's samples: the rule
// must no longer match them.
func (s *TuneSummary) tests() (string, bool, error) {
	type stage struct {
		Input  map[string]any `yaml:"input"`
		Output map[string]any `yaml:"output"`
	}
	type test struct {
		TestID int     `yaml:"test_id"`
		Desc   string  `yaml:"desc"`
		Stages []stage `yaml:"stages"`
	}
	var tests []test
	for i, raw := range s.methodSamples {
		tests = append(tests, test{
			TestID: len(tests) + 1,
			Desc:   fmt.Sprintf("rule %d allows the method of sample %d", methodRuleID, i+1),
			Stages: []stage{{
				Input:  map[string]any{"encoded_request": base64.StdEncoding.EncodeToString(raw)},
				Output: map[string]any{"log": map[string]any{"no_expect_ids": []int{methodRuleID}}},
			}},
		})
	}
	for _, e := range s.Exclusions {
		for i, raw := range e.samples {
			tests = append(tests, test{
				TestID: len(tests) + 1,
				Desc:   fmt.Sprintf("rule %d no longer reads %s (sample %d)", e.RuleID, e.Var, i+1),
				Stages: []stage{{
					Input:  map[string]any{"encoded_request": base64.StdEncoding.EncodeToString(raw)},
					Output: map[string]any{"log": map[string]any{"no_expect_ids": []int{e.RuleID}}},
				}},
			})
		}
	}
	if len(tests) == 0 {
		return "", false, nil
	}
	out, err := yaml.Marshal(map[string]any{
		"meta":    map[string]any{"author": "edgeguard tune", "description": "sampled requests the proposed exclusions let through"},
		"rule_id": tests[0].Stages[0].Output["log"].(map[string]any)["no_expect_ids"].([]int)[0],
		"tests":   tests,
	})
	if err != nil {
		return "", false, fmt.Errorf("encoding the tuned pack's tests: %w", err)
	}
	return string(out), true, nil
}

// Text is the summary a reviewer reads: per rule and variable, the routes
// it matched on and what excluding it allows; then what was left alone.
func (s *TuneSummary) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d audit events, %d exclusions proposed, %d matches left alone.\n", s.Events, len(s.Exclusions), len(s.Refused))
	if len(s.Methods) > 0 {
		fmt.Fprintf(&b, "\nmethods %s added to CRS's tx.allowed_methods (rule 911100 refused them)\n  allows: these methods on every route; every rule still inspects their requests\n", strings.Join(s.Methods, ", "))
	}
	for _, e := range s.Exclusions {
		fmt.Fprintf(&b, "\nrule %d (%s), variable %s\n  seen on: %s\n  allows: any value of %s past rule %d on every route; the rule still reads every other variable, and every other rule still reads %s\n",
			e.RuleID, oneLine(e.Message), e.Var, e.routeList(), e.Var, e.RuleID, e.Var)
	}
	if len(s.Refused) > 0 {
		b.WriteString("\nleft alone (needs a setting or a review, not an exclusion):\n")
		for _, r := range s.Refused {
			fmt.Fprintf(&b, "  rule %d, %s on %s: %s\n", r.RuleID, oneLine(r.Var), oneLine(r.Route), r.Why)
		}
	}
	return b.String()
}
