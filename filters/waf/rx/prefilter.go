package rx

import (
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	ahocorasick "github.com/petar-dambovaliev/aho-corasick"
)

// The prefilter is a necessary condition on the input, derived bottom-up
// from the syntax tree (the idea of RE2's own prefilter): each node is
// either exact, a small set of strings one of which is exactly what it
// matches, or inexact, with a condition (an AND/OR tree over literals)
// that every input it matches in satisfies. Literals are compared
// ASCII-case-insensitively whatever the pattern's flags say: that only
// makes "maybe" more frequent.
//
// A rune joins a literal only if every rune it can match is spelled by the
// same bytes up to ASCII case: an ASCII rune, unless case folding takes it
// outside ASCII (under (?i), k also matches the Kelvin sign and s the long
// s); or a non-ASCII rune matched literally, except U+FFFD, which Go's
// regexp also reads from a byte that is not UTF-8. Any other rune breaks
// the literal around it.

// maxExact bounds an exact set; past it the node becomes inexact. maxClass
// is the largest character class spelled out as an exact set.
const (
	maxExact = 16
	maxClass = 4
)

// cond is a necessary condition: a literal occurs (lit), all of and hold,
// or one of or holds. The zero cond with no literal is "true" (no
// information) and is represented by nil.
type cond struct {
	lit string
	and []*cond
	or  []*cond
}

func litCond(s string) *cond {
	if s == "" {
		return nil
	}
	return &cond{lit: s}
}

func andCond(a, b *cond) *cond {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	var subs []*cond
	for _, c := range []*cond{a, b} {
		if c.and != nil {
			subs = append(subs, c.and...)
		} else {
			subs = append(subs, c)
		}
	}
	return &cond{and: subs}
}

// orCond is nil (true) as soon as one alternative is.
func orCond(cs []*cond) *cond {
	var subs []*cond
	for _, c := range cs {
		switch {
		case c == nil:
			return nil
		case c.or != nil:
			subs = append(subs, c.or...)
		default:
			subs = append(subs, c)
		}
	}
	switch len(subs) {
	case 0:
		// No alternative at all: say nothing rather than "never".
		return nil
	case 1:
		return subs[0]
	}
	return &cond{or: subs}
}

// info is what analyze knows about a node.
type info struct {
	exact   []string // lower-cased, sorted, unique; valid when isExact
	isExact bool
	match   *cond // when !isExact
}

func exactInfo(s ...string) info {
	slices.Sort(s)
	return info{exact: slices.Compact(s), isExact: true}
}

var unknown = info{}

// condition turns i into a condition: an exact set is "one of these
// strings occurs", which says nothing if one of them is empty.
func (i info) condition() *cond {
	if !i.isExact {
		return i.match
	}
	cs := make([]*cond, len(i.exact))
	for k, s := range i.exact {
		cs[k] = litCond(s)
	}
	return orCond(cs)
}

func analyze(re *syntax.Regexp) info {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return exactInfo("")
	case syntax.OpLiteral:
		parts := make([]info, len(re.Rune))
		for k, r := range re.Rune {
			parts[k] = runeInfo(r, re.Flags&syntax.FoldCase != 0)
		}
		return concatInfo(parts)
	case syntax.OpCharClass:
		return classInfo(re.Rune)
	case syntax.OpCapture:
		return analyze(re.Sub[0])
	case syntax.OpQuest:
		if sub := analyze(re.Sub[0]); sub.isExact && len(sub.exact) < maxExact {
			return exactInfo(append(slices.Clone(sub.exact), "")...)
		}
		return unknown
	case syntax.OpPlus:
		return info{match: analyze(re.Sub[0]).condition()}
	case syntax.OpRepeat:
		if re.Min == 0 {
			return unknown
		}
		return info{match: analyze(re.Sub[0]).condition()}
	case syntax.OpConcat:
		parts := make([]info, len(re.Sub))
		for k, sub := range re.Sub {
			parts[k] = analyze(sub)
		}
		return concatInfo(parts)
	case syntax.OpAlternate:
		return alternateInfo(re.Sub)
	}
	// OpAnyChar, OpAnyCharNotNL, OpStar, OpNoMatch: nothing required.
	return unknown
}

// runeInfo is one rune of a literal.
func runeInfo(r rune, fold bool) info {
	switch {
	case r < utf8.RuneSelf && (!fold || foldsWithinASCII(r)):
		return exactInfo(string(lowerASCII(byte(r))))
	case r >= utf8.RuneSelf && !fold && r != utf8.RuneError:
		return exactInfo(string(r))
	}
	return unknown
}

// classInfo spells out a small ASCII class.
func classInfo(ranges []rune) info {
	var set []string
	for k := 0; k+1 < len(ranges); k += 2 {
		for r := ranges[k]; r <= ranges[k+1]; r++ {
			if r >= utf8.RuneSelf || len(set) == maxClass {
				return unknown
			}
			set = append(set, string(lowerASCII(byte(r))))
		}
	}
	if len(set) == 0 {
		return unknown
	}
	return exactInfo(set...)
}

// concatInfo joins consecutive exact parts by cross product while the
// product stays small; an inexact part, or a product too large, ends the
// run, whose strings become a condition ANDed with the others.
func concatInfo(parts []info) info {
	var match *cond
	exact := true // every part so far was exact, and run is what they match
	run := []string{""}
	for _, p := range parts {
		if p.isExact && len(run)*len(p.exact) <= maxExact {
			run = cross(run, p.exact)
			continue
		}
		match = andCond(match, exactInfo(run...).condition())
		exact = false
		if p.isExact {
			run = p.exact
			continue
		}
		match = andCond(match, p.match)
		run = []string{""}
	}
	if exact {
		return exactInfo(run...)
	}
	return info{match: andCond(match, exactInfo(run...).condition())}
}

func cross(a, b []string) []string {
	out := make([]string, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			out = append(out, x+y)
		}
	}
	return out
}

func alternateInfo(subs []*syntax.Regexp) info {
	parts := make([]info, len(subs))
	allExact := true
	var union []string
	for k, sub := range subs {
		parts[k] = analyze(sub)
		allExact = allExact && parts[k].isExact
		union = append(union, parts[k].exact...)
	}
	if allExact && len(union) <= maxExact {
		return exactInfo(union...)
	}
	cs := make([]*cond, len(parts))
	for k, p := range parts {
		cs[k] = p.condition()
	}
	return info{match: orCond(cs)}
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// prefilter evaluates a condition. OR nodes hold their literals apart from
// their other alternatives. Before any literal is searched for, the bytes
// of the input are summed up in a byteSet: a literal with a byte the input
// lacks cannot occur, which settles most literals without a scan. On long
// inputs, where the set says little, an OR of many literals is searched in
// one Aho-Corasick pass instead.
//
// Each node also carries two summaries of its condition, checked before
// anything else: the shortest input that can satisfy it (minLen) and the
// bytes every input that satisfies it holds (need). Most of CRS's patterns
// need a word of five or more letters, and most values an API receives
// are shorter than that or lack one of its letters: such a value is ruled
// out without walking the tree.
type prefilter struct {
	and  []*prefilter
	or   []*prefilter
	lits []literal
	ac   *ahocorasick.AhoCorasick

	minLen int
	need   byteSet
}

type literal struct {
	s     string
	bytes byteSet // of s, lower-cased
}

// byteSet is a set of bytes, ASCII letters in lower case, folded onto 128
// bits: a byte above 127 stands for itself and for that byte minus 128.
// Folding only makes a set say "present" more often, which for a necessary
// condition means "maybe" more often, never a wrong "no"; in exchange the
// set of an input is built in two registers without a branch.
type byteSet struct{ lo, hi uint64 }

func (b *byteSet) add(c byte) {
	if c&64 == 0 {
		b.lo |= 1 << (c & 63)
	} else {
		b.hi |= 1 << (c & 63)
	}
}

// within reports whether every byte of b is in of.
func (b *byteSet) within(of *byteSet) bool {
	return b.lo&^of.lo == 0 && b.hi&^of.hi == 0
}

func (b byteSet) union(o byteSet) byteSet     { return byteSet{b.lo | o.lo, b.hi | o.hi} }
func (b byteSet) intersect(o byteSet) byteSet { return byteSet{b.lo & o.lo, b.hi & o.hi} }

// upperLetters are the bits of A to Z in byteSet.hi; shifted left by 32
// they are a to z.
const upperLetters = (1<<26 - 1) << 1

// bytesOf is the set of s's bytes, each upper-case ASCII letter also
// standing for its lower case.
func bytesOf(s string) byteSet {
	var lo, hi uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		bit := uint64(1) << (c & 63)
		upper := -uint64(c >> 6 & 1) // all ones when bit 6 of c is set
		hi |= bit & upper
		lo |= bit &^ upper
	}
	return byteSet{lo, hi | (hi&upperLetters)<<32}
}

// acMinLiterals and acMinInput: when an OR has that many literals and the
// input is that long, one automaton pass beats a scan per literal.
const (
	acMinLiterals = 8
	acMinInput    = 256
)

// newPrefilter is nil when re requires no literal.
func newPrefilter(re *syntax.Regexp) *prefilter {
	c := analyze(re).condition()
	if c == nil {
		return nil
	}
	return buildPrefilter(c)
}

func buildPrefilter(c *cond) *prefilter {
	p := &prefilter{}
	var lits []string
	switch {
	case c.lit != "":
		lits = []string{c.lit}
	case c.and != nil:
		for _, sub := range c.and {
			p.and = append(p.and, buildPrefilter(sub))
		}
	default:
		for _, sub := range c.or {
			if sub.lit != "" {
				lits = append(lits, sub.lit)
			} else {
				p.or = append(p.or, buildPrefilter(sub))
			}
		}
	}
	lits = minimalLiterals(lits)
	for _, l := range lits {
		p.lits = append(p.lits, literal{s: l, bytes: bytesOf(l)})
	}
	p.summarize()
	if len(lits) >= acMinLiterals {
		b := ahocorasick.NewAhoCorasickBuilder(ahocorasick.Opts{
			AsciiCaseInsensitive: true,
			MatchKind:            ahocorasick.LeftMostLongestMatch,
			DFA:                  true,
		})
		ac := b.Build(lits)
		p.ac = &ac
	}
	return p
}

// summarize sets p's minLen and need from its literals and subtrees: an
// AND needs what each of its parts needs, an OR the least of what its
// alternatives do.
func (p *prefilter) summarize() {
	if p.and != nil {
		for _, sub := range p.and {
			p.minLen = max(p.minLen, sub.minLen)
			p.need = p.need.union(sub.need)
		}
		return
	}
	first := true
	alt := func(minLen int, need byteSet) {
		if first {
			p.minLen, p.need, first = minLen, need, false
			return
		}
		p.minLen = min(p.minLen, minLen)
		p.need = p.need.intersect(need)
	}
	for _, l := range p.lits {
		alt(len(l.s), l.bytes)
	}
	for _, sub := range p.or {
		alt(sub.minLen, sub.need)
	}
}

// minimalLiterals drops, from literals any one of which must occur, each
// literal that contains another: where it occurs, so does the other.
func minimalLiterals(lits []string) []string {
	slices.Sort(lits)
	lits = slices.Compact(lits)
	var out []string
	for _, l := range lits {
		redundant := false
		for _, o := range lits {
			if o != l && strings.Contains(l, o) {
				redundant = true
				break
			}
		}
		if !redundant {
			out = append(out, l)
		}
	}
	return out
}

// mayMatch is false only if the condition is false for s.
func (p *prefilter) mayMatch(s string) bool {
	if len(s) < p.minLen {
		return false
	}
	present := bytesOf(s)
	return p.eval(s, &present)
}

func (p *prefilter) eval(s string, present *byteSet) bool {
	if !p.need.within(present) {
		return false
	}
	if p.and != nil {
		for _, sub := range p.and {
			if !sub.eval(s, present) {
				return false
			}
		}
		return true
	}
	if p.ac != nil && len(s) >= acMinInput {
		// The automaton reads bytes; s is not modified.
		if p.ac.IterByte(unsafe.Slice(unsafe.StringData(s), len(s))).Next() != nil {
			return true
		}
	} else {
		for i := range p.lits {
			if l := &p.lits[i]; l.bytes.within(present) && containsFold(s, l.s) {
				return true
			}
		}
	}
	for _, sub := range p.or {
		if sub.eval(s, present) {
			return true
		}
	}
	return false
}

// containsFold reports whether lit (lower-case ASCII, or other bytes
// compared exactly) occurs in s up to ASCII case.
func containsFold(s, lit string) bool {
	first := lit[0]
	for i := 0; i+len(lit) <= len(s); i++ {
		if lowerASCII(s[i]) != first {
			continue
		}
		j := 1
		for j < len(lit) && lowerASCII(s[i+j]) == lit[j] {
			j++
		}
		if j == len(lit) {
			return true
		}
	}
	return false
}
