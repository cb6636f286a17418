package transform

import "strings"

// URLDecodeUni decodes %HH escapes, IIS's %uHHHH ones, and '+' as a space.
// A %uHHHH escape (u or U) gives one byte: the best-fit ASCII character
// for its code point where there is one (bestFit, which holds the
// full-width ASCII forms among others), its low byte otherwise. An escape
// that is invalid or cut short is left as text: "%" alone, or "%u" alone
// when the four digits after it are not all there. changed is true when
// something was decoded; s comes back as it is otherwise, without a copy.
func URLDecodeUni(s string) (string, bool, error) {
	i := strings.IndexByte(s, '%')
	if j := strings.IndexByte(s, '+'); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	if i < 0 {
		return s, false, nil
	}
	var b []byte // nil until something is decoded
	done := 0    // s[:done] is in b already
	for i < len(s) {
		c := s[i]
		if c != '%' && c != '+' {
			i++
			continue
		}
		var out byte
		n := 0
		switch {
		case c == '+':
			out, n = ' ', 1
		case i+1 < len(s) && s[i+1]|0x20 == 'u':
			if i+5 < len(s) {
				hi, okHi := hexByte(s[i+2:])
				lo, okLo := hexByte(s[i+4:])
				if okHi && okLo {
					out, n = uniByte(rune(hi)<<8|rune(lo)), 6
				}
			}
			if n == 0 {
				// Not a %u escape, and not a %HH one either: "%u" stays,
				// and the scan goes on after it.
				i += 2
				continue
			}
		case i+2 < len(s):
			if v, ok := hexByte(s[i+1:]); ok {
				out, n = v, 3
			}
		}
		if n == 0 {
			i++
			continue
		}
		if b == nil {
			b = make([]byte, 0, len(s))
		}
		b = append(b, s[done:i]...)
		b = append(b, out)
		i += n
		done = i
	}
	if b == nil {
		return s, false, nil
	}
	b = append(b, s[done:]...)
	return bytesString(b), true, nil
}

// uniByte is the byte a %u escape of code point r decodes to.
func uniByte(r rune) byte {
	if c, ok := bestFit[uint16(r)]; ok {
		return c
	}
	return byte(r)
}
