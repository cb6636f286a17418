package rx

import (
	"regexp/syntax"
	"testing"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// TestCaptures pins what a capturing rule writes to TX, on both engines:
// the whole match and groups 1 to 8 (Coraza stops before group 9), an
// empty string for a group that did not take part.
func TestCaptures(t *testing.T) {
	tests := []struct {
		pattern, input string
		want           map[int]string
	}{
		{`(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)`, "xabcdefghijx", map[int]string{0: "abcdefghij", 1: "a", 2: "b", 3: "c", 4: "d", 5: "e", 6: "f", 7: "g", 8: "h"}},
		{`(x)?y(z)`, "yz", map[int]string{0: "yz", 1: "", 2: "z"}},
		{`^(\w+)=(.*)$`, "key=va\nlue", map[int]string{0: "key=va\nlue", 1: "key", 2: "va\nlue"}}, // (?s): dot takes the newline
		{`^b$`, "a\nb\nc", map[int]string{0: "b"}},                                                // (?m): ^ and $ at line breaks
		{`(a.c)`, "xa\xffc", map[int]string{0: "a\xffc", 1: "a\xffc"}},                            // not UTF-8: Go's regexp decides
		{`(\xff+)`, "a\xff\xffb", map[int]string{0: "\xff\xff", 1: "\xff\xff"}},                   // a byte pattern
		{`(nomatch)`, "abc", nil},
	}
	for _, tt := range tests {
		op, err := New(plugintypes.OperatorOptions{Arguments: tt.pattern})
		if err != nil {
			t.Fatalf("%s: %v", tt.pattern, err)
		}
		tx := &captureTx{capturing: true}
		if got := op.Evaluate(tx, tt.input); got != (tt.want != nil) {
			t.Errorf("%s on %q: %v", tt.pattern, tt.input, got)
		}
		if !mapsEqual(tx.fields, tt.want) {
			t.Errorf("%s on %q: captured %v, want %v", tt.pattern, tt.input, tx.fields, tt.want)
		}
		plain := &captureTx{}
		if got := op.Evaluate(plain, tt.input); got != (tt.want != nil) || plain.fields != nil {
			t.Errorf("%s on %q, not capturing: %v, captured %v", tt.pattern, tt.input, got, plain.fields)
		}
	}
}

func TestNewRefusesBadPatterns(t *testing.T) {
	for _, p := range []string{`(`, `a{2,1}`, `\xff(`} {
		if _, err := New(plugintypes.OperatorOptions{Arguments: p}); err == nil {
			t.Errorf("%q compiled", p)
		}
	}
}

// TestDependsOnUnicodeTables pins which patterns send non-ASCII input to
// Go's regexp: those whose meaning there comes from Unicode tables, which
// RE2 and Go may hold at different versions.
func TestDependsOnUnicodeTables(t *testing.T) {
	tests := []struct {
		pattern string
		want    bool
	}{
		{`abc`, false},
		{`(?i)abc`, false},
		{`(?i)kes`, true}, // k folds to the Kelvin sign, s to the long s
		{`\pL+`, true},
		{`[à-ÿ]`, true},
		{`(?i)é`, true},
		{`é`, false}, // a literal rune is the same in every version
		{`[^a-z]`, false},
		{`.`, false},
		{`\w\s\d\b`, false},
	}
	for _, tt := range tests {
		re, err := syntax.Parse("(?sm)"+tt.pattern, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if got := dependsOnUnicodeTables(re); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.pattern, got, tt.want)
		}
	}
}

// TestCompiledAndMayMatch: Compiled finds the Matcher New built for a
// pattern (none for one never compiled or for a byte pattern, which New
// leaves to binaryregexp), and MayMatch over a NewInput answers what the
// Matcher's own prefilter answers for the string.
func TestCompiledAndMayMatch(t *testing.T) {
	const pattern = `(?i)\bunion\b.{1,100}?\bselect\b`
	op, err := New(plugintypes.OperatorOptions{Arguments: pattern})
	if err != nil {
		t.Fatal(err)
	}
	m, ok := Compiled(pattern)
	if !ok || m != op.(*Matcher) || !m.Prefiltered() {
		t.Fatalf("Compiled(%q) = %p, %v; want New's %p, with a prefilter", pattern, m, ok, op)
	}
	if _, ok := Compiled(`edgeguard-never-compiled-\d`); ok {
		t.Error("Compiled found a pattern nothing compiled")
	}
	if _, err := New(plugintypes.OperatorOptions{Arguments: `\xff\xfe`}); err != nil {
		t.Fatal(err)
	}
	if _, ok := Compiled(`\xff\xfe`); ok {
		t.Error("Compiled returned a Matcher for a byte pattern")
	}
	for _, s := range append(adversarialInputs(), "1 UNION ALL SELECT x", "union", "") {
		in := NewInput(s)
		if got, want := m.MayMatch(&in), m.pre.mayMatch(s); got != want {
			t.Errorf("MayMatch(%.40q) = %v, the prefilter says %v", s, got, want)
		}
		if !m.MayMatch(&in) && m.MatchString(s) {
			t.Errorf("MayMatch rules out %.40q, which matches", s)
		}
	}
}
