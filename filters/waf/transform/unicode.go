package transform

import "unicode/utf8"

// UTF8ToUnicode (SecLang utf8toUnicode) writes each character outside ASCII
// as %u and its code point in lower-case hex, at least four digits (five or
// six beyond U+FFFF, unpadded), and each byte that is not valid UTF-8 as
// %ufffd, the replacement character Go decodes it to. changed is true when
// s holds any byte outside ASCII.
func UTF8ToUnicode(s string) (string, bool, error) {
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf {
		i++
	}
	if i == len(s) {
		return s, false, nil
	}
	// Each character rewritten takes six bytes for its two to four; room
	// for a few of them spares a growth in the usual case, an accented
	// word or two.
	b := make([]byte, i, len(s)+32)
	copy(b, s[:i])
	for _, r := range s[i:] {
		if r < utf8.RuneSelf {
			b = append(b, byte(r))
			continue
		}
		b = append(b, '%', 'u')
		if r > 0xfffff {
			b = append(b, lowerHex[r>>20])
		}
		if r > 0xffff {
			b = append(b, lowerHex[r>>16&0xf])
		}
		b = append(b, lowerHex[r>>12&0xf], lowerHex[r>>8&0xf], lowerHex[r>>4&0xf], lowerHex[r&0xf])
	}
	return bytesString(b), true, nil
}
