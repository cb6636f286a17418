package transform

import (
	"strings"
	"unicode/utf8"
	"unsafe"
)

// RemoveNulls drops every NUL byte. changed is true when there was one.
func RemoveNulls(s string) (string, bool, error) {
	i := strings.IndexByte(s, 0)
	if i < 0 {
		return s, false, nil
	}
	// Counting first sizes the copy exactly, and costs little: the count
	// is a vector scan.
	b := make([]byte, 0, len(s)-strings.Count(s[i:], "\x00"))
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
func Lowercase(s string) (string, bool, error) {
	// Eight bytes at a time while they are ASCII: a letter A-Z is a byte
	// that reaches 0x80 when 0x80-'A' is added and not when 0x80-'Z'-1
	// is; no ASCII byte carries into the next one.
	const ones, high = 0x0101010101010101, 0x8080808080808080
	var caps uint64
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if x&high != 0 {
			break
		}
		caps |= (x + ones*(0x80-'A')) &^ (x + ones*(0x80-'Z'-1))
	}
	upper := caps&high != 0
	for ; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			// strings.ToLower hands back s itself when no character
			// changes and a new string only when one does, so whether
			// the result is s is the flag, without comparing the two.
			out := strings.ToLower(s)
			return out, len(out) != len(s) || unsafe.StringData(out) != unsafe.StringData(s), nil
		}
		upper = upper || 'A' <= c && c <= 'Z'
	}
	if !upper {
		return s, false, nil
	}
	// ASCII with an upper-case letter: every byte stored by index, which
	// is quicker than strings.ToLower's copying of the runs between
	// capitals when they are close together, as in identifiers and words.
	b := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b[i] = c
	}
	return bytesString(b), true, nil
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
