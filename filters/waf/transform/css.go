package transform

import (
	"strings"
	"unicode/utf8"
)

// CSSDecode decodes CSS escapes: a backslash and one to six hex digits is
// that code point as UTF-8 (zero, surrogates and values past U+10FFFF give
// U+FFFD; full-width ASCII, U+FF01 to U+FF5E, gives the ASCII character),
// and one white-space byte after the digits is dropped with them; a
// backslash before a newline is dropped with it, before any other byte
// is dropped alone, and at the end is dropped.
//
// changed is Coraza's: true whenever s holds a backslash. Every backslash
// is dropped, so the output then always differs anyway.
func CSSDecode(s string) (string, bool, error) {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s, false, nil
	}
	b := make([]byte, 0, len(s))
	for i >= 0 {
		b = append(b, s[:i]...)
		s = s[i+1:]
		n := 0
		for n < 6 && n < len(s) && unhex[s[n]] >= 0 {
			n++
		}
		switch {
		case n > 0:
			var r rune
			for _, c := range []byte(s[:n]) {
				r = r<<4 | rune(unhex[c])
			}
			switch {
			case r == 0:
				r = utf8.RuneError
			case 0xff01 <= r && r <= 0xff5e:
				r -= 0xff01 - '!'
			}
			b = utf8.AppendRune(b, r)
			if n < len(s) && cssSpace(s[n]) {
				n++
			}
			s = s[n:]
		case len(s) > 0 && s[0] == '\n':
			s = s[1:]
		case len(s) > 0:
			// Taken as it is, even a second backslash: it is escaped,
			// not the start of another escape.
			b = append(b, s[0])
			s = s[1:]
		}
		i = strings.IndexByte(s, '\\')
	}
	b = append(b, s...)
	return bytesString(b), true, nil
}

// cssSpace is C's isspace in the C locale.
func cssSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}
