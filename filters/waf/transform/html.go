package transform

import (
	"strings"

	"golang.org/x/net/html"
)

// HTMLEntityDecode decodes HTML character references with
// golang.org/x/net/html, as Coraza does. changed is Coraza's: true when
// the output's length differs from s's (so "&lt;" decoded is a change,
// but a reference that decodes to as many bytes as it took is not).
//
// html.UnescapeString looks for '&' one rune at a time; a byte search
// answers the common case, a value with no reference at all, sooner.
func HTMLEntityDecode(s string) (string, bool, error) {
	if strings.IndexByte(s, '&') < 0 {
		return s, false, nil
	}
	out := html.UnescapeString(s)
	return out, len(out) != len(s), nil
}
