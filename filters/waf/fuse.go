package waf

import (
	"bytes"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"

	"github.com/edgeguard/edgeguard/filters/waf/rx"
	"github.com/edgeguard/edgeguard/filters/waf/transform"
)

// Coraza v3.8.1 caches each rule's transformed values per phase, keyed by
// the argument's position in the variable's values. For a map-backed
// collection (ARGS, REQUEST_HEADERS, REQUEST_COOKIES) that position changes
// from rule to rule, because Go randomises map iteration
// (corazawaf/coraza#1681): almost every lookup misses, the chain runs
// anyway, and its result is stored beside thousands of others. On a 2 KB
// JSON body the cache cost about ten times the transformations it saved.
//
// A rule without transformations skips the cache. So CRS's @rx rules are
// loaded with their transformations moved into the operator: the rule
// says t:none and @rxchain NAMES PATTERN, and the operator applies NAMES
// (edgeguard's exact copies of Coraza's, filters/waf/transform) before
// edgeguard's @rx. The operator sees the same value the rule's @rx saw
// before, so it matches and captures the same; only MATCHED_VAR, which
// Coraza sets from the value the operator was given, now holds the value
// as it came. That is why a rule is left as it is when it starts or
// continues a chain (chained rules read MATCHED_VAR and MATCHED_VARS), or
// is multiMatch (which evaluates every step of the chain).

// chainRxName is the operator the rewritten rules call.
const chainRxName = "rxchain"

// chainRxBuilt counts the @rxchain operators the process has built: the
// tests' proof that rules were fused at all.
var chainRxBuilt atomic.Int64

// chainRx is @rx applied after a chain of transformations.
type chainRx struct {
	steps []func(string) (string, bool, error)
	rx    plugintypes.Operator
}

// newChainRx builds @rxchain from "NAME[,NAME…] PATTERN".
func newChainRx(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	names, pattern, ok := strings.Cut(o.Arguments, " ")
	if !ok || names == "" {
		return nil, fmt.Errorf("@%s %.60q: want TRANSFORMATIONS PATTERN", chainRxName, o.Arguments)
	}
	c := &chainRx{}
	for _, n := range strings.Split(names, ",") {
		fn, ok := transform.Lookup(n)
		if !ok {
			return nil, fmt.Errorf("@%s: no transformation %q", chainRxName, n)
		}
		c.steps = append(c.steps, fn)
	}
	o.Arguments = strings.TrimSpace(pattern)
	inner, err := rx.New(o)
	if err != nil {
		return nil, err
	}
	c.rx = inner
	chainRxBuilt.Add(1)
	return c, nil
}

// Evaluate transforms value as Coraza would for the rule (a step that
// fails leaves the value as it was) and matches the result.
func (c *chainRx) Evaluate(tx plugintypes.TransactionState, value string) bool {
	for _, step := range c.steps {
		if out, _, err := step(value); err == nil {
			value = out
		}
	}
	return c.rx.Evaluate(tx, value)
}

// fuseRules returns src, a SecLang rule file, with every @rx rule that can
// take it rewritten to @rxchain (see above), and how many it rewrote, as
// rewriteDirectives writes them.
func fuseRules(src []byte) ([]byte, int) {
	childNext := false // the previous SecRule had "chain"
	return rewriteDirectives(src, func(directive string) (string, bool) {
		rewritten, isRule, chains, ok := fuseRule(directive)
		if !isRule {
			return "", false
		}
		child := childNext
		childNext = chains
		return rewritten, ok && !child
	})
}

// eachDirective calls visit with each directive of src joined as Coraza's
// parser joins lines (each line trimmed, blank and comment lines skipped,
// a trailing backslash continuing the directive), and the lines
// [first, end) of src it took. A directive still open at the end of src is
// not visited. It stops and returns false at a backtick block, which
// Coraza reads by other rules.
func eachDirective(src []byte, visit func(directive string, first, end int)) bool {
	lines := bytes.SplitAfter(src, []byte("\n"))
	for i := 0; i < len(lines); {
		first := i
		var logical strings.Builder
		for i < len(lines) {
			l := strings.TrimSpace(string(lines[i]))
			i++
			if l == "" || l[0] == '#' {
				if logical.Len() == 0 {
					break
				}
				continue
			}
			if strings.HasSuffix(l, "`") {
				return false
			}
			if body, more := strings.CutSuffix(l, `\`); more {
				logical.WriteString(body)
				continue
			}
			logical.WriteString(l)
			visit(logical.String(), first, i)
			break
		}
	}
	return true
}

// rewriteDirectives returns src with every directive that rewrite returns
// ok for replaced by the text it returns, and how many it replaced. A
// replaced directive is written on one line followed by as many empty
// lines as the rest of its lines took, so every later rule keeps its line
// number in Coraza's errors; every other byte is kept. A file with a
// backtick block is returned as it is.
func rewriteDirectives(src []byte, rewrite func(directive string) (string, bool)) ([]byte, int) {
	lines := bytes.SplitAfter(src, []byte("\n"))
	var out bytes.Buffer
	out.Grow(len(src))
	copied, rewritten := 0, 0
	whole := eachDirective(src, func(directive string, first, end int) {
		text, ok := rewrite(directive)
		if !ok {
			return
		}
		out.Write(bytes.Join(lines[copied:first], nil))
		out.WriteString(text)
		out.WriteString(strings.Repeat("\n", end-first))
		copied = end
		rewritten++
	})
	if !whole {
		return src, 0
	}
	out.Write(bytes.Join(lines[copied:], nil))
	return out.Bytes(), rewritten
}

// ruleDirective is a SecRule or SecAction directive cut where Coraza's
// rule parser cuts it.
type ruleDirective struct {
	// secRule is set for a SecRule, which has vars and op; a SecAction
	// has neither.
	secRule  bool
	vars, op string // op is the operator as written inside its quotes
	// head is the directive up to the quote that opens the action list.
	head    string
	actions []string // as splitActions cuts them
}

// readRule reads directive as Coraza's rule parser does. isRule says it is
// a SecRule or a SecAction, ok that it could be read.
func readRule(directive string) (r ruleDirective, isRule, ok bool) {
	name, opts, _ := strings.Cut(directive, " ")
	rest := strings.Trim(opts, " ")
	switch {
	case strings.EqualFold(name, "SecRule"):
		r.secRule = true
		var found bool
		r.vars, rest, found = strings.Cut(rest, " ")
		if !found || strings.HasPrefix(r.vars, `"`) {
			return r, true, false
		}
		if r.op, rest, found = cutQuoted(strings.TrimLeft(rest, " ")); !found {
			return r, true, false
		}
		if rest = strings.TrimLeft(rest, " "); rest == "" {
			// No actions, as a chained rule may be written.
			r.head = directive + " "
			return r, true, true
		}
	case strings.EqualFold(name, "SecAction"):
	default:
		return r, false, false
	}
	if len(rest) < 2 || rest[0] != '"' || rest[len(rest)-1] != '"' {
		return r, true, false
	}
	r.head = strings.TrimSuffix(directive, rest)
	r.actions = splitActions(rest[1 : len(rest)-1])
	return r, true, true
}

// String is the directive with its action list as r.actions has it.
func (r ruleDirective) String() string {
	return r.head + `"` + strings.Join(r.actions, ",") + `"`
}

// actionValue returns an action's name, lower-cased, and its value, as
// Coraza's rule parser reads them (trimmed, one pair of quotes removed).
func actionValue(action string) (name, value string) {
	name, value, _ = strings.Cut(action, ":")
	value = strings.TrimSpace(value)
	if len(value) >= 2 && (value[0] == '\'' || value[0] == '"') && value[len(value)-1] == value[0] {
		value = value[1 : len(value)-1]
	}
	return strings.ToLower(strings.TrimSpace(name)), value
}

// fuseRule rewrites one SecRule directive, read as Coraza's rule parser
// reads it. isRule says it is a SecRule; chains that it has the chain
// action (also when the rule cannot be read, so that the rule after it is
// never taken for one that starts a chain); ok that rewritten replaces it.
func fuseRule(directive string) (rewritten string, isRule, chains, ok bool) {
	r, isRule, readable := readRule(directive)
	if !isRule || !r.secRule {
		return "", false, false, false
	}
	if !readable {
		return "", true, true, false
	}
	op, items := r.op, r.actions
	var chain []string
	tAt, firstT := -1, ""
	multi := false
	for i, it := range items {
		key, val, _ := strings.Cut(it, ":")
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "chain":
			chains = true
		case "multimatch":
			multi = true
		case "t":
			name := strings.Trim(strings.TrimSpace(val), "'")
			if tAt < 0 {
				tAt, firstT = i, name
			}
			if strings.EqualFold(name, "none") {
				chain = chain[:0]
			} else {
				chain = append(chain, name)
			}
		}
	}
	negate, pattern := "", ""
	switch {
	case strings.HasPrefix(op, "@rx "):
		pattern = op[len("@rx "):]
	case strings.HasPrefix(op, "!@rx "):
		negate, pattern = "!", op[len("!@rx "):]
	default:
		return "", true, chains, false
	}
	// Only a chain that starts from t:none: without it the rule would also
	// inherit SecDefaultAction's transformations.
	if chains || multi || len(chain) == 0 || !strings.EqualFold(firstT, "none") || strings.Contains(pattern, "%{") {
		return "", true, chains, false
	}
	for _, n := range chain {
		if _, known := transform.Lookup(n); !known {
			return "", true, chains, false
		}
	}
	kept := make([]string, 0, len(items))
	for i, it := range items {
		key, _, _ := strings.Cut(it, ":")
		switch {
		case i == tAt:
			kept = append(kept, "t:none")
		case strings.EqualFold(strings.TrimSpace(key), "t"):
		default:
			kept = append(kept, it)
		}
	}
	return fmt.Sprintf(`SecRule %s "%s@%s %s %s" "%s"`, r.vars, negate, chainRxName, strings.Join(chain, ","),
		strings.TrimLeft(pattern, " "), strings.Join(kept, ",")), true, false, true
}

// cutQuoted reads a double-quoted string at the start of s as Coraza's rule
// parser does (a quote after an odd run of backslashes does not end it) and
// returns its inside, still escaped, and what follows.
func cutQuoted(s string) (inside, rest string, ok bool) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", false
	}
	backslashes := 0
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			backslashes++
		case s[i] == '"' && backslashes%2 == 0:
			return s[1:i], s[i+1:], true
		default:
			backslashes = 0
		}
	}
	return "", "", false
}

// splitActions splits an action list where Coraza's rule parser does: at
// the commas outside single quotes, a character after a backslash counting
// as neither, and the first character as neither either.
func splitActions(s string) []string {
	var items []string
	start, quoted := 0, false
	for i := 1; i < len(s); i++ {
		if s[i-1] == '\\' {
			continue
		}
		switch s[i] {
		case '\'':
			quoted = !quoted
		case ',':
			if !quoted {
				items = append(items, s[start:i])
				start = i + 1
			}
		}
	}
	return append(items, s[start:])
}

// CRS rule 941010 runs ctl:ruleRemoveTargetByTag=xss-perf-disable;
// REQUEST_FILENAME on every request whose file name has only safe bytes,
// and Coraza v3.8.1 serves it by comparing the tag with every tag of every
// loaded rule (some 700 rules): 6 % of the stage's CPU on a plain GET.
// ctl:ruleRemoveTargetById=LO-HI;TARGET removes the same target from the
// rules whose ids are in LO..HI, comparing integers. The two are the same
// action when the rules that carry the tag are exactly the rules with ids
// in LO..HI, among everything loaded: ctlTagRanges finds the tags for
// which CRS's own files say so, engineSettings.ctlTagRanges drops those
// that anything else loaded could make untrue (a pack's rule with the tag
// or with an id in the range), and rootFS rewrites CRS's files with
// ctlByIDRules.

// ctlByIDServed counts the ctls rootFS has served by id: the tests' proof
// that a build rewrote them at all.
var ctlByIDServed atomic.Int64

// idRange is the rule ids lo..hi, both included.
type idRange struct{ lo, hi int }

func (r idRange) String() string { return fmt.Sprintf("%d-%d", r.lo, r.hi) }

func (r idRange) overlaps(o idRange) bool { return r.lo <= o.hi && o.lo <= r.hi }

// ctlByTag is the ctl function that removes a target by tag.
const ctlByTag = "ruleRemoveTargetByTag"

// ctlTagRanges returns, for each tag that a ctl:ruleRemoveTargetByTag of
// files names, the range of ids it can be replaced by: the ids of the
// rules (SecRule and SecAction that do not continue a chain) that carry
// the tag are exactly the rule ids of files from the lowest to the highest
// of them. A tag no rule carries, or one mentioned by any other directive
// than a rule (SecDefaultAction, SecRuleUpdateActionById), has none. If a
// rule cannot be read, or a file has a backtick block, no tag has one.
func ctlTagRanges(files [][]byte) map[string]idRange {
	var (
		ids    []int
		tagged = map[string][]int{}
		named  = map[string]bool{}
		others []string // directives that are not rules
	)
	for _, src := range files {
		childNext, broken := false, false
		whole := eachDirective(src, func(directive string, _, _ int) {
			r, isRule, ok := readRule(directive)
			if !isRule {
				others = append(others, directive)
				return
			}
			if !ok {
				broken = true
				return
			}
			child := childNext
			childNext = false
			id, idErr := 0, error(nil)
			var tags []string
			for _, a := range r.actions {
				name, value := actionValue(a)
				switch name {
				case "chain":
					childNext = true
				case "id":
					id, idErr = strconv.Atoi(value)
				case "tag":
					tags = append(tags, value)
				case "ctl":
					if fn, arg, _ := strings.Cut(value, "="); fn == ctlByTag {
						tag, _, _ := strings.Cut(arg, ";")
						named[tag] = true
					}
				}
			}
			if child {
				// Coraza keeps a chained rule inside its parent: the ctl
				// walks only parents, by their tags and ids.
				return
			}
			if idErr != nil {
				broken = true
				return
			}
			ids = append(ids, id)
			for _, t := range tags {
				tagged[t] = append(tagged[t], id)
			}
		})
		if !whole || broken {
			return nil
		}
	}
	slices.Sort(ids)
	ranges := map[string]idRange{}
	for tag := range named {
		carriers := slices.Compact(slices.Sorted(slices.Values(tagged[tag])))
		if len(carriers) == 0 || slices.ContainsFunc(others, func(d string) bool { return strings.Contains(d, tag) }) {
			continue
		}
		r := idRange{carriers[0], carriers[len(carriers)-1]}
		from, _ := slices.BinarySearch(ids, r.lo)
		to, _ := slices.BinarySearch(ids, r.hi+1)
		if len(slices.Compact(slices.Clone(ids[from:to]))) == len(carriers) {
			ranges[tag] = r
		}
	}
	return ranges
}

// crsTagRanges is ctlTagRanges over CRS's embedded rule files.
var crsTagRanges = sync.OnceValue(func() map[string]idRange {
	names, err := fs.Glob(coreruleset.FS, "@owasp_crs/*.conf")
	if err != nil {
		return nil
	}
	files := make([][]byte, 0, len(names))
	for _, n := range names {
		b, err := fs.ReadFile(coreruleset.FS, n)
		if err != nil {
			return nil
		}
		files = append(files, b)
	}
	return ctlTagRanges(files)
})

// ctlByIDRules returns src with every ctl:ruleRemoveTargetByTag=TAG whose
// TAG ranges has rewritten to ctl:ruleRemoveTargetById=LO-HI, the target
// after it kept, and how many directives it rewrote, as rewriteDirectives
// writes them.
func ctlByIDRules(src []byte, ranges map[string]idRange) ([]byte, int) {
	return rewriteDirectives(src, func(directive string) (string, bool) {
		r, _, ok := readRule(directive)
		if !ok {
			return "", false
		}
		changed := false
		for i, a := range r.actions {
			name, value := actionValue(a)
			fn, arg, _ := strings.Cut(value, "=")
			if name != "ctl" || fn != ctlByTag {
				continue
			}
			tag, target, hasTarget := strings.Cut(arg, ";")
			rg, known := ranges[tag]
			if !known {
				continue
			}
			r.actions[i] = "ctl:ruleRemoveTargetById=" + rg.String()
			if hasTarget {
				r.actions[i] += ";" + target
			}
			changed = true
		}
		return r.String(), changed
	})
}
