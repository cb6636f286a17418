// Package transform owns the WAF's transformation functions: versions of
// SecLang transformations CRS applies that give exactly the output and the
// "changed" flag of Coraza's own, and return a value they leave unchanged
// as it is, without allocating.
//
// They are here for two reasons. Lookup hands every one of them to callers
// that apply a rule's transformations themselves: Coraza caches
// transformation results per argument index, and for a JSON body the index
// changes from rule to rule (corazawaf/coraza#1681), so nearly every lookup
// misses and the cache costs more than the transformations it saves. An
// operator that transforms for itself needs callable functions, and Coraza
// keeps its own internal; so urlDecodeUni, jsDecode, lowercase and the
// rest are here even where Coraza's already leave an unchanged value
// uncopied, and they must then be kept identical to Coraza's, which the
// tests check. And Register installs in Coraza those that are faster than
// its own (see table): replaceComments (Coraza copies every value),
// removeWhitespace (Coraza allocates on every call), compressWhitespace
// and cmdLine (Coraza copies any value holding a space), htmlEntityDecode
// and the URL decoders (a byte search in place of a byte loop), and most
// of the rest, faster on values they change.
//
// Each function is fuzzed against Coraza's own (transform_test.go), which
// the tests reach through a stock WAF, since Coraza keeps them internal.
package transform

import (
	"strings"
	"unsafe"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
)

// A transformation is one entry of table: its SecLang name, the function,
// and whether Register installs it in Coraza.
type transformation struct {
	name    string
	fn      func(string) (string, bool, error)
	install bool
}

// table is every transformation of the package, for Register and Lookup
// alike, so one is installed and looked up from the same entry. The first
// five are installed for what they spare on values they leave unchanged,
// the common case. The rest are installed where ours measured at least as
// fast as Coraza's on BenchmarkTransformations, on a value it leaves
// unchanged and on one it changes, and faster on one of the two (ours and
// Coraza's back to back, the test binary run eight times or more, on a
// loaded machine); normalizePath is not, since both are filepath.Clean and
// time the same. Where install is false Coraza keeps its own function,
// whose output is the same.
var table = []transformation{
	{"replaceComments", ReplaceComments, true},
	{"removeWhitespace", RemoveWhitespace, true},
	{"compressWhitespace", CompressWhitespace, true},
	{"cmdLine", CmdLine, true},
	{"htmlEntityDecode", HTMLEntityDecode, true},
	{"urlDecodeUni", URLDecodeUni, true},
	{"utf8toUnicode", UTF8ToUnicode, true},
	{"jsDecode", JSDecode, true},
	{"cssDecode", CSSDecode, true},
	{"removeNulls", RemoveNulls, true},
	{"lowercase", Lowercase, true},
	{"normalizePath", NormalizePath, false},
	{"normalisePath", NormalizePath, false},
	{"normalizePathWin", NormalizePathWin, true},
	{"normalisePathWin", NormalizePathWin, true},
	{"urlDecode", URLDecode, true},
	{"escapeSeqDecode", EscapeSeqDecode, true},
}

// byName indexes table by lower-cased name, the key Coraza's registry uses.
var byName = func() map[string]func(string) (string, bool, error) {
	m := make(map[string]func(string) (string, bool, error), len(table))
	for _, tr := range table {
		m[strings.ToLower(tr.name)] = tr.fn
	}
	return m
}()

// Register installs the package's transformations marked install in
// Coraza's registry, replacing Coraza's own. The registry is global and
// read when rules are compiled: call it before building a WAF, once (it is
// not safe to call while another goroutine compiles rules).
func Register() {
	for _, tr := range table {
		if tr.install {
			plugins.RegisterTransformation(tr.name, tr.fn)
		}
	}
}

// Lookup returns the package's function for the SecLang transformation name
// (matched case-insensitively, as Coraza does), and whether it has one.
// It has one for every transformation in table, installed by Register or
// not; "none" is not one (callers handle it).
func Lookup(name string) (func(string) (string, bool, error), bool) {
	fn, ok := byName[strings.ToLower(name)]
	return fn, ok
}

// ReplaceComments replaces each C-style comment (/* ... */, or /* to the
// end of the input when it is not closed) with one space. changed is true
// when there was a comment.
func ReplaceComments(s string) (string, bool, error) {
	open := strings.Index(s, "/*")
	if open < 0 {
		return s, false, nil
	}
	b := make([]byte, 0, len(s))
	for open >= 0 {
		b = append(b, s[:open]...)
		b = append(b, ' ')
		rest := s[open+2:]
		end := strings.Index(rest, "*/")
		if end < 0 {
			s = ""
			break
		}
		s = rest[end+2:]
		open = strings.Index(s, "/*")
	}
	b = append(b, s...)
	return bytesString(b), true, nil
}

// bytesString returns b as a string without copying it: the callers build
// b for the result and never touch it again.
func bytesString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
