package transform

import (
	"strings"
	"unsafe"
)

// RemoveNulls drops every NUL byte. changed is true when there was one.
func RemoveNulls(s string) (string, bool, error) {
	i := strings.IndexByte(s, 0)
	if i < 0 {
		return s, false, nil
	}
	b := make([]byte, 0, len(s)-1)
	for i >= 0 {
		b = append(b, s[:i]...)
		s = s[i+1:]
		i = strings.IndexByte(s, 0)
	}
	b = append(b, s...)
	return bytesString(b), true, nil
}

// Lowercase lower-cases s the way strings.ToLower does, which is what
// Coraza's is: Unicode simple case mapping, and each byte that is not valid
// UTF-8 written as U+FFFD once anything is rewritten. changed is true when
// the output differs from s.
//
// strings.ToLower hands back s itself when no character changes and a new
// string only when one does, so the flag is whether the result is s, known
// without comparing the two byte by byte.
func Lowercase(s string) (string, bool, error) {
	out := strings.ToLower(s)
	return out, len(out) != len(s) || unsafe.StringData(out) != unsafe.StringData(s), nil
}

// unhex is the value of each hex digit, and -1 for every other byte: one
// load decides both whether a byte is a digit and what it is worth.
var unhex = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = int8(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = int8(c - 'a' + 10)
		t[c-'a'+'A'] = int8(c - 'a' + 10)
	}
	return t
}()

// hexByte returns the byte the two hex digits s[0] s[1] spell, and whether
// both are hex digits.
func hexByte(s string) (byte, bool) {
	hi, lo := unhex[s[0]], unhex[s[1]]
	return byte(hi)<<4 | byte(lo), hi|lo >= 0
}

const lowerHex = "0123456789abcdef"
