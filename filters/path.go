package filters

import (
	"path"
	"strings"
)

// MatchPath is p as every path-scoped setting compares it (routes, quota
// policies, the WAF's per-path settings): cleaned as net/http's ServeMux
// cleans (no "//", "." or ".."), with a trailing slash kept, and with the
// path parameters of each segment (";jsessionid=...", which Java servers
// drop before routing) removed. A client must not dodge a setting by
// spelling the same resource another way that the backend still serves as
// that resource.
func MatchPath(p string) string {
	p = StripPathParams(p)
	if p == "" || p[0] != '/' {
		p = "/" + p
	}
	c := path.Clean(p)
	if c != "/" && p[len(p)-1] == '/' {
		c += "/"
	}
	return c
}

// StripPathParams removes the path parameters of each segment of p
// (";jsessionid=..." in "/a;jsessionid=1/b"), which Java servers drop before
// routing and so must not make one resource look like another.
func StripPathParams(p string) string {
	if strings.IndexByte(p, ';') < 0 {
		return p
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if j := strings.IndexByte(s, ';'); j >= 0 {
			segs[i] = s[:j]
		}
	}
	return strings.Join(segs, "/")
}
