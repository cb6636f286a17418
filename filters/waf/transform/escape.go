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
		v, n := 0, 0
		for n < 3 && n < len(e) && '0' <= e[n] && e[n] <= '7' {
			v = v<<3 | int(e[n]-'0')
			n++
		}
		return byte(v), n
	case 'a':
		return '\a', 1
	case 'b':
		return '\b', 1
	case 'f':
		return '\f', 1
	case 'n':
		return '\n', 1
	case 'r':
		return '\r', 1
	case 't':
		return '\t', 1
	case 'v':
		return '\v', 1
	}
	return e[0], 1
}
