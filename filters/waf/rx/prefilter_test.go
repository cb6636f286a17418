package rx

import (
	"fmt"
	"regexp/syntax"
	"strings"
	"testing"
)

// String writes a condition the way the table below spells it.
func (c *cond) String() string {
	switch {
	case c == nil:
		return "TRUE"
	case c.lit != "":
		return fmt.Sprintf("%q", c.lit)
	}
	op, subs := "OR", c.or
	if c.and != nil {
		op, subs = "AND", c.and
	}
	parts := make([]string, len(subs))
	for i, s := range subs {
		parts[i] = s.String()
	}
	return op + "(" + strings.Join(parts, " ") + ")"
}

func TestPrefilterCondition(t *testing.T) {
	tests := []struct {
		pattern string
		want    string
	}{
		{`union`, `"union"`},
		{`(?i)UNION`, `"union"`},
		// s and k fold outside ASCII under (?i): they break the literal.
		{`(?i)select`, `"elect"`},
		{`(?i)desk`, `"de"`},
		{`[sS]elect`, `"select"`}, // a class of two spelled-out runes is safe
		{`ab?c`, `OR("abc" "ac")`},
		{`a.b`, `AND("a" "b")`},
		{`a+b`, `AND("a" "b")`},
		{`(?:foo|bar)\s+baz`, `AND(OR("bar" "foo") "baz")`},
		{`(?:bzip2|ssh2(?:.(?:shell|exec))?)://`, `AND(OR("bzip2" "ssh2") "://")`},
		{`x*`, `TRUE`},
		{`\d+`, `TRUE`},
		{`a|.`, `TRUE`},
		{`a{0,3}b`, `"b"`},
		{`a{2,3}b`, `AND("a" "b")`},
		{`é\x{fffd}z`, `AND("é" "z")`}, // U+FFFD also matches a byte that is not UTF-8
		{`(?i)é`, `TRUE`},
		{`^GET$`, `"get"`},
		{`[abcde]x`, `"x"`}, // five runes: more than a class spells out
		{`[éè]x`, `"x"`},    // classes are spelled out in ASCII only
		{`[\x{fffd}a]x`, `"x"`},
		{`[ab][cd][ef][gh][ij]`, `AND(OR("aceg" "aceh" "acfg" "acfh" "adeg" "adeh" "adfg" "adfh" "bceg" "bceh" "bcfg" "bcfh" "bdeg" "bdeh" "bdfg" "bdfh") OR("i" "j"))`},
	}
	for _, tt := range tests {
		re, err := syntax.Parse("(?sm)"+tt.pattern, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		if got := analyze(re).condition().String(); got != tt.want && !sameSet(got, tt.want) {
			t.Errorf("%s: condition %s, want %s", tt.pattern, got, tt.want)
		}
	}
}

// sameSet compares two conditions up to the order of an OR's literals.
func sameSet(a, b string) bool {
	sortWords := func(s string) string {
		f := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '(' || r == ')' })
		m := map[string]int{}
		for _, w := range f {
			m[w]++
		}
		return fmt.Sprint(m)
	}
	return sortWords(a) == sortWords(b)
}

func TestPrefilterMayMatch(t *testing.T) {
	tests := []struct {
		pattern, input string
		want           bool
	}{
		{`(?i)union\s+select`, "1 UNION SELECT 2", true},
		{`(?i)union\s+select`, "1 UNION ſELECT 2", true}, // long s: the regexp matches
		{`(?i)union\s+select`, "1 uni0n select", false},
		{`(?i)union\s+select`, "", false},
		{`(?:bzip2|expect|glob|ogg|phar|rar|ssh2|zip|zlib)://`, "GLOB://x", true},
		{`(?:bzip2|expect|glob|ogg|phar|rar|ssh2|zip|zlib)://`, "glob:/x", false},
		{`(?:bzip2|expect|glob|ogg|phar|rar|ssh2|zip|zlib)://`, "zli://", false},
		{`é+`, "caf\xc3\xa9", true},
		{`é+`, "caf\xc3", false},
		{`(?:ab|cd)+x(?:ef|gh)`, "CDxGH", true},
		{`(?:ab|cd)+x(?:ef|gh)`, "CDxG", false},
	}
	for _, tt := range tests {
		re, err := syntax.Parse("(?sm)"+tt.pattern, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		pre := newPrefilter(re)
		if pre == nil {
			t.Fatalf("%s: no prefilter", tt.pattern)
		}
		if got := pre.mayMatch(tt.input); got != tt.want {
			t.Errorf("%s on %q: mayMatch %v, want %v", tt.pattern, tt.input, got, tt.want)
		}
	}
}

// TestPrefilterSummary: the length and the bytes a pattern's condition
// needs, which rule an input out before the tree is walked.
func TestPrefilterSummary(t *testing.T) {
	tests := []struct {
		pattern string
		minLen  int
		need    string // every byte in it, lower-cased
	}{
		{`union`, 5, "nuio"},
		{`(?i)UNION\s+SELECT`, 5, "unioelct"}, // AND: the longest part, every byte
		{`(?:foo|bar)baz`, 6, "baz"},          // concatenated into foobaz and barbaz
		{`(?:foo|barbar)\s+(?:baz|x)`, 3, ""}, // OR: the shortest, the shared bytes
		{`(?:cat|act)\s*/`, 3, "act/"},
		{`(?:abc|abd)\s+`, 3, "ab"},
		{`é.x`, 2, "\xc3\xa9x"},
	}
	for _, tt := range tests {
		re, err := syntax.Parse("(?sm)"+tt.pattern, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		pre := newPrefilter(re)
		if pre == nil {
			t.Fatalf("%s: no prefilter", tt.pattern)
		}
		if pre.minLen != tt.minLen || pre.need != bytesOf(tt.need) {
			t.Errorf("%s: minLen %d, need %v; want %d, bytes of %q", tt.pattern, pre.minLen, pre.need, tt.minLen, tt.need)
		}
	}
}

// TestBytesOf: the set stands for each byte and, for upper-case letters,
// their lower case; bytes above 127 fold onto the byte 128 below.
func TestBytesOf(t *testing.T) {
	tests := []struct {
		in, has, hasNot string
	}{
		{"Select", "selectS", "ELCTx"},
		{"a-1 z", "a-1 z", "bAZ0"},
		{"\xe9", "\xe9i", "\xe8"}, // 0xE9 - 128 is 'i'
		{"", "", "a\x00"},
	}
	for _, tt := range tests {
		set := bytesOf(tt.in)
		for i := 0; i < len(tt.has); i++ {
			if one := bytesOf(tt.has[i : i+1]); !one.within(&set) {
				t.Errorf("bytesOf(%q) lacks %q", tt.in, tt.has[i])
			}
		}
		for i := 0; i < len(tt.hasNot); i++ {
			var one byteSet
			one.add(tt.hasNot[i])
			if one.within(&set) {
				t.Errorf("bytesOf(%q) has %q", tt.in, tt.hasNot[i])
			}
		}
	}
}

func TestMatchesArbitraryBytes(t *testing.T) {
	tests := []struct {
		pattern string
		want    bool
	}{
		{`abc`, false},
		{`\x41\x42`, false},
		{`[\x80-\xff]`, true},
		{`\x{ff}abc`, true},
		{`\x{41}abc`, false},
		{`a\\xff0`, true}, // Coraza reads the escaped backslash's x too
		{`ab\xff`, true},
		{`\x{100}`, false}, // Coraza reads it as \x10
		{`\xzz00`, false},
		{`é`, false},
	}
	for _, tt := range tests {
		if got := matchesArbitraryBytes(tt.pattern); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.pattern, got, tt.want)
		}
	}
}
