package waf

import (
	"strings"
	"testing"
)

func TestSplitDirectives(t *testing.T) {
	src := "# comment\n\nSecRuleEngine On\nSecRule ARGS \"@rx a\" \\\n  \"id:1,phase:1,deny,chain\"\n  SecRule ARGS \"@rx b\" \"t:none\"\n\n  # indented comment\nSecAction \"id:2,pass\"\nSecDataset x `\na\nb\n`\n"
	got := splitDirectives(src)
	want := []directive{
		{3, "SecRuleEngine On"},
		{4, "SecRule ARGS \"@rx a\" \"id:1,phase:1,deny,chain\"\nSecRule ARGS \"@rx b\" \"t:none\""},
		{9, "SecAction \"id:2,pass\""},
		{10, "SecDataset x `\na\nb\n`"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("directive %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

// FuzzSplitDirectives: directives come in file order with line numbers
// inside the file, and no text appears that was not in the file: all the
// directives' text, in order and leaving out white space, is a subsequence
// of the file's (splitting only drops comments, blank lines, indentation
// and line-continuing backslashes, and joins chained rules with a newline).
func FuzzSplitDirectives(f *testing.F) {
	f.Add("SecRule ARGS \"@rx a\" \"id:1,deny\"\n")
	f.Add("# c\nSecRule A \"b\" \\\n  \"id:1,chain\"\n SecRule B \"c\" \"t:none\"\n")
	f.Add("SecDataset x `\na\n`\nSecAction \"id:2\"")
	f.Add("\\\n\\\n`")
	f.Fuzz(func(t *testing.T, src string) {
		lines := strings.Count(src, "\n") + 1
		prev := 0
		rest := src
		for _, d := range splitDirectives(src) {
			if d.line < 1 || d.line > lines || d.line < prev {
				t.Fatalf("line %d out of order or range (prev %d, %d lines)", d.line, prev, lines)
			}
			prev = d.line
			if strings.TrimSpace(d.text) == "" {
				t.Fatalf("empty directive at line %d", d.line)
			}
			var ok bool
			if rest, ok = consumeSubsequence(rest, d.text); !ok {
				t.Fatalf("directive at line %d has text that is not in the file, in order: %q", d.line, d.text)
			}
		}
	})
}

// consumeSubsequence reports whether the non-space bytes of text appear in
// order in src, and returns what of src follows the last of them.
func consumeSubsequence(src, text string) (string, bool) {
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' {
			continue
		}
		j := strings.IndexByte(src, c)
		if j < 0 {
			return src, false
		}
		src = src[j+1:]
	}
	return src, true
}

// FuzzPackMeta: pack.yaml decoding never panics, and success means a name.
func FuzzPackMeta(f *testing.F) {
	f.Add([]byte("name: api-hardening\nversion: 1.0.0\ndescription: x\n"))
	f.Add([]byte("name: x\nextra: 1\n"))
	f.Add([]byte("version: 2\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := parsePackMeta(raw)
		if err == nil && strings.TrimSpace(m.Name) == "" {
			t.Fatal("accepted a pack without a name")
		}
	})
}
