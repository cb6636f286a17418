package transform

import "strings"

// URLDecodeUni decodes %HH escapes, IIS's %uHHHH ones, and '+' as a space.
// A %uHHHH escape (u or U) gives one byte: the best-fit ASCII character
// for its code point where there is one (bestFit, which holds the
// full-width ASCII forms among others), its low byte otherwise. An escape
// that is invalid or cut short is left as text, and the scan goes on after
// its '%'. changed is true when something was decoded; s comes back as it
// is otherwise, without a copy.
func URLDecodeUni(s string) (string, bool, error) {
	i := strings.IndexByte(s, '%')
	if j := strings.IndexByte(s, '+'); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	if i < 0 {
		return s, false, nil
	}
	// A '%' that starts no escape ("100%", "%zz") changes nothing: find
	// the first byte that does decode before paying for a copy.
	for ; i < len(s); i++ {
		if c := s[i]; c == '+' {
			break
		} else if c == '%' {
			if _, n := urlUniEscape(s, i); n > 0 {
				break
			}
		}
	}
	if i == len(s) {
		return s, false, nil
	}
	// Every escape is longer than its byte, so the output fits in len(s);
	// from here each byte is stored by index, which beats appending the
	// short runs between escapes when escapes are dense.
	d := make([]byte, len(s))
	copy(d, s[:i])
	w := i
	for i < len(s) {
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if v, n := urlUniEscape(s, i); n > 0 {
				c = v
				i += n - 1
			}
		}
		d[w] = c
		w++
		i++
	}
	return bytesString(d[:w]), true, nil
}

// urlUniEscape decodes the escape at s[i], a '%', returning its byte and
// its length: 6 for %uHHHH, 3 for %HH, 0 when it starts neither. "%u" not
// followed by four hex digits is not tried as %HH: 'u' is not a hex digit.
func urlUniEscape(s string, i int) (byte, int) {
	if i+1 < len(s) && s[i+1]|0x20 == 'u' {
		if i+5 < len(s) {
			hi, okHi := hexByte(s[i+2:])
			lo, okLo := hexByte(s[i+4:])
			if okHi && okLo {
				return uniByte(rune(hi)<<8 | rune(lo)), 6
			}
		}
		return 0, 0
	}
	if i+2 < len(s) {
		if c, ok := hexByte(s[i+1:]); ok {
			return c, 3
		}
	}
	return 0, 0
}

// uniByte is the byte a %u escape of code point r decodes to.
func uniByte(r rune) byte {
	if p := bestFitPage[r>>8&0xff]; p != nil {
		return p[r&0xff]
	}
	return byte(r)
}

// bestFitPage is bestFit as 256-entry pages of code points sharing a high
// byte, for the seven high bytes that have an entry: two loads instead of
// hashing a map key, on every %u escape.
var bestFitPage = func() (pages [256]*[256]byte) {
	for r, c := range bestFit {
		p := pages[r>>8]
		if p == nil {
			p = new([256]byte)
			for i := range p {
				p[i] = byte(i)
			}
			pages[r>>8] = p
		}
		p[r&0xff] = c
	}
	return pages
}()

// URLDecode decodes %HH escapes and '+' as a space; a '%' that starts no
// valid escape stays, and so does "%u". changed is Coraza's: true when s
// holds a '%' or a '+', whether or not anything was decoded ("100%" comes
// back as it is, changed). A value that decodes to itself comes back as s,
// without a copy.
func URLDecode(s string) (string, bool, error) {
	i := strings.IndexByte(s, '%')
	if j := strings.IndexByte(s, '+'); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	if i < 0 {
		return s, false, nil
	}
	for ; i < len(s); i++ {
		if c := s[i]; c == '+' {
			break
		} else if c == '%' && i+2 < len(s) {
			if _, ok := hexByte(s[i+1:]); ok {
				break
			}
		}
	}
	if i == len(s) {
		return s, true, nil
	}
	d := make([]byte, len(s))
	copy(d, s[:i])
	w := i
	for i < len(s) {
		c := s[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 < len(s) {
				if v, ok := hexByte(s[i+1:]); ok {
					c = v
					i += 2
				}
			}
		}
		d[w] = c
		w++
		i++
	}
	return bytesString(d[:w]), true, nil
}
