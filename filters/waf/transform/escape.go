package transform

import "strings"

// EscapeSeqDecode decodes C (ANSI) escapes into single bytes: \a \b \f \n
// \r \t \v the control characters; \x or \X and two hex digits that byte;
// \ and one to three octal digits the low byte of their value (\777 is
// 0xff); \ and any other byte that byte, without the backslash. Unlike
// JSDecode there is no \u and a third octal digit is always taken. A
// backslash that ends s stays. changed is true when an escape was decoded;
// s comes back as it is otherwise, without a copy.
func EscapeSeqDecode(s string) (string, bool, error) {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s, false, nil
	}
	// The rest is out of line: this way a value without a backslash,
	// the usual one, costs a byte search and a return, with no stack
	// frame sized for the decoding.
	return decodeBackslashes(s, i, cEscape)
}

// cEscape decodes the escape whose text after the backslash starts e (one
// byte at least), returning its byte and how many bytes of e it took.
func cEscape(e string) (byte, int) {
	switch e[0] {
	case 'x', 'X':
		if len(e) >= 3 {
			if c, ok := hexByte(e[1:]); ok {
				return c, 3
			}
		}
	case '0', '1', '2', '3', '4', '5', '6', '7':
		return octal(e, 3)
	}
	return control(e[0]), 1
}

// octal decodes the octal digits, at most max, that start e: the low byte
// of their value, and how many there were.
func octal(e string, max int) (byte, int) {
	v, n := 0, 0
	for n < max && n < len(e) && '0' <= e[n] && e[n] <= '7' {
		v = v<<3 | int(e[n]-'0')
		n++
	}
	return byte(v), n
}

// control is the control character a one-letter C escape stands for (\a
// \b \f \n \r \t \v), or c itself for any other letter.
func control(c byte) byte {
	switch c {
	case 'a':
		return '\a'
	case 'b':
		return '\b'
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'v':
		return '\v'
	}
	return c
}
