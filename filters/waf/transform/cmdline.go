package transform

// CmdLine is SecLang's cmdLine, as Coraza spells it: it drops the quoting
// and escaping characters a shell ignores (" ' \ ^), turns each run of
// separators (space, tab, CR, LF, comma, semicolon) into one space, drops
// a space before / or (, and lower-cases ASCII letters. changed is true
// when the output differs from s.
//
// Coraza copies the value as soon as it holds any of those characters, a
// single space or slash included; most values that do (prose, paths) come
// out as they went in, so this checks that first and then returns s as it
// is.
func CmdLine(s string) (string, bool, error) {
	if cmdLineKeeps(s) {
		return s, false, nil
	}
	b := make([]byte, 0, len(s))
	space := false // the last byte written is a separator's space
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case cmdLineDropped(c):
			// Dropped without ending a run of separators.
		case cmdLineSeparator(c):
			if !space {
				b = append(b, ' ')
				space = true
			}
		case c == '/' || c == '(':
			if space {
				b = b[:len(b)-1]
			}
			b = append(b, c)
			space = false
		default:
			b = append(b, lowerASCII(c))
			space = false
		}
	}
	return bytesString(b), true, nil
}

// cmdLineKeeps reports whether CmdLine leaves s as it is: no upper-case
// ASCII letter, no dropped character, no separator other than single
// spaces, and none of those spaces before / or (.
func cmdLineKeeps(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', cmdLineDropped(c):
			return false
		case c == ' ':
			if i+1 < len(s) && (cmdLineSeparator(s[i+1]) || s[i+1] == '/' || s[i+1] == '(') {
				return false
			}
		case cmdLineSeparator(c):
			return false
		}
	}
	return true
}

func cmdLineDropped(c byte) bool { return c == '"' || c == '\'' || c == '\\' || c == '^' }

func cmdLineSeparator(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ',' || c == ';'
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
