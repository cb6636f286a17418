package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// unquote reads back a literal quote wrote, the way Lua does: \" and \\
// stand for themselves, \ddd for the byte with that decimal value.
func unquote(t *testing.T, lit string) string {
	t.Helper()
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		t.Fatalf("literal %q is not in double quotes", lit)
	}
	var b strings.Builder
	for s := lit[1 : len(lit)-1]; s != ""; {
		c := s[0]
		switch {
		case c == '"':
			t.Fatalf("literal %q holds an unescaped quote", lit)
		case c < ' ' || c > '~':
			t.Fatalf("literal %q holds the raw byte %#x", lit, c)
		case c != '\\':
			b.WriteByte(c)
			s = s[1:]
		case len(s) >= 2 && (s[1] == '"' || s[1] == '\\'):
			b.WriteByte(s[1])
			s = s[2:]
		default:
			n, err := strconv.Atoi(s[1:min(4, len(s))])
			if err != nil || len(s) < 4 || n > 255 {
				t.Fatalf("literal %q: bad escape at %q", lit, s)
			}
			b.WriteByte(byte(n))
			s = s[4:]
		}
	}
	return b.String()
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		``:                 `""`,
		`a' OR 1=1--`:      `"a' OR 1=1--"`,
		`say "hi" \o/`:     `"say \"hi\" \\o/"`,
		"tab\tnul\x001":    `"tab\009nul\0001"`,
		"\xc0\xaf\xff end": `"\192\175\255 end"`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// FuzzQuote: whatever the bytes, the literal holds only visible ASCII and
// reads back as the input. Seeds: testdata/fuzz/FuzzQuote.
func FuzzQuote(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		if got := unquote(t, quote(s)); got != s {
			t.Fatalf("quote(%q) reads back as %q", s, got)
		}
	})
}

func TestSendable(t *testing.T) {
	data := "var=1 OR 1=1"
	ua := yaml.MapSlice{{Key: "Host", Value: "localhost"}, {Key: "User-Agent", Value: "test agent"}}
	for _, tc := range []struct {
		name    string
		method  string
		uri     string
		headers yaml.MapSlice
		data    *string
		encoded string
		ok      bool
		nHeader int // headers kept, Content-Type added to a form body included
	}{
		{"GET by default", "", "/?a=<script>", ua, nil, "", true, 1},
		{"POST body gets the form type", "POST", "/post", ua, &data, "", true, 2},
		{"PUT is not sent", "PUT", "/", ua, nil, "", false, 0},
		{"body on a GET is not sent", "GET", "/", ua, &data, "", false, 0},
		{"absolute URI is not sent", "GET", "http://x/", ua, nil, "", false, 0},
		{"space in URI is not sent", "GET", "/a b", ua, nil, "", false, 0},
		{"raw request is not sent", "GET", "/", ua, nil, "R0VUIC8=", false, 0},
		{"framing header is not sent", "GET", "/", yaml.MapSlice{{Key: "Content-Length", Value: "5"}}, nil, "", false, 0},
		{"newline in body is not sent", "POST", "/", ua, ptr("a=1\nb=2"), "", false, 0},
	} {
		a, ok := sendable(1, 1, tc.method, tc.uri, tc.headers, tc.data, tc.encoded)
		if ok != tc.ok || len(a.headers) != tc.nHeader {
			t.Errorf("%s: ok %v with %d headers, want %v with %d", tc.name, ok, len(a.headers), tc.ok, tc.nHeader)
		}
	}
}

func ptr(s string) *string { return &s }
