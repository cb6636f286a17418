// Package transform owns the WAF's transformation functions: versions of
// SecLang transformations CRS applies that give exactly the output and the
// "changed" flag of Coraza's own, and return a value they leave unchanged
// as it is, without allocating.
//
// They are here for two reasons. Register installs in Coraza, under the
// names the rules use, the ones that beat Coraza's own: replaceComments
// (Coraza copies every value), removeWhitespace (Coraza allocates on every
// call), compressWhitespace and cmdLine (Coraza copies any value holding a
// space), htmlEntityDecode (a byte search in place of a rune loop), and
// those of the rest that measured at least as fast (see table). And Lookup
// hands every one of them, installed or not, to callers that apply a
// rule's transformations themselves: Coraza caches transformation results
// per argument index, which for a JSON body changes from rule to rule
// (corazawaf/coraza#1681), so nearly every lookup misses and the cache
// costs more than the work it saves; an operator that transforms for
// itself needs callable copies, and Coraza keeps its own internal. So
// urlDecodeUni, utf8toUnicode, jsDecode, cssDecode, removeNulls and
// lowercase are here too, although Coraza's already leave an unchanged
// value uncopied.
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
// alike, so one is installed and looked up from the same entry. install is
// set where ours measured at least as fast as Coraza's on
// BenchmarkTransformations, for unchanged and changed values both;
// elsewhere Coraza keeps its own, whose output is the same.
var table = []transformation{
	{"replaceComments", ReplaceComments, true},
	{"removeWhitespace", RemoveWhitespace, true},
	{"compressWhitespace", CompressWhitespace, true},
	{"cmdLine", CmdLine, true},
	{"htmlEntityDecode", HTMLEntityDecode, true},
	{"urlDecodeUni", URLDecodeUni, false},
	{"utf8toUnicode", UTF8ToUnicode, false},
	{"jsDecode", JSDecode, false},
	{"cssDecode", CSSDecode, false},
	{"removeNulls", RemoveNulls, false},
	{"lowercase", Lowercase, false},
	{"normalizePath", NormalizePath, false},
	{"normalisePath", NormalizePath, false},
	{"normalizePathWin", NormalizePathWin, false},
	{"normalisePathWin", NormalizePathWin, false},
	{"urlDecode", URLDecode, false},
	{"escapeSeqDecode", EscapeSeqDecode, false},
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
