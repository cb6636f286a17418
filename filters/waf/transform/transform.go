// Package transform owns the WAF's transformation functions: versions of
// SecLang transformations CRS applies that give exactly the output and the
// "changed" flag of Coraza's own, without allocating when the value comes
// out unchanged. Register installs them in Coraza under the names the
// rules use; rules compiled afterwards call them.
//
// Only the transformations where Coraza's own allocate for a value that
// comes out unchanged, or scan it slowly, are here: replaceComments
// (Coraza copies every value), removeWhitespace (Coraza allocates on every
// call), compressWhitespace and cmdLine (Coraza copies any value holding a
// space), and htmlEntityDecode (a byte search in place of a rune loop). Coraza's lowercase, urlDecodeUni, jsDecode, cssDecode,
// utf8toUnicode and removeNulls already return a value they leave alone
// without copying it, and allocate once when they do change it; a copy of
// them here would only be a second thing to keep identical.
//
// Each function is fuzzed against Coraza's own (transform_test.go), which
// the tests reach through a stock WAF, since Coraza keeps them internal.
package transform

import (
	"strings"
	"unsafe"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
)

// Register installs the package's transformations in Coraza's registry,
// replacing Coraza's own. The registry is global and read when rules are
// compiled: call it before building a WAF, once (it is not safe to call
// while another goroutine compiles rules).
func Register() {
	plugins.RegisterTransformation("replaceComments", ReplaceComments)
	plugins.RegisterTransformation("removeWhitespace", RemoveWhitespace)
	plugins.RegisterTransformation("compressWhitespace", CompressWhitespace)
	plugins.RegisterTransformation("cmdLine", CmdLine)
	plugins.RegisterTransformation("htmlEntityDecode", HTMLEntityDecode)
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
