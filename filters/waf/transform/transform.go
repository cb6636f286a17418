// Package transform owns the WAF's transformation functions: versions of
// the SecLang transformations CRS applies most that give exactly the
// output and the "changed" flag of Coraza's own, without allocating when
// the input comes out unchanged (the common case: most values hold no
// comment and no whitespace to remove). Register installs them in Coraza
// under the names the rules use; rules compiled afterwards call them.
//
// Each function is fuzzed against Coraza's own (transform_test.go), which
// the tests reach through a stock WAF, since Coraza keeps them internal.
package transform

import (
	"strings"
	"unicode"
	"unicode/utf8"
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

// RemoveWhitespace drops every Unicode white-space character. As Coraza's
// does (it maps over runes), it also writes each byte that is not valid
// UTF-8 as U+FFFD when it rewrites the input, but changed is true only
// when white space was removed.
func RemoveWhitespace(s string) (string, bool, error) {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf && !asciiSpace[s[i]] {
		i++
	}
	if i == len(s) {
		return s, false, nil
	}
	var b []byte // nil until the output differs from s
	changed := false
	for j := i; j < len(s); {
		r, w := utf8.DecodeRuneInString(s[j:])
		switch {
		case unicode.IsSpace(r):
			if b == nil {
				b = append(make([]byte, 0, len(s)), s[:j]...)
			}
			changed = true
		case r == utf8.RuneError && w == 1:
			if b == nil {
				b = append(make([]byte, 0, len(s)+2), s[:j]...)
			}
			b = utf8.AppendRune(b, utf8.RuneError)
		case b != nil:
			b = append(b, s[j:j+w]...)
		}
		j += w
	}
	if b == nil {
		return s, false, nil
	}
	return bytesString(b), changed, nil
}

// asciiSpace marks the ASCII bytes unicode.IsSpace reports.
var asciiSpace = [utf8.RuneSelf]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// bytesString returns b as a string without copying it: the callers build
// b for the result and never touch it again.
func bytesString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
