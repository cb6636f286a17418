package rx

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/wasilibs/go-re2"
	"rsc.io/binaryregexp"
)

// Name is the operator's SecLang name.
const Name = "rx"

// maxCaptures is how many groups Coraza's @rx writes to TX (the whole match
// and groups 1 to 8: it stops before group 9).
const maxCaptures = 9

// Register makes this package's operator Coraza's @rx for every rule parsed
// afterwards, in every WAF of the process. Rules parsed before keep
// Coraza's own.
func Register() { plugins.RegisterOperator(Name, New) }

// New compiles options.Arguments the way Coraza's @rx does, wrapped in
// (?sm): dot matches newlines and ^/$ match at line breaks.
func New(options plugintypes.OperatorOptions) (plugintypes.Operator, error) {
	if matchesArbitraryBytes(options.Arguments) {
		// Coraza compiles such a pattern unwrapped, with binaryregexp.
		re, err := memoize(options.Memoizer, "edgeguard/rx/bin:"+options.Arguments, func() (any, error) {
			re, err := binaryregexp.Compile(options.Arguments)
			if err != nil {
				return nil, fmt.Errorf("rx: compiling byte pattern %q: %w", options.Arguments, err)
			}
			return re, nil
		})
		if err != nil {
			return nil, err
		}
		return &binaryOperator{re: re.(*binaryregexp.Regexp)}, nil
	}
	return compileCached("(?sm)" + options.Arguments)
}

func memoize(m plugintypes.Memoizer, key string, fn func() (any, error)) (any, error) {
	if m == nil {
		return fn()
	}
	return m.Do(key, fn)
}

// compiled holds every Matcher the process has built, by wrapped pattern.
// Coraza's memoizer drops a WAF's entries when the WAF is closed, so each
// reload would compile every CRS pattern again, and RE2's compile costs far
// more than Go's. The cache grows only with distinct patterns of the rule
// files ever loaded (CRS has about 300), which a reload rarely adds to.
var compiled sync.Map // string → *Matcher

func compileCached(expr string) (*Matcher, error) {
	if m, ok := compiled.Load(expr); ok {
		return m.(*Matcher), nil
	}
	m, err := compile(expr)
	if err != nil {
		return nil, err
	}
	actual, _ := compiled.LoadOrStore(expr, m)
	return actual.(*Matcher), nil
}

// Matcher is one compiled @rx pattern. It is safe for concurrent use.
type Matcher struct {
	std *regexp.Regexp
	// fast is nil when RE2 refuses the pattern.
	fast *re2.Regexp
	// unicodeTables: the pattern's meaning outside ASCII depends on Unicode
	// tables, so input outside ASCII goes to std.
	unicodeTables bool
	// pre is nil when the pattern has no literal every match must contain.
	pre *prefilter
}

// compile builds the Matcher for expr, the already wrapped pattern.
func compile(expr string) (*Matcher, error) {
	std, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("rx: compiling %q: %w", expr, err)
	}
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("rx: parsing %q: %w", expr, err)
	}
	m := &Matcher{std: std, unicodeTables: dependsOnUnicodeTables(tree), pre: newPrefilter(tree)}
	if fast, err := re2.Compile(expr); err == nil && fast.NumSubexp() == std.NumSubexp() {
		m.fast = fast
	}
	return m, nil
}

// Evaluate reports whether value matches; when the rule captures, it
// writes the whole match and groups 1 to 8 to TX.0..TX.8 as Coraza does
// (a group that did not take part is written empty).
func (m *Matcher) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if m.pre != nil && !m.pre.mayMatch(value) {
		return false
	}
	if !tx.Capturing() {
		if m.useFast(value) {
			return m.fast.MatchString(value)
		}
		return m.std.MatchString(value)
	}
	var loc []int
	if m.useFast(value) {
		loc = m.fast.FindStringSubmatchIndex(value)
	} else {
		loc = m.std.FindStringSubmatchIndex(value)
	}
	if loc == nil {
		return false
	}
	for i := 0; i < len(loc)/2 && i < maxCaptures; i++ {
		if loc[2*i] < 0 {
			tx.CaptureField(i, "")
			continue
		}
		tx.CaptureField(i, value[loc[2*i]:loc[2*i+1]])
	}
	return true
}

// MatchString is Evaluate without a transaction: the prefilter, then the
// engine Evaluate would pick. The tests compare it with Go's regexp.
func (m *Matcher) MatchString(value string) bool {
	if m.pre != nil && !m.pre.mayMatch(value) {
		return false
	}
	if m.useFast(value) {
		return m.fast.MatchString(value)
	}
	return m.std.MatchString(value)
}

// useFast reports whether RE2 decides value exactly as Go's regexp would.
func (m *Matcher) useFast(value string) bool {
	if m.fast == nil {
		return false
	}
	for i := 0; i < len(value); i++ {
		if value[i] >= utf8.RuneSelf {
			return !m.unicodeTables && utf8.ValidString(value[i:])
		}
	}
	return true
}

// dependsOnUnicodeTables reports whether some part of re matches a
// non-ASCII rune by way of a Unicode table rather than by spelling it: a
// case-folded literal whose fold orbit leaves ASCII (k folds to the Kelvin
// sign), or a class that takes some but not all of the runes above ASCII
// (\pL, (?i)k, [à-ÿ]). Classes that take all of them ([^a-z], .) and
// literal non-ASCII runes mean the same under any Unicode version.
func dependsOnUnicodeTables(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 {
			for _, r := range re.Rune {
				if !foldsWithinASCII(r) {
					return true
				}
			}
		}
	case syntax.OpCharClass:
		if !allOrNoneAboveASCII(re.Rune) {
			return true
		}
	}
	for _, sub := range re.Sub {
		if dependsOnUnicodeTables(sub) {
			return true
		}
	}
	return false
}

// foldsWithinASCII reports whether r and every rune it case-folds to are
// ASCII.
func foldsWithinASCII(r rune) bool {
	if r >= utf8.RuneSelf {
		return false
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if f >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// allOrNoneAboveASCII reports whether the class ranges (sorted, disjoint
// lo-hi pairs, as regexp/syntax keeps them) cover either none or all of
// U+0080..U+10FFFF.
func allOrNoneAboveASCII(ranges []rune) bool {
	var above []rune
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		if hi < utf8.RuneSelf {
			continue
		}
		above = append(above, max(lo, utf8.RuneSelf), hi)
	}
	if len(above) == 0 {
		return true
	}
	return len(above) == 2 && above[0] == utf8.RuneSelf && above[1] == unicode.MaxRune
}

// matchesArbitraryBytes makes the choice Coraza v3.8.1 makes between Go's
// regexp and binaryregexp: decode the pattern's \xHH and \x{HH} escapes to
// bytes (other backslashes pass through, one character at a time) and see
// whether the result is still UTF-8. Its quirks are kept on purpose
// (\x{100} reads as \x10; in \\xff the x of an escaped backslash is
// decoded), since any other choice compiles some pattern differently.
func matchesArbitraryBytes(expr string) bool {
	decoded := make([]byte, 0, len(expr))
	for i := 0; i < len(expr); i++ {
		if expr[i] != '\\' {
			decoded = append(decoded, expr[i])
			continue
		}
		if i+3 >= len(expr) {
			decoded = append(decoded, expr[i:]...)
			break
		}
		b, width, ok := hexEscape(expr[i:])
		if !ok {
			decoded = append(decoded, '\\')
			continue
		}
		decoded = append(decoded, b)
		i += width - 1
	}
	return !utf8.Valid(decoded)
}

// hexEscape decodes the \xHH or \x{HH...} at the start of s into one byte;
// width is how many characters of s it consumed, the closing brace
// included.
func hexEscape(s string) (b byte, width int, ok bool) {
	if s[1] != 'x' {
		return 0, 0, false
	}
	digits, width := s[2:], 4
	if len(s) >= 6 && s[2] == '{' {
		for j := 3; j < len(s); j++ {
			if s[j] == '}' {
				digits, width = s[3:j], j+1
				break
			}
		}
	}
	if len(digits) < 2 {
		return 0, 0, false
	}
	v, err := strconv.ParseUint(digits[:2], 16, 8)
	if err != nil {
		return 0, 0, false
	}
	return byte(v), width, true
}

// binaryOperator is @rx over a pattern that matches bytes outside UTF-8.
type binaryOperator struct {
	re *binaryregexp.Regexp
}

func (o *binaryOperator) Evaluate(tx plugintypes.TransactionState, value string) bool {
	if !tx.Capturing() {
		return o.re.MatchString(value)
	}
	groups := o.re.FindStringSubmatch(value)
	if groups == nil {
		return false
	}
	for i := 0; i < len(groups) && i < maxCaptures; i++ {
		tx.CaptureField(i, groups[i])
	}
	return true
}

var (
	_ plugintypes.Operator        = (*Matcher)(nil)
	_ plugintypes.Operator        = (*binaryOperator)(nil)
	_ plugintypes.OperatorFactory = New
)

// Input is a value read once for any number of prefilters: its length and
// the set of its bytes, which every Matcher's prefilter would otherwise
// work out again.
type Input struct {
	s       string
	present byteSet
}

// NewInput reads s for MayMatch.
func NewInput(s string) Input { return Input{s: s, present: bytesOf(s)} }

// Prefiltered reports whether m has a prefilter: whether MayMatch can ever
// say no.
func (m *Matcher) Prefiltered() bool { return m.pre != nil }

// MayMatch is false only when m cannot match in's value: it is the
// prefilter alone, the first thing Evaluate and MatchString ask, so where
// it says no they say no too.
func (m *Matcher) MayMatch(in *Input) bool {
	if m.pre == nil {
		return true
	}
	if len(in.s) < m.pre.minLen {
		return false
	}
	return m.pre.eval(in.s, &in.present)
}

// Compiled returns the Matcher New built for pattern (an @rx rule's
// argument as Coraza hands it over), if any WAF of the process has
// compiled it; a byte pattern, which New leaves to binaryregexp, has none.
func Compiled(pattern string) (*Matcher, bool) {
	if matchesArbitraryBytes(pattern) {
		return nil, false
	}
	m, ok := compiled.Load("(?sm)" + pattern)
	if !ok {
		return nil, false
	}
	return m.(*Matcher), true
}
