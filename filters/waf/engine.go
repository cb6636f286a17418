package waf

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/types"
)

// Rule ids edgeguard generates from the config. CRS owns 900,000–999,999
// (900000/900110/900120 are the ids crs-setup.conf documents for exactly
// these settings); generated exclusions use 9,400,000 and up, shipped packs
// 9,500,000 and up, so neither can collide with CRS or with each other.
const (
	exclusionIDBase = 9_400_000
	// maxExclusions keeps exclusion ids below earlyBlockingID.
	maxExclusions = 99_999
)

// rootFS serves CRS's embedded files for names starting with "@" (the way
// coraza-coreruleset spells them) and the real file system for everything
// else, so pack files and the data files they reference load from disk.
type rootFS struct {
	// fuse serves CRS's rule files with their @rx rules rewritten to
	// @rxchain (fuse.go). Coraza reads rule files with fs.ReadFile.
	fuse bool
	// ctlRanges are the tags whose ctl:ruleRemoveTargetByTag CRS's rule
	// files are served with as ctl:ruleRemoveTargetById over the range
	// (fuse.go): engineSettings.ctlTagRanges, nil for none.
	ctlRanges map[string]idRange
}

func crsName(name string) (string, bool) {
	if i := strings.Index(name, "@"); i >= 0 && (i == 0 || name[i-1] == '/') &&
		(strings.HasPrefix(name[i:], "@owasp_crs") || strings.HasPrefix(name[i:], "@crs-setup") || strings.HasPrefix(name[i:], "@coraza")) {
		return name[i:], true
	}
	return "", false
}

func (rootFS) Open(name string) (fs.File, error) {
	if n, ok := crsName(name); ok {
		return coreruleset.FS.Open(n)
	}
	return os.Open(name)
}

func (r rootFS) ReadFile(name string) ([]byte, error) {
	b, ctls, err := r.read(name)
	ctlByIDServed.Add(int64(ctls))
	return b, err
}

// read is ReadFile, also saying how many ctls it served by id.
func (r rootFS) read(name string) (b []byte, ctls int, err error) {
	if n, ok := crsName(name); ok {
		b, err := fs.ReadFile(coreruleset.FS, n)
		if err == nil && strings.HasPrefix(n, "@owasp_crs/") && strings.HasSuffix(n, ".conf") {
			if r.fuse {
				b, _ = fuseRules(b)
			}
			if len(r.ctlRanges) > 0 {
				b, ctls = ctlByIDRules(b, r.ctlRanges)
			}
		}
		return b, ctls, err
	}
	b, err = os.ReadFile(name)
	return b, 0, err
}

func (rootFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if n, ok := crsName(name); ok {
		return fs.ReadDir(coreruleset.FS, n)
	}
	return os.ReadDir(name)
}

func (rootFS) Glob(pattern string) ([]string, error) {
	if n, ok := crsName(pattern); ok {
		return fs.Glob(coreruleset.FS, n)
	}
	// Pack files are always named one by one; a glob outside CRS is a
	// pack's own Include, resolved on disk.
	return globOS(pattern)
}

// engineSettings is everything of a Config that shapes the coraza.WAF.
type engineSettings struct {
	cfg Config // with defaults
	// packFiles are the absolute paths of the packs' .conf files, by the
	// point they load at.
	packFiles packFiles
	// extra is SecLang placed after edgeguard's settings and before CRS's
	// setup: the CRS regression harness uses it for the test setup.
	extra string
	// stock leaves Coraza's own operators and transformations in place:
	// the reference side of the differential test and the baseline of the
	// benchmarks. Coraza's registries are global and read when rules are
	// parsed, so it means something only in a process that has not yet
	// built a WAF without it.
	stock bool
	// noPlan leaves the rule plan (plan.go) out.
	noPlan bool
}

// baseDirectives is edgeguard's engine base, in place of the
// coraza.conf-recommended that coraza-coreruleset embeds (an older copy
// that lacks the argument-limit rules: without them a request with more
// than 1000 arguments has the rest silently uninspected). The rule ids are
// the ones Coraza's recommended config uses, so documentation and CRS
// tooling that name them still apply.
const baseDirectives = `SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "@rx ^(?:application(?:/soap\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/[a-z0-9.-]+[+]json" "id:200006,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRequestBodyJsonDepthLimit 1024
SecRule URI_PARSE_ERROR "@eq 1" "id:200009,phase:1,t:none,log,deny,status:400,msg:'Request URI does not parse'"
SecRule ARGUMENTS_LIMIT_REACHED "@eq 1" "id:200004,phase:1,t:none,log,deny,status:400,msg:'Too many arguments in the query or path: the rest could not be inspected'"
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Request body does not parse',logdata:'%{reqbody_error_msg}',severity:2"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,log,deny,status:400,msg:'Multipart request body fails strict validation'"
SecRule ARGUMENTS_LIMIT_REACHED "@eq 1" "id:200005,phase:2,t:none,log,deny,status:400,msg:'Too many arguments in the body: the rest could not be inspected'"
`

// directives returns the SecLang edgeguard generates ahead of CRS.
func (s engineSettings) directives() string {
	c := s.cfg
	var b strings.Builder
	engine := "On"
	if c.Mode == "shadow" {
		engine = "DetectionOnly"
	}
	fmt.Fprintf(&b, "SecRuleEngine %s\nSecArgumentsLimit %d\n", engine, c.MaxArguments)
	// Coraza never applies the limit itself: Check reads at most body_limit
	// bytes and decides reject/partial, so that a body of exactly body_limit
	// bytes passes (Coraza counts reaching the limit as exceeding it).
	fmt.Fprintf(&b, "SecRequestBodyAccess On\nSecRequestBodyLimit %d\nSecRequestBodyInMemoryLimit %d\nSecRequestBodyLimitAction ProcessPartial\n",
		int64(c.BodyLimit)+1, int64(c.BodyLimit)+1)
	if c.InspectResponse {
		// +1 for the same reason as the request body: the inspector holds at
		// most response_body_limit bytes and Coraza must not cut them.
		fmt.Fprintf(&b, "SecResponseBodyAccess On\nSecResponseBodyLimit %d\nSecResponseBodyLimitAction ProcessPartial\nSecResponseBodyMimeType %s\n",
			int64(c.ResponseBodyLimit)+1, strings.Join(c.ResponseMIMETypes, " "))
	} else {
		b.WriteString("SecResponseBodyAccess Off\n")
	}
	// crs-setup.conf sets the default action of phases 1 and 2 only; give
	// the response and logging phases ModSecurity's default too, so that outbound
	// matches are logged and audited like inbound ones.
	b.WriteString("SecDefaultAction \"phase:3,log,auditlog,pass\"\nSecDefaultAction \"phase:4,log,auditlog,pass\"\nSecDefaultAction \"phase:5,log,auditlog,pass\"\n")
	// Audit events are edgeguard's own (audit.go); Coraza's native audit
	// log would write bodies and cookies.
	b.WriteString("SecAuditEngine Off\n")
	return b.String()
}

// crsSettings returns the SecActions that crs-setup.conf documents, placed
// after it and before the rules so that CRS's initialization sees them.
func (s engineSettings) crsSettings() string {
	c := s.cfg
	var b strings.Builder
	fmt.Fprintf(&b, "SecAction \"id:900000,phase:1,pass,t:none,nolog,setvar:tx.blocking_paranoia_level=%d\"\n", c.Paranoia)
	fmt.Fprintf(&b, "SecAction \"id:900110,phase:1,pass,t:none,nolog,setvar:tx.inbound_anomaly_score_threshold=%d,setvar:tx.outbound_anomaly_score_threshold=%d\"\n",
		c.InboundThreshold, c.OutboundThreshold)
	for i, e := range c.Exclusions {
		var ctl []string
		for _, id := range e.RuleIDs {
			ctl = append(ctl, fmt.Sprintf("ctl:ruleRemoveById=%d", id))
		}
		for _, tag := range e.Tags {
			ctl = append(ctl, "ctl:ruleRemoveByTag="+tag)
		}
		// Phase 1, ahead of every CRS rule, so the removal covers all phases.
		// The path is normalized first: /search/../admin must not borrow
		// /search's exclusions.
		fmt.Fprintf(&b, "SecRule REQUEST_FILENAME \"@rx %s\" \"id:%d,phase:1,pass,t:none,t:normalizePath,nolog,%s\"\n",
			prefixPattern(e.Path), exclusionIDBase+i, strings.Join(ctl, ","))
	}
	return b.String()
}

// earlyBlocking is CRS's early blocking (rule 949111 with
// tx.early_blocking=1) moved after the packs: the phase-1 score CRS has
// summed is checked at the end of phase 1, once the packs' own phase-1
// rules have had their say, so a pack's 405 or 415 is not replaced by
// CRS's 403. CRS's phase-2 evaluation (949110) is unchanged.
const earlyBlocking = `SecRule TX:BLOCKING_INBOUND_ANOMALY_SCORE "@ge %{tx.inbound_anomaly_score_threshold}" "id:` + earlyBlockingID + `,phase:1,deny,t:none,log,msg:'Inbound Anomaly Score Exceeded in phase 1 (Total Score: %{TX.BLOCKING_INBOUND_ANOMALY_SCORE})',tag:'anomaly-evaluation'"
`

// earlyBlockingID sits at the top of the range the stage generates rules
// in, above every exclusion id (exclusionIDBase+i, i < maxExclusions).
const earlyBlockingID = "9499999"

// prefixPattern is a regexp matching p and the paths below it, on segment
// boundaries: /api matches /api and /api/x, not /apix; /api/ matches /api/x.
func prefixPattern(p string) string {
	if strings.HasSuffix(p, "/") {
		return "^" + regexp.QuoteMeta(p)
	}
	return "^" + regexp.QuoteMeta(p) + "(?:/|$)"
}

// underPrefix is prefixPattern for Go code, over a cleaned path.
func underPrefix(urlPath, p string) bool {
	clean := path.Clean("/" + urlPath)
	if strings.HasSuffix(p, "/") {
		return strings.HasPrefix(clean+"/", p)
	}
	return clean == p || strings.HasPrefix(clean, p+"/")
}

// build compiles the WAF: Coraza's recommended base, edgeguard's settings,
// CRS's setup, the plugins' config and before files, CRS's rules, the
// plugins' after files, then the packs' own files.
func (s engineSettings) build() (coraza.WAF, error) {
	if !s.stock {
		useOwnPlugins()
	}
	before, after, err := profileDirectives(s.cfg.Profile, s.cfg.TextFields)
	if err != nil {
		return nil, err
	}
	root := s.rootFS(before, after)
	conf := coraza.NewWAFConfig().WithRootFS(root)
	// The rule plan (plan.go) is filled in once the rules are parsed, as
	// it asks rx for the Matchers they compiled; its planning rules come
	// first, to run before any other rule of their phase.
	var plan *rulePlan
	if !s.stock && !s.noPlan {
		plan = &rulePlan{}
		key := strconv.FormatInt(planSeq.Add(1), 10)
		plans.Store(key, plan)
		defer plans.Delete(key)
		conf = conf.WithDirectives(planDirectives(key))
	}
	conf = conf.
		WithDirectives(baseDirectives).
		WithDirectives(s.directives())
	if s.extra != "" {
		conf = conf.WithDirectives(s.extra)
	}
	// The profile's settings go where crs-setup.conf's would (after it,
	// before CRS's initialization reads them), its exclusions and the
	// text fields' after CRS's rules, which they update.
	conf = conf.
		WithDirectives("Include @crs-setup.conf.example").
		WithDirectives(s.crsSettings() + before)
	// CRS's plugin points: *-config.conf after the setup, *-before.conf
	// ahead of the rules, *-after.conf behind them (after the profile's
	// exclusions); packs' own files last.
	for _, f := range slices.Concat(s.packFiles.config, s.packFiles.before) {
		conf = conf.WithDirectivesFromFile(f)
	}
	conf = conf.WithDirectives("Include @owasp_crs/*.conf").WithDirectives(after)
	for _, f := range slices.Concat(s.packFiles.after, s.packFiles.rules) {
		conf = conf.WithDirectivesFromFile(f)
	}
	if s.earlyBlocking() {
		conf = conf.WithDirectives(earlyBlocking)
	}
	w, err := coraza.NewWAF(conf)
	if err != nil {
		return nil, s.locate(err)
	}
	if plan != nil {
		*plan = *s.rulePlan(root, before, after)
	}
	return w, nil
}

// planDirectives are the planning rules of the plan filed under key.
func planDirectives(key string) string {
	return fmt.Sprintf(`SecRule REQUEST_METHOD "@%[1]s %[2]s 1" "id:%[3]d,phase:1,pass,nolog,noauditlog,t:none"
SecRule REQUEST_METHOD "@%[1]s %[2]s 2" "id:%[4]d,phase:2,pass,nolog,noauditlog,t:none"
`, rxPlanName, key, planRuleID1, planRuleID2)
}

// rulePlan plans CRS's rule files as root serves them, leaving out the
// rules anything else the build loads updates by id. Anything it cannot
// be sure of (an Include, an update by tag or message, a skip:N, a file
// it cannot read) leaves the plan empty.
func (s engineSettings) rulePlan(root rootFS, before, after string) *rulePlan {
	empty := &rulePlan{}
	texts, ok := s.otherTexts(before, after)
	if !ok {
		return empty
	}
	names, err := fs.Glob(coreruleset.FS, "@owasp_crs/*.conf")
	if err != nil {
		return empty
	}
	var files [][]byte
	for _, n := range names {
		b, _, err := root.read(n) // the rules as the build read them
		if err != nil {
			return empty
		}
		files = append(files, b)
	}
	var (
		updated []idRange
		guards  []skipGuard
		// Rules above the paranoia level never run, and planning them
		// is wasted; unless something else sets the detection level.
		maxPL = s.cfg.Paranoia
	)
	for _, t := range texts {
		eachDirective([]byte(t), func(directive string, _, _ int) {
			if strings.Contains(strings.ToLower(directive), "detection_paranoia_level") {
				maxPL = 0
			}
		})
	}
	all := slices.Clone(texts)
	for _, f := range files {
		all = append(all, string(f))
	}
	for _, t := range all {
		unsure, chained, chainPhase := false, false, ""
		whole := eachDirective([]byte(t), func(directive string, _, _ int) {
			name, args, _ := strings.Cut(directive, " ")
			switch {
			case strings.EqualFold(name, "Include"),
				strings.EqualFold(name, "SecRuleUpdateTargetByTag"),
				strings.EqualFold(name, "SecRuleUpdateTargetByMsg"),
				strings.EqualFold(name, "SecRuleUpdateActionByTag"),
				strings.EqualFold(name, "SecRuleUpdateActionByMsg"):
				unsure = true
			case strings.EqualFold(name, "SecRuleUpdateTargetById") && onlyExcludes(args):
				// Targets taken away leave the plan's superset a superset.
			case strings.EqualFold(name, "SecRuleUpdateTargetById"), strings.EqualFold(name, "SecRuleUpdateActionById"):
				fields := strings.Fields(args)
				if len(fields) == 0 {
					unsure = true
					return
				}
				// SecRuleUpdateActionById takes ids before its actions,
				// SecRuleUpdateTargetById one id before its targets: every
				// field that reads as an id or a range counts.
				for _, f := range fields {
					if r, err := parseIDRange(strings.Trim(f, `"'`)); err == nil {
						updated = append(updated, r)
					}
				}
			default:
				r, isRule, ok := readRule(directive)
				if !isRule {
					return
				}
				if !ok {
					unsure = true
					return
				}
				if hasAction(r.actions, "skip") {
					g, ok := readSkipGuard(r)
					if !ok {
						unsure = true
						return
					}
					guards = append(guards, g)
				}
				// A chained rule runs in its chain's phase.
				phase := chainPhase
				if !chained {
					phase = ""
					for _, a := range r.actions {
						if name, value := actionValue(a); name == "phase" {
							phase = value
						}
					}
				}
				chained, chainPhase = hasAction(r.actions, "chain"), phase
				for _, a := range r.actions {
					if name, value := actionValue(a); name == "ctl" && strings.HasPrefix(strings.ToLower(value), "requestbodyprocessor") &&
						phase != "1" && phase != "request" {
						unsure = true // REQBODY_PROCESSOR could change within phase 2
					}
				}
			}
		})
		if !whole || unsure {
			return empty
		}
	}
	p := buildRulePlan(files, maxPL, func(id int) bool {
		return slices.ContainsFunc(updated, func(r idRange) bool { return r.overlaps(idRange{id, id}) })
	})
	for _, g := range guards {
		p.phases[g.phase].guards = append(p.phases[g.phase].guards, g.literal)
	}
	return p
}

// onlyExcludes reports whether the arguments of a SecRuleUpdateTargetById
// (ID "TARGETS") only take targets away: one quoted list, every target
// in it negated.
func onlyExcludes(args string) bool {
	_, targets, ok := strings.Cut(strings.TrimSpace(args), " ")
	targets = strings.TrimSpace(targets)
	if !ok || len(targets) < 2 || targets[0] != '"' || targets[len(targets)-1] != '"' ||
		strings.Count(targets, `"`) != 2 {
		return false
	}
	for _, t := range strings.Split(targets[1:len(targets)-1], "|") {
		if !strings.HasPrefix(t, "!") {
			return false
		}
	}
	return true
}

// skipGuard is a rule with skip:N that the plan can stand beside: its
// phase, and the body processor it matches.
type skipGuard struct {
	phase   int
	literal string
}

// readSkipGuard reads a rule with skip:N. A rule that Coraza does not
// evaluate moves a skip's count on to the next rule, so where a skip may
// happen the plan must remove nothing; the plan knows when it cannot for
// one form only, the one CRS uses (920539): SecRule REQBODY_PROCESSOR
// "@streq LITERAL" with t:none, phase 1 or 2. ok is false for any other.
func readSkipGuard(r ruleDirective) (g skipGuard, ok bool) {
	if !r.secRule || r.vars != "REQBODY_PROCESSOR" || !strings.HasPrefix(r.op, "@streq ") {
		return g, false
	}
	g.literal = strings.TrimSpace(r.op[len("@streq "):])
	if g.literal == "" || strings.ContainsAny(g.literal, `%\"`) {
		return g, false
	}
	for _, a := range r.actions {
		name, value := actionValue(a)
		switch {
		case name == "phase" && (value == "1" || value == "request"):
			g.phase = 1
		case name == "phase" && value == "2":
			g.phase = 2
		case name == "t" && !strings.EqualFold(value, "none"), name == "chain", name == "multimatch":
			return g, false
		}
	}
	return g, g.phase != 0
}

// rootFS is the file system the build reads CRS through: stock CRS for a
// stock build, rewritten (fuse.go) for every other; before and after are
// the profile's directives.
func (s engineSettings) rootFS(before, after string) rootFS {
	if s.stock {
		return rootFS{}
	}
	return rootFS{fuse: true, ctlRanges: s.ctlTagRanges(before, after)}
}

// earlyBlocking reports whether the build adds earlyBlocking.
func (s engineSettings) earlyBlocking() bool {
	return s.cfg.EarlyBlocking == nil || *s.cfg.EarlyBlocking
}

// idAction finds the id actions of rules written anywhere in a text.
var idAction = regexp.MustCompile(`(?i)\bid\s*:\s*['"]?\s*(\d+)`)

// ctlTagRanges returns the tags of crsTagRanges whose
// ctl:ruleRemoveTargetByTag the build may serve by id range (fuse.go):
// those for which no SecLang the build loads besides CRS's rule files
// (edgeguard's base, settings, profile and early blocking, the extra
// setup, CRS's setup file, the packs' files; before and after are the
// profile's) names the tag, has an id in
// its range or updates the actions of a rule in it. Any of them could give
// the tag to a rule out of the range or add a rule to the range without
// it, and the by-id form would then act on other rules than the by-tag
// form. A pack file that cannot be read, or that includes other files (not
// read here), turns every range off.
func (s engineSettings) ctlTagRanges(before, after string) map[string]idRange {
	crs := crsTagRanges()
	if len(crs) == 0 {
		return nil
	}
	texts, ok := s.otherTexts(before, after)
	if !ok {
		return nil
	}
	var updated []idRange // ids and ranges of SecRuleUpdateActionById
	for _, t := range texts {
		unsure := false
		whole := eachDirective([]byte(t), func(directive string, _, _ int) {
			name, args, _ := strings.Cut(directive, " ")
			switch {
			case strings.EqualFold(name, "Include"):
				unsure = true
			case strings.EqualFold(name, "SecRuleUpdateActionById"):
				fields := strings.Fields(args)
				for _, f := range fields[:max(len(fields)-1, 0)] {
					r, err := parseIDRange(f)
					if err != nil {
						unsure = true
					}
					updated = append(updated, r)
				}
			}
		})
		if !whole || unsure {
			return nil
		}
	}
	ranges := map[string]idRange{}
	for tag, r := range crs {
		if !slices.ContainsFunc(texts, func(t string) bool { return mentions(t, tag, r) }) &&
			!slices.ContainsFunc(updated, r.overlaps) {
			ranges[tag] = r
		}
	}
	return ranges
}

// otherTexts returns the SecLang the build loads besides CRS's rule files:
// edgeguard's base, settings, profile (before and after) and early
// blocking, the extra setup, CRS's setup file and the packs' files. ok is
// false when a pack file cannot be read (Coraza reports it).
func (s engineSettings) otherTexts(before, after string) (texts []string, ok bool) {
	setup, err := fs.ReadFile(coreruleset.FS, "@crs-setup.conf.example")
	if err != nil {
		return nil, false
	}
	texts = []string{baseDirectives, s.directives(), s.extra, string(setup), s.crsSettings(), before, after}
	if s.earlyBlocking() {
		texts = append(texts, earlyBlocking)
	}
	pf := s.packFiles
	for _, f := range slices.Concat(pf.config, pf.before, pf.after, pf.rules) {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, false
		}
		texts = append(texts, string(b))
	}
	return texts, true
}

// mentions reports whether text names tag or has an id action in r.
func mentions(text, tag string, r idRange) bool {
	if strings.Contains(text, tag) {
		return true
	}
	for _, m := range idAction.FindAllStringSubmatch(text, -1) {
		id, err := strconv.Atoi(m[1])
		if err != nil || r.overlaps(idRange{id, id}) {
			return true
		}
	}
	return false
}

// parseIDRange reads an id (941100) or a range of them (941100-941200).
func parseIDRange(s string) (idRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	l, err := strconv.Atoi(lo)
	if err != nil {
		return idRange{}, fmt.Errorf("rule id %q: %w", s, err)
	}
	h, err := strconv.Atoi(hi)
	if err != nil {
		return idRange{}, fmt.Errorf("rule id %q: %w", s, err)
	}
	return idRange{l, h}, nil
}

// ruleLogged reports whether a matched rule would be written to a log (the
// rule has "log", not "nolog"): only those count as matches for CRS's tests.
func ruleLogged(mr types.MatchedRule) bool {
	if l, ok := mr.(interface{ Log() bool }); ok {
		return l.Log()
	}
	return true
}
