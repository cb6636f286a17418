package transform

import (
	"unicode"
	"unicode/utf8"
)

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

// CompressWhitespace replaces each run of white space with one space. White
// space is what Coraza counts as such: the ASCII white-space characters,
// U+0085 and U+00A0, and a byte 0xA0 where a character would start (NBSP
// in Latin-1). changed is true when the output differs from s.
//
// Coraza copies the value as soon as it holds any white space; most values
// that do hold only single spaces between words, and come back as they
// are, without a copy.
func CompressWhitespace(s string) (string, bool, error) {
	if compressKeeps(s) {
		return s, false, nil
	}
	b := make([]byte, 0, len(s))
	inSpace := false
	for i := 0; i < len(s); {
		r, w := utf8.DecodeRuneInString(s[i:])
		if !latinSpace(r, s[i]) {
			b = append(b, s[i:i+w]...)
			inSpace = false
		} else if !inSpace {
			b = append(b, ' ')
			inSpace = true
		}
		i += w
	}
	return bytesString(b), true, nil
}

// compressKeeps reports whether CompressWhitespace leaves s as it is: its
// only white space is single spaces.
func compressKeeps(s string) bool {
	prevSpace := false
	for i := 0; i < len(s); {
		c := s[i]
		if c == ' ' {
			if prevSpace {
				return false
			}
			prevSpace = true
			i++
			continue
		}
		w := 1
		if c >= utf8.RuneSelf {
			var r rune
			r, w = utf8.DecodeRuneInString(s[i:])
			if latinSpace(r, c) {
				return false
			}
		} else if asciiSpace[c] {
			return false
		}
		prevSpace = false
		i += w
	}
	return true
}

// latinSpace reports whether the character r, which starts with byte
// first, is white space for CompressWhitespace.
func latinSpace(r rune, first byte) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0x85, 0xA0:
		return true
	}
	return first == 0xA0
}
