package transform

import (
	"path/filepath"
	"strings"
)

// NormalizePath (SecLang normalizePath, or normalisePath) cleans a path as
// filepath.Clean does on this platform, Coraza's too: repeated slashes,
// "." and "x/.." go. A trailing slash stays, so "/" itself becomes "//"
// (Clean's "/" and the slash put back), and a path that cleans to "."
// becomes "". changed is true when the output differs from s, and for
// "." even though "" is shorter only because it is empty.
//
// filepath.Clean does not allocate for a path that is clean already, and
// a clean path with a trailing slash is s itself: Coraza appends the slash
// to a copy either way.
func NormalizePath(s string) (string, bool, error) {
	if s == "" {
		return s, false, nil
	}
	clean := filepath.Clean(s)
	if clean == "." {
		return "", true, nil
	}
	if s[len(s)-1] == '/' {
		if len(clean) == len(s)-1 && s[:len(clean)] == clean {
			return s, false, nil
		}
		return clean + "/", true, nil
	}
	if clean == s {
		return s, false, nil
	}
	return clean, true, nil
}

// NormalizePathWin (SecLang normalizePathWin, or normalisePathWin) is
// NormalizePath with backslashes read as slashes, and then what Windows
// ignores when it opens a file: an alternate data stream, from the first
// ':' of the last component ("a.txt::$DATA", "a.txt:x"; a drive letter's
// colon is not one), and the dots and spaces that end any component not
// made only of dots ("a.txt." and "a.txt " open a.txt); a component of
// dots and spaces with a space in it goes altogether. changed is true
// when the output differs from s.
func NormalizePathWin(s string) (string, bool, error) {
	if s == "" {
		return s, false, nil
	}
	p := s
	if strings.IndexByte(p, '\\') >= 0 {
		p = strings.ReplaceAll(p, `\`, "/")
	}
	p, _, _ = NormalizePath(p)
	p = winStripStream(p)
	p = winTrimComponents(p)
	if p == s {
		return s, false, nil
	}
	return p, true, nil
}

// winStripStream cuts the last component of p at its first ':'. The
// trailing slash NormalizePath keeps does not count as the end of the
// last component; a leading drive ("C:") is not part of it.
func winStripStream(p string) string {
	head := 0
	if len(p) >= 2 && p[1] == ':' && ('a' <= p[0]|0x20 && p[0]|0x20 <= 'z') {
		head = 2
	}
	end := len(p)
	if end > head && p[end-1] == '/' {
		end--
	}
	last := head + strings.LastIndexByte(p[head:end], '/') + 1
	colon := strings.IndexByte(p[last:end], ':')
	if colon < 0 {
		return p
	}
	return p[:last+colon] + p[end:]
}

// winTrimComponents drops the dots and spaces that end each component of
// p other than one made only of dots (".", "..", or none at all between
// two slashes), and drops a component, slash and all, that is left empty.
func winTrimComponents(p string) string {
	if !winTrims(p) {
		return p
	}
	b := make([]byte, 0, len(p))
	wrote := false
	for rest := p; ; {
		seg, tail, more := strings.Cut(rest, "/")
		keep := true
		if !onlyDots(seg) {
			seg = strings.TrimRight(seg, ". ")
			keep = seg != ""
		}
		if keep {
			if wrote {
				b = append(b, '/')
			}
			b = append(b, seg...)
			wrote = true
		}
		if !more {
			return bytesString(b)
		}
		rest = tail
	}
}

// winTrims reports whether winTrimComponents changes p: a component not
// made only of dots ends in a dot or a space.
func winTrims(p string) bool {
	for rest := p; ; {
		seg, tail, more := strings.Cut(rest, "/")
		if !onlyDots(seg) && (seg[len(seg)-1] == '.' || seg[len(seg)-1] == ' ') {
			return true
		}
		if !more {
			return false
		}
		rest = tail
	}
}

func onlyDots(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '.' {
			return false
		}
	}
	return true
}
