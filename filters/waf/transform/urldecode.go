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
	i := firstDecoded(s, urlUniEscape)
	if i == len(s) {
		return s, false, nil
	}
	return decodePercents(s, i, urlUniEscape), true, nil
}

// firstDecoded returns the index of the first byte of s that decodes to
// something else, a '+' or a '%' that starts an escape (escape returns its
// byte and length, 0 when none), or len(s). A '%' that starts no escape
// ("100%", "%zz") changes nothing, so this runs before paying for a copy.
func firstDecoded(s string, escape func(s string, i int) (byte, int)) int {
	i := strings.IndexByte(s, '%')
	if j := strings.IndexByte(s, '+'); j >= 0 && (i < 0 || j < i) {
		i = j
	}
	if i < 0 {
		return len(s)
	}
	for ; i < len(s); i++ {
		if c := s[i]; c == '+' {
			return i
		} else if c == '%' {
			if _, n := escape(s, i); n > 0 {
				return i
			}
		}
	}
	return len(s)
}

// decodePercents decodes s from i on: '+' as a space, each '%' that
// starts an escape as escape says.
func decodePercents(s string, i int, escape func(s string, i int) (byte, int)) string {
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
			if v, n := escape(s, i); n > 0 {
				c = v
				i += n - 1
			}
		}
		d[w] = c
		w++
		i++
	}
	return bytesString(d[:w])
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
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, false, nil
	}
	i := firstDecoded(s, urlEscape)
	if i == len(s) {
		return s, true, nil
	}
	return decodePercents(s, i, urlEscape), true, nil
}

// urlEscape decodes the escape at s[i], a '%': %HH gives its byte and
// length 3; anything else 0, "%u" included.
func urlEscape(s string, i int) (byte, int) {
	if i+2 < len(s) {
		if c, ok := hexByte(s[i+1:]); ok {
			return c, 3
		}
	}
	return 0, 0
}
