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
	// The output can outgrow s ("\\0", two bytes, is U+FFFD, three), so
	// it is appended to; a byte at a time, which beats copying the short
	// runs between escapes when escapes are dense.
	b := make([]byte, i, len(s))
	copy(b, s[:i])
	for i < len(s) {
		c := s[i]
		i++
		if c != '\\' {
			b = append(b, c)
			continue
		}
		n := 0
		for n < 6 && i+n < len(s) && unhex[s[i+n]] >= 0 {
			n++
		}
		switch {
		case n > 0:
			var r rune
			for _, h := range []byte(s[i : i+n]) {
				r = r<<4 | rune(unhex[h])
			}
			switch {
			case r == 0:
				r = utf8.RuneError
			case 0xff01 <= r && r <= 0xff5e:
				r -= 0xff01 - '!'
			}
			if r < utf8.RuneSelf {
				b = append(b, byte(r))
			} else {
				b = utf8.AppendRune(b, r)
			}
			i += n
			if i < len(s) && cssSpace(s[i]) {
				i++
			}
		case i < len(s) && s[i] == '\n':
			i++
		case i < len(s):
			// Taken as it is, even a second backslash: it is escaped,
			// not the start of another escape.
			b = append(b, s[i])
			i++
		}
	}
	return bytesString(b), true, nil
}

// cssSpace is C's isspace in the C locale.
func cssSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}
