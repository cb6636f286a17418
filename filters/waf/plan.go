package waf

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types/variables"

	"github.com/edgeguard/edgeguard/filters/waf/rx"
	"github.com/edgeguard/edgeguard/filters/waf/transform"
)

// Most of what a benign request costs Coraza v3.8.1 is spent around
// rules that do not match it, not in their operators: for each rule it
// copies the rule's variables out of their collections, expands the
// rule's msg and logdata macros, sets the RULE collection and looks up
// its transformation cache, whatever the operator then says. On a plain
// GET the operators were a fifth of the stage's CPU and the rest of the
// rule evaluation three fifths.
//
// The rule plan skips that work for @rxchain rules (fuse.go) whose
// prefilter says no to every value they could be given. At the start of
// phases 1 and 2 a rule of edgeguard's own (@rxplan) reads each variable
// such rules name once, transforms each value once per transformation
// chain, and asks every planned rule's prefilter (rx.Matcher.MayMatch)
// about the results; a rule for which every answer is no is removed for
// the transaction (as ctl:ruleRemoveById would), so Coraza passes over it.
// Where the prefilter says no, the operator would have said no for that
// value too, so such a rule cannot match and skipping it changes nothing
// a rule, a log or an interruption can see: it captures, counts and
// expands nothing when it does not match.
//
// The plan stays exact only under conditions it checks:
//   - It reads a superset of the values the rule would be given: the
//     whole collection for a rule that selects keys or excludes some
//     (statically or by ctl), so it may keep a rule it could skip, never
//     the reverse. Only collections that no rule changes within phases 1
//     and 2 are read (planCollections); a rule naming any other (TX,
//     MATCHED_VAR, a count) is not planned.
//   - A rule is planned only when it is exactly what CRS's file says: no
//     negated operator, no chain, no multiMatch, a phase of 1 or 2, and
//     no SecRuleUpdate*ById anywhere else in what the build loads names
//     it (engineSettings.planExclusions; a ByTag or ByMsg update, an
//     Include or an unreadable file turns the plan off).
//   - Its operator is found in rx's cache of compiled patterns under the
//     pattern read from the rule text, so the plan asks the very Matcher
//     the rule's operator holds; a rule whose pattern is not found (the
//     text read differently from Coraza's parser) is not planned.
//   - A skip:N counts only the rules Coraza evaluates, so a removed rule
//     would move a skip on to a rule that should have run: where a rule
//     with skip:N may match, nothing is removed (readSkipGuard).
//
// TestDifferential runs the regression inputs, the packs' tests and the
// generated attacks through the planned and the stock engine and requires
// the same interruptions and matched rule ids.

// rxPlanName is the operator of the planning rules.
const rxPlanName = "rxplan"

// planRuleIDs are the ids of the planning rules, phase 1 and 2, beside
// the ids of edgeguard's base (baseDirectives).
const (
	planRuleID1 = 200010
	planRuleID2 = 200011
)

// planCollections are the collections a planned rule may name: request
// data that Coraza fills before phase 1 (the request line, headers,
// cookies, query arguments) or before phase 2 (the body and what its
// processor made of it), and that no rule action changes afterwards.
var planCollections = map[variables.RuleVariable]bool{
	variables.Args: true, variables.ArgsNames: true,
	variables.ArgsGet: true, variables.ArgsGetNames: true,
	variables.ArgsPost: true, variables.ArgsPostNames: true,
	variables.RequestCookies: true, variables.RequestCookiesNames: true,
	variables.RequestHeaders: true, variables.RequestHeadersNames: true,
	variables.RequestFilename: true, variables.RequestBasename: true,
	variables.RequestURI: true, variables.RequestURIRaw: true,
	variables.RequestLine: true, variables.RequestMethod: true,
	variables.RequestProtocol: true, variables.QueryString: true,
	variables.RequestBody: true, variables.XML: true,
	variables.Files: true, variables.FilesNames: true,
	variables.MultipartPartHeaders: true,
}

// rulePlan is what the planning rules of one WAF know: per phase, the
// planned rules and the transformation chains they use.
type rulePlan struct {
	phases [3]phasePlan // indexed by phase; 0 unused
}

type phasePlan struct {
	// guards are the body processors for which a skip:N rule of the
	// phase matches (readSkipGuard): with one of them, nothing is removed.
	guards []string
	chains []transformChain
	vars   []variables.RuleVariable // every variable a rule of the phase names
	rules  []plannedRule
}

// transformChain is one sequence of transformations, as @rxchain applies
// it.
type transformChain []func(string) (string, bool, error)

func (c transformChain) apply(v string) string {
	for _, step := range c {
		if out, _, err := step(v); err == nil {
			v = out
		}
	}
	return v
}

type plannedRule struct {
	id    int
	chain int   // index in phasePlan.chains
	vars  []int // indexes in phasePlan.vars
	m     *rx.Matcher
}

// plannedTotal counts the rules the process's plans hold, and skipped the
// rules they removed from transactions: the tests' proof that the plan
// is built and used.
var plannedTotal, plannedSkipped atomic.Int64

// plans holds each build's plan under the key its planning rules name,
// from before the build parses them until it has finished.
var (
	plans   sync.Map // string → *rulePlan
	planSeq atomic.Int64
)

// buildRulePlan reads the rule files (as the build serves them, fused)
// and plans every rule it may; excluded says which ids something else
// loaded updates. A rule tagged with a paranoia level above maxPL (0: no
// limit) is left out: it never runs, so planning it would be wasted.
func buildRulePlan(files [][]byte, maxPL int, excluded func(id int) bool) *rulePlan {
	p := &rulePlan{}
	chainIdx := [3]map[string]int{{}, {}, {}}
	varIdx := [3]map[variables.RuleVariable]int{{}, {}, {}}
	for _, src := range files {
		childNext := false
		eachDirective(src, func(directive string, _, _ int) {
			r, isRule, ok := readRule(directive)
			if !isRule || !r.secRule {
				return
			}
			child := childNext
			childNext = !ok || hasAction(r.actions, "chain")
			if !ok || child {
				return
			}
			pr, phase, chainNames, vars, ok := planRule(r)
			if !ok || excluded(pr.id) || maxPL > 0 && paranoiaLevel(r) > maxPL {
				return
			}
			pp := &p.phases[phase]
			ci, seen := chainIdx[phase][chainNames]
			if !seen {
				var chain transformChain
				for _, n := range strings.Split(chainNames, ",") {
					fn, _ := transform.Lookup(n) // planRule checked each
					chain = append(chain, fn)
				}
				ci = len(pp.chains)
				chainIdx[phase][chainNames] = ci
				pp.chains = append(pp.chains, chain)
			}
			pr.chain = ci
			for _, v := range vars {
				vi, seen := varIdx[phase][v]
				if !seen {
					vi = len(pp.vars)
					varIdx[phase][v] = vi
					pp.vars = append(pp.vars, v)
				}
				pr.vars = append(pr.vars, vi)
			}
			pp.rules = append(pp.rules, pr)
		})
	}
	plannedTotal.Add(int64(len(p.phases[1].rules) + len(p.phases[2].rules)))
	return p
}

// planRule reads one fused rule; ok says it can be planned.
func planRule(r ruleDirective) (pr plannedRule, phase int, chain string, vars []variables.RuleVariable, ok bool) {
	if !r.secRule || !strings.HasPrefix(r.op, "@"+chainRxName+" ") {
		return pr, 0, "", nil, false
	}
	for _, a := range r.actions {
		name, value := actionValue(a)
		switch name {
		case "id":
			pr.id, _ = strconv.Atoi(value)
		case "phase":
			switch value {
			case "1", "request":
				phase = 1
			case "2":
				phase = 2
			}
		case "chain", "multimatch", "skip":
			return pr, 0, "", nil, false
		}
	}
	if pr.id <= 0 || phase == 0 {
		return pr, 0, "", nil, false
	}
	// The operator's arguments as Coraza's parser hands them to @rxchain:
	// \" unescaped, the rest trimmed, then cut as newChainRx cuts them.
	args := strings.TrimSpace(strings.ReplaceAll(r.op, `\"`, `"`)[len("@"+chainRxName+" "):])
	chain, pattern, found := strings.Cut(args, " ")
	if !found || chain == "" {
		return pr, 0, "", nil, false
	}
	for _, n := range strings.Split(chain, ",") {
		if _, known := transform.Lookup(n); !known {
			return pr, 0, "", nil, false
		}
	}
	m, found := rx.Compiled(strings.TrimSpace(pattern))
	if !found || !m.Prefiltered() {
		return pr, 0, "", nil, false
	}
	pr.m = m
	for _, part := range strings.Split(r.vars, "|") {
		if strings.HasPrefix(part, "!") {
			continue // an exclusion: the plan reads the whole collection
		}
		name, _, _ := strings.Cut(part, ":")
		v, err := variables.Parse(name)
		if err != nil || !planCollections[v] {
			return pr, 0, "", nil, false
		}
		vars = append(vars, v)
	}
	if len(vars) == 0 {
		return pr, 0, "", nil, false
	}
	return pr, phase, chain, vars, true
}

// paranoiaLevel is the level of CRS's paranoia-level/N tag on r, 0
// without one.
func paranoiaLevel(r ruleDirective) int {
	for _, a := range r.actions {
		if name, value := actionValue(a); name == "tag" {
			if n, ok := strings.CutPrefix(value, "paranoia-level/"); ok {
				level, _ := strconv.Atoi(n)
				return level
			}
		}
	}
	return 0
}

func hasAction(actions []string, want string) bool {
	for _, a := range actions {
		if name, _ := actionValue(a); name == want {
			return true
		}
	}
	return false
}

// rxPlan is the operator of a planning rule: "@rxplan KEY PHASE".
type rxPlan struct {
	plan  *rulePlan
	phase int
}

func newRxPlan(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	key, phase, _ := strings.Cut(o.Arguments, " ")
	p, ok := plans.Load(key)
	if !ok {
		return nil, fmt.Errorf("@%s %q: no rule plan by that key", rxPlanName, key)
	}
	n, err := strconv.Atoi(phase)
	if err != nil || n < 1 || n > 2 {
		return nil, fmt.Errorf("@%s %q: want a phase of 1 or 2", rxPlanName, o.Arguments)
	}
	return &rxPlan{plan: p.(*rulePlan), phase: n}, nil
}

// planScratch is one evaluation's working memory, reused.
type planScratch struct {
	values [][]string     // by variable index
	inputs [][][]rx.Input // by chain, then variable index; nil: not yet read
}

var planScratches = sync.Pool{New: func() any { return &planScratch{} }}

// Evaluate removes the phase's planned rules that cannot match, and never
// matches itself.
func (o *rxPlan) Evaluate(tx plugintypes.TransactionState, _ string) bool {
	pp := &o.plan.phases[o.phase]
	remover, ok := tx.(ruleRemover)
	if !ok || len(pp.rules) == 0 {
		return false
	}
	if len(pp.guards) > 0 {
		if col := tx.Collection(variables.ReqbodyProcessor); col != nil {
			for _, md := range col.FindAll() {
				if slices.Contains(pp.guards, md.Value()) {
					return false
				}
			}
		}
	}
	s := planScratches.Get().(*planScratch)
	defer planScratches.Put(s)
	s.reset(len(pp.chains), len(pp.vars))
	for i := range pp.rules {
		r := &pp.rules[i]
		if !o.mayMatch(tx, s, pp, r) {
			remover.RemoveRuleByID(r.id)
			plannedSkipped.Add(1)
		}
	}
	return false
}

func (o *rxPlan) mayMatch(tx plugintypes.TransactionState, s *planScratch, pp *phasePlan, r *plannedRule) bool {
	for _, vi := range r.vars {
		ins := s.inputs[r.chain][vi]
		if ins == nil {
			if s.values[vi] == nil {
				s.values[vi] = collectionValues(tx, pp.vars[vi])
			}
			ins = make([]rx.Input, 0, len(s.values[vi])) // not nil: read
			for _, v := range s.values[vi] {
				ins = append(ins, rx.NewInput(pp.chains[r.chain].apply(v)))
			}
			s.inputs[r.chain][vi] = ins
		}
		for j := range ins {
			if r.m.MayMatch(&ins[j]) {
				return true
			}
		}
	}
	return false
}

// collectionValues is every value of v's collection: what the rule would
// be given, and more where it selects or excludes keys.
func collectionValues(tx plugintypes.TransactionState, v variables.RuleVariable) []string {
	col := tx.Collection(v)
	if col == nil {
		return []string{}
	}
	all := col.FindAll()
	out := make([]string, 0, len(all))
	for _, md := range all {
		out = append(out, md.Value())
	}
	return out
}

func (s *planScratch) reset(chains, vars int) {
	s.values = resize(s.values, vars)
	if cap(s.inputs) < chains {
		s.inputs = make([][][]rx.Input, chains)
	}
	s.inputs = s.inputs[:chains]
	for i := range s.inputs {
		s.inputs[i] = resize(s.inputs[i], vars)
	}
}

// resize returns s with n elements, all nil.
func resize[T any](s [][]T, n int) [][]T {
	if cap(s) < n {
		return make([][]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}
