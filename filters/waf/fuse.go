package waf

import (
	"bytes"
	"fmt"
	"strings"
	"sync/atomic"

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
// take it rewritten to @rxchain (see above), and how many it rewrote. It
// joins lines as Coraza's parser does (each line trimmed, blank and comment
// lines skipped, a trailing backslash continuing the directive). A
// rewritten rule is written on one line followed by as many empty lines as
// the rest of its lines took, so every later rule keeps its line number in
// Coraza's errors. A file with a backtick block is returned as it is.
func fuseRules(src []byte) ([]byte, int) {
	lines := bytes.SplitAfter(src, []byte("\n"))
	var out bytes.Buffer
	out.Grow(len(src))
	fused := 0
	childNext := false // the previous SecRule had "chain"
	for i := 0; i < len(lines); {
		start := i
		var logical strings.Builder
		complete := false
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
				return src, 0
			}
			if body, more := strings.CutSuffix(l, `\`); more {
				logical.WriteString(body)
				continue
			}
			logical.WriteString(l)
			complete = true
			break
		}
		if complete {
			rewritten, isRule, chains, ok := fuseRule(logical.String())
			if isRule {
				child := childNext
				childNext = chains
				if ok && !child {
					out.WriteString(rewritten)
					out.WriteString(strings.Repeat("\n", i-start))
					fused++
					continue
				}
			}
		}
		for _, l := range lines[start:i] {
			out.Write(l)
		}
	}
	return out.Bytes(), fused
}

// fuseRule rewrites one SecRule directive, read as Coraza's rule parser
// reads it. isRule says it is a SecRule; chains that it has the chain
// action (also when the rule cannot be read, so that the rule after it is
// never taken for one that starts a chain); ok that rewritten replaces it.
func fuseRule(directive string) (rewritten string, isRule, chains, ok bool) {
	name, opts, _ := strings.Cut(directive, " ")
	if !strings.EqualFold(name, "SecRule") {
		return "", false, false, false
	}
	vars, rest, found := strings.Cut(strings.Trim(opts, " "), " ")
	if !found || strings.HasPrefix(vars, `"`) {
		return "", true, true, false
	}
	op, rest, found := cutQuoted(strings.TrimLeft(rest, " "))
	if !found {
		return "", true, true, false
	}
	rest = strings.TrimLeft(rest, " ")
	if len(rest) < 2 || rest[0] != '"' || rest[len(rest)-1] != '"' {
		return "", true, true, false
	}
	items := splitActions(rest[1 : len(rest)-1])
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
	return fmt.Sprintf(`SecRule %s "%s@%s %s %s" "%s"`, vars, negate, chainRxName, strings.Join(chain, ","),
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
