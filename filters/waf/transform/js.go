package transform

import "strings"

// JSDecode decodes JavaScript escapes into single bytes, as ModSecurity's
// jsDecode (and so Coraza's) does:
//
//   - \u{H...H}, one to six hex digits and the brace: the low byte of the
//     code point, or the ASCII character for full-width ASCII (U+FF01 to
//     U+FF5E);
//   - \uHHHH: the same, from the last two digits, full-width when the
//     first two are ff;
//   - \xHH: that byte;
//   - \ and one to three octal digits, at most \377 (a fourth digit, or a
//     third after a leading 4 to 7, is left as text): that byte;
//   - \a \b \f \n \r \t \v: the control character; \ and any other byte,
//     an invalid \u or \x included: that byte, without the backslash.
//
// A backslash that ends s stays. changed is true when an escape was
// decoded; s comes back as it is otherwise, without a copy.
func JSDecode(s string) (string, bool, error) {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s, false, nil
	}
	// The rest is out of line: this way a value without a backslash,
	// the usual one, costs a byte search and a return, with no stack
	// frame sized for the decoding.
	return decodeBackslashes(s, i, jsEscape)
}

// decodeBackslashes decodes, from s[i], its first backslash, every
// backslash escape of s with escape, which gets the text after a backslash
// (one byte at least) and returns the byte it stands for and how many
// bytes it took. JSDecode and EscapeSeqDecode differ only in escape.
func decodeBackslashes(s string, i int, escape func(string) (byte, int)) (string, bool, error) {
	if i == len(s)-1 {
		// The only backslash ends s: it stays, and so does s.
		return s, false, nil
	}
	// Each escape is longer than its byte, so the output fits in len(s),
	// and each byte is stored by index: faster, where escapes are dense,
	// than appending the short runs between them.
	d := make([]byte, len(s))
	copy(d, s[:i])
	w := i
	for i < len(s) {
		c := s[i]
		i++
		if c == '\\' && i < len(s) {
			var n int
			c, n = escape(s[i:])
			i += n
		}
		d[w] = c
		w++
	}
	return bytesString(d[:w]), true, nil
}

// jsEscape decodes the escape whose text after the backslash starts e (one
// byte at least), returning the byte it stands for and how many bytes of e
// it took.
func jsEscape(e string) (byte, int) {
	switch e[0] {
	case 'u':
		if n := jsBraced(e); n > 0 {
			var r rune
			for _, c := range []byte(e[2 : 2+n]) {
				r = r<<4 | rune(unhex[c])
			}
			return fullWidthLow(r), n + 3
		}
		if len(e) >= 5 {
			hi, okHi := hexByte(e[1:])
			lo, okLo := hexByte(e[3:])
			if okHi && okLo {
				return fullWidthLow(rune(hi)<<8 | rune(lo)), 5
			}
		}
	case 'x':
		if len(e) >= 3 {
			if c, ok := hexByte(e[1:]); ok {
				return c, 3
			}
		}
	case '0', '1', '2', '3', '4', '5', '6', '7':
		// Three digits only while the value fits in a byte: from \400 on
		// the third digit is text.
		max := 3
		if e[0] > '3' {
			max = 2
		}
		return octal(e, max)
	}
	return control(e[0]), 1
}

// jsBraced returns the number of hex digits of a \u{...} escape, e being
// the text after the backslash, or 0 when e is not one: no digit, more
// than six, or no closing brace.
func jsBraced(e string) int {
	if len(e) < 2 || e[1] != '{' {
		return 0
	}
	n := 0
	for n < 6 && 2+n < len(e) && unhex[e[2+n]] >= 0 {
		n++
	}
	if n == 0 || 2+n >= len(e) || e[2+n] != '}' {
		return 0
	}
	return n
}

// fullWidthLow is the byte a \u escape of code point r decodes to: its low
// byte, moved up to the ASCII character for full-width ASCII.
func fullWidthLow(r rune) byte {
	if 0xff01 <= r && r <= 0xff5e {
		return byte(r) + 0x20
	}
	return byte(r)
}
