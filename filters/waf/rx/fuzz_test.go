package rx

import (
	"regexp"
	"regexp/syntax"
	"sync"
	"testing"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

type checked struct {
	pattern string
	std     *regexp.Regexp
	pre     *prefilter
}

var (
	crsCheckedOnce sync.Once
	crsChecked     []checked
)

// FuzzPrefilter holds the prefilter to its one promise: where it says no,
// Go's regexp (Coraza's engine) finds no match. Every fuzzed input is run
// through every CRS pattern that has a prefilter, and through the fuzzed
// pattern itself when it compiles, so the derivation is tried on trees CRS
// does not have. It also checks that the whole operator agrees with Go's
// regexp on the fuzzed pattern.
func FuzzPrefilter(f *testing.F) {
	for _, s := range adversarialInputs()[:40] {
		f.Add(`(?i)union\s+select`, s)
	}
	f.Add(`(?i)k[s]+\x{17f}`, "KSſ")
	f.Add(`ab(c|d)?e+`, "xxABDEEE")
	f.Add(`^(?:GET|HEAD)$`, "get")
	f.Add(`[^a]b\x{fffd}c`, "xb\xffc")
	crsCheckedOnce.Do(func() {
		for _, p := range allCRSPatterns(f) {
			if op, err := New(plugintypes.OperatorOptions{Arguments: p}); err == nil {
				if m, ok := op.(*Matcher); ok && m.pre != nil {
					crsChecked = append(crsChecked, checked{p, m.std, m.pre})
				}
			}
		}
	})
	f.Fuzz(func(t *testing.T, pattern, input string) {
		if len(input) > 1024 {
			return // each exec runs ~260 regexps: keep the fuzzer moving
		}
		for _, c := range crsChecked {
			if !c.pre.mayMatch(input) && c.std.MatchString(input) {
				t.Fatalf("CRS pattern %q: the prefilter rules out %q, which matches", c.pattern, input)
			}
		}
		expr := "(?sm)" + pattern
		if len(pattern) > 200 || matchesArbitraryBytes(pattern) {
			return
		}
		std, err := regexp.Compile(expr)
		if err != nil {
			return
		}
		tree, err := syntax.Parse(expr, syntax.Perl)
		if err != nil {
			t.Fatalf("regexp compiles %q, syntax does not: %v", expr, err)
		}
		if pre := newPrefilter(tree); pre != nil && !pre.mayMatch(input) && std.MatchString(input) {
			t.Fatalf("pattern %q: the prefilter rules out %q, which matches", pattern, input)
		}
		m, err := compile(expr)
		if err != nil {
			t.Fatalf("compile %q: %v", expr, err)
		}
		if got, want := m.MatchString(input), std.MatchString(input); got != want {
			t.Fatalf("pattern %q, input %q: operator %v, Go's regexp %v", pattern, input, got, want)
		}
	})
}
