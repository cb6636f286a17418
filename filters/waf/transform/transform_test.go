package transform

import (
	"fmt"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3"
)

// stock reaches Coraza's own transformations, which Coraza keeps internal,
// through a WAF of two rules per transformation that match its argument
// unconditionally: the first gives the output (the matched value is the
// transformed one), the second, with multiMatch, the changed flag (it
// evaluates the value as it came, then again after the transformation only
// when that reported a change). This test binary never calls Register, so
// the WAF is compiled with Coraza's functions.
type stock struct {
	waf   coraza.WAF
	names []string
}

func newStock(t testing.TB, names ...string) *stock {
	t.Helper()
	var rules strings.Builder
	rules.WriteString("SecRuleEngine On\n")
	for i, name := range names {
		fmt.Fprintf(&rules, "SecRule ARGS_GET:%s \"@unconditionalMatch\" \"id:%d,phase:1,pass,log,t:none,t:%s\"\n", name, 2*i+1, name)
		fmt.Fprintf(&rules, "SecRule ARGS_GET:%s \"@unconditionalMatch\" \"id:%d,phase:1,pass,log,multiMatch,t:none,t:%s\"\n", name, 2*i+2, name)
	}
	w, err := coraza.NewWAF(coraza.NewWAFConfig().WithDirectives(rules.String()))
	if err != nil {
		t.Fatal(err)
	}
	return &stock{waf: w, names: names}
}

// run returns Coraza's output and changed flag for transformation name.
func (s *stock) run(t testing.TB, name, in string) (string, bool) {
	t.Helper()
	tx := s.waf.NewTransaction()
	defer tx.Close()
	tx.AddGetRequestArgument(name, in)
	tx.ProcessRequestHeaders()
	var out []string
	changed := 0
	for _, mr := range tx.MatchedRules() {
		ds := mr.MatchedDatas()
		switch {
		case mr.Rule().ID()%2 == 1 && len(ds) == 1:
			out = append(out, ds[0].Value())
		case mr.Rule().ID()%2 == 0 && (len(ds) == 1 || len(ds) == 2):
			changed = len(ds)
		default:
			t.Fatalf("%s(%q): rule %d matched %d values", name, in, mr.Rule().ID(), len(ds))
		}
	}
	if len(out) != 1 || changed == 0 {
		t.Fatalf("%s(%q): the rules matched %d and %d times, want once each", name, in, len(out), changed)
	}
	return out[0], changed == 2
}

type tested struct {
	name string
	fn   func(string) (string, bool, error)
}

// all is what the tests check against Coraza; TestLookup checks that it
// and the package's table hold the same transformations.
var all = []tested{
	{"replaceComments", ReplaceComments},
	{"removeWhitespace", RemoveWhitespace},
	{"compressWhitespace", CompressWhitespace},
	{"cmdLine", CmdLine},
	{"htmlEntityDecode", HTMLEntityDecode},
	{"urlDecodeUni", URLDecodeUni},
	{"utf8toUnicode", UTF8ToUnicode},
	{"jsDecode", JSDecode},
	{"cssDecode", CSSDecode},
	{"removeNulls", RemoveNulls},
	{"lowercase", Lowercase},
	{"normalizePath", NormalizePath},
	{"normalisePath", NormalizePath},
	{"normalizePathWin", NormalizePathWin},
	{"normalisePathWin", NormalizePathWin},
	{"urlDecode", URLDecode},
	{"escapeSeqDecode", EscapeSeqDecode},
}

// seeds are the table for every transformation and the fuzz seeds.
var seeds = []string{
	"", "a", "plain text", "/*", "*/", "/**/", "/*/", "a/*b*/c", "a/*b", "a/*b*/c/*d", "a/*b/*c*/d*/e", "/*a*//*b*/",
	" ", "\t\n\v\f\r ", "a b\tc", "\u0085\u00a0x\u2003y\u3000", "\xff", "a\xffb c", "\xe2\x80", "é è", "select/**/1",
	"1 union/*!50000select*/ 2", "\x00 \x00",
	// compressWhitespace: NBSP as a character, as a Latin-1 byte where a
	// character starts, and as the tail of one (à is C3 A0).
	"a  b", "a \tb", " a ", "a\u00a0b", "a \u00a0b", "a\xa0b", "a \xa0", "\xe2\xa0b", "à la carte", "a\u0085b", "a\xc2 b",
	// cmdLine.
	"cat /etc/passwd", "cat  /etc", "cat /(x)", "a (b)", "x^y", `"a" 'b' \c`, "A,B;C", "a,,b", "a, b", "a ;b", "; /", "leave at the door",
	"ls\t-l\r\n", "^ ^", " ^/",
	// htmlEntityDecode: references with and without ';', numeric ones,
	// one that decodes to as many bytes as it took (&acE;), and no
	// reference at all.
	"&lt;script&gt;", "a&b", "&amp", "&#60;&#x3c;&#X3C", "&acE;", "&unknown;", "?page=2&sort=price", "&", "&#0;", "&#x110000;",
	// urlDecodeUni: valid, invalid and cut-short %HH; '+'; %u and %U with
	// best-fit (é, NBSP, full-width), plain low-byte and full-width-range
	// edges; %u cut short or invalid, which leaves "%u" and goes on after it.
	"%41", "%4", "%", "%zz", "%4g", "%g4", "+", "a+b", "%2B", "100%", "%%41", "%00", "%u0041", "%U0041", "%uff01", "%uFF1C",
	"%uff5e", "%uff5f", "%uff00", "%u00e9", "%u00a0", "%u1234", "%u0000", "%u12", "%u", "%u004", "%uzzzz", "%u%41", "%u00%41",
	"a%u00e9b+c%2", "%uu0041",
	// utf8toUnicode: two-, three- and four-byte characters, the padding
	// below U+1000, six digits past U+FFFFF, and invalid bytes.
	"\u00ff\u0100", "\u0fff\u1000", "\u20ac", "\U0001f600", "\U000fffff\U00100000", "\U0010ffff", "\ufffd", "a\xc3", "\xc3\xa9",
	// jsDecode: \u{} with one to six digits, none, seven, unclosed and
	// full-width with a leading zero; \uHHHH with and without the
	// full-width fold; \x; octal of one to four digits, past \377;
	// named controls; any other byte; a backslash at the end.
	`\u{41}`, `\u{1F600}`, `\u{0ff01}`, `\u{ff01}`, `\u{1ff01}`, `\u{}`, `\u{1234567}`, `\u{41`, `\u{000041}`, `\u0041`, `\uff01`, `\uFF5e`,
	`\uff5f`, `\uff00`, `\uFe01`, `\u00`, `\uzzzz`, `\U0041`, `\x41`, `\x4`, `\xzz`, `\X41`, `\0`, `\00`, `\101`, `\1011`, `\377`, `\400`,
	`\777`, `\8`, `\a\b\f\n\r\t\v`, `\'\"\?`, `\\`, `a\`, `\`, `\\\`, `x\x41\`,
	// escapeSeqDecode also: \X, three octal digits past \377, a fourth.
	`\X4a`, `\X4`, `\477`, `\7777`, `\1\12\123`,
	// cssDecode: one to six hex digits and a seventh; the white space
	// dropped after them; zero, surrogates and values past U+10FFFF;
	// full-width; a backslash before a newline, another byte, nothing.
	`\41`, `\41 b`, "\\41\tb", "\\41\r\nb", `\000041x`, `\0000041`, `\e9`, `\E9`, `\1F600`, `\d800`, `\110000`, `\ffffff`,
	`\ff01`, `\FF5E`, `\ff5f`, "a\\\nb", `\g`, `\\41`, `\41\42`,
	// removeNulls.
	"\x00", "a\x00b\x00", "\x00\x00x",
	// lowercase: ASCII, characters that change length (İ), the Kelvin
	// sign, and invalid bytes, rewritten as U+FFFD only alongside a change.
	"ABC", "aBc", "\u00c9t\u00c9", "\u0130", "\u212a", "\u1e9e", "\u03a9", "A\xff", "\xe9\xff", "\u00e9",
	// lowercase eight bytes at a time: the bytes either side of A-Z, a
	// capital in the tail, a non-ASCII byte after a clean word.
	"abcdefg@", "abcdefg[", "@[`{@[`{Z", "aaaaaaaaAaaaaaaaa", "aaaaaaaa\u00c9", "ABCDEFGH\xff",
	// normalizePath: ".", "..", repeated and trailing slashes, "/" alone,
	// relative paths climbing out. normalizePathWin also: backslashes,
	// drive letters, data streams, trailing dots and spaces, components
	// of dots and spaces.
	".", "..", "./", "/", "//", "/a/", "/a//b/./c/../d", "a/b/../../..", "../a/", "/..", "a/.", "a/./", "/etc/passwd",
	`C:\Windows\..\boot.ini`, `c:/a/b`, `C:`, `C:a:b`, `\\server\share`, "a.txt::$DATA", "dir/a.txt:x/", "d:ir/a", "a.txt.",
	"a.txt ", "a. ./b", " /a", "a/ /b", "a/.../b", "a/.. /b", "x:/", "a:b/c:d:e", "...", `a\b\`, "a/b. /",
}

// Stock values whose output is not the input while changed is false: the
// rewriting of bytes that are not valid UTF-8 (see RemoveWhitespace).
func TestAgainstCoraza(t *testing.T) {
	names := make([]string, len(all))
	for i, tr := range all {
		names[i] = tr.name
	}
	ref := newStock(t, names...)
	for _, tr := range all {
		for _, in := range seeds {
			wantOut, wantChanged := ref.run(t, tr.name, in)
			gotOut, gotChanged, err := tr.fn(in)
			if err != nil || gotOut != wantOut || gotChanged != wantChanged {
				t.Errorf("%s(%q) = %q, %v, %v; Coraza: %q, %v", tr.name, in, gotOut, gotChanged, err, wantOut, wantChanged)
			}
		}
	}
}

// TestUnchangedAllocatesNothing: the point of the package. The values
// include the ones Coraza copies although they come out unchanged: single
// spaces for compressWhitespace, spaces and slashes for cmdLine.
func TestUnchangedAllocatesNothing(t *testing.T) {
	plain := strings.Repeat("ordinary-value_", 20)
	prose := "leave at the door"
	keep := map[string][]string{
		"replaceComments":    {plain, prose, "a/b*c"},
		"removeWhitespace":   {plain, "a/b*c"},
		"compressWhitespace": {plain, prose, " a b "},
		"cmdLine":            {plain, prose, "/catalog/shoes a/b(c) d"},
		"htmlEntityDecode":   {plain, prose, "a;b#c"},
		"urlDecodeUni":       {plain, prose, "100% %zz %u12", "trailing %"},
		"utf8toUnicode":      {plain, prose},
		"jsDecode":           {plain, prose, `ends with a \`},
		"cssDecode":          {plain, prose},
		"removeNulls":        {plain, prose, "\u00e9"},
		"lowercase":          {plain, prose, "d\u00e9j\u00e0 vu"},
		"normalizePath":      {plain, prose, "/catalog/shoes/", "a/b"},
		"normalisePath":      {plain, prose, "/catalog/shoes/", "a/b"},
		"normalizePathWin":   {plain, prose, "/catalog/shoes/", "c:/a"},
		"normalisePathWin":   {plain, prose, "/catalog/shoes/", "c:/a"},
		"urlDecode":          {plain, prose},
		"escapeSeqDecode":    {plain, prose, `ends with a \`},
	}
	for _, tr := range all {
		if len(keep[tr.name]) == 0 {
			t.Errorf("%s: no value to check", tr.name)
		}
		for _, in := range keep[tr.name] {
			if out, changed, err := tr.fn(in); out != in || changed || err != nil {
				t.Errorf("%s(%q) = %q, %v, %v; want it unchanged", tr.name, in, out, changed, err)
				continue
			}
			if n := testing.AllocsPerRun(100, func() { tr.fn(in) }); n != 0 {
				t.Errorf("%s(%q), which it keeps: %v allocations, want 0", tr.name, in, n)
			}
		}
	}
}

func fuzzAgainstCoraza(f *testing.F, name string, fn func(string) (string, bool, error)) {
	for _, s := range seeds {
		f.Add(s)
	}
	ref := newStock(f, name)
	f.Fuzz(func(t *testing.T, in string) {
		wantOut, wantChanged := ref.run(t, name, in)
		gotOut, gotChanged, err := fn(in)
		if err != nil || gotOut != wantOut || gotChanged != wantChanged {
			t.Fatalf("%s(%q) = %q, %v, %v; Coraza: %q, %v", name, in, gotOut, gotChanged, err, wantOut, wantChanged)
		}
	})
}

func FuzzReplaceComments(f *testing.F)  { fuzzAgainstCoraza(f, "replaceComments", ReplaceComments) }
func FuzzRemoveWhitespace(f *testing.F) { fuzzAgainstCoraza(f, "removeWhitespace", RemoveWhitespace) }
func FuzzCompressWhitespace(f *testing.F) {
	fuzzAgainstCoraza(f, "compressWhitespace", CompressWhitespace)
}
func FuzzCmdLine(f *testing.F)          { fuzzAgainstCoraza(f, "cmdLine", CmdLine) }
func FuzzHTMLEntityDecode(f *testing.F) { fuzzAgainstCoraza(f, "htmlEntityDecode", HTMLEntityDecode) }
func FuzzURLDecodeUni(f *testing.F)     { fuzzAgainstCoraza(f, "urlDecodeUni", URLDecodeUni) }
func FuzzUTF8ToUnicode(f *testing.F)    { fuzzAgainstCoraza(f, "utf8toUnicode", UTF8ToUnicode) }
func FuzzJSDecode(f *testing.F)         { fuzzAgainstCoraza(f, "jsDecode", JSDecode) }
func FuzzCSSDecode(f *testing.F)        { fuzzAgainstCoraza(f, "cssDecode", CSSDecode) }
func FuzzRemoveNulls(f *testing.F)      { fuzzAgainstCoraza(f, "removeNulls", RemoveNulls) }
func FuzzLowercase(f *testing.F)        { fuzzAgainstCoraza(f, "lowercase", Lowercase) }
func FuzzNormalizePath(f *testing.F)    { fuzzAgainstCoraza(f, "normalizePath", NormalizePath) }
func FuzzNormalizePathWin(f *testing.F) { fuzzAgainstCoraza(f, "normalizePathWin", NormalizePathWin) }
func FuzzURLDecode(f *testing.F)        { fuzzAgainstCoraza(f, "urlDecode", URLDecode) }
func FuzzEscapeSeqDecode(f *testing.F)  { fuzzAgainstCoraza(f, "escapeSeqDecode", EscapeSeqDecode) }

// TestLowercaseEachASCIIByte: every ASCII byte at every place of the
// eight-byte words Lowercase reads, against Coraza's (called directly).
func TestLowercaseEachASCIIByte(t *testing.T) {
	ref := corazaFn(t, "lowercase")
	for c := 0; c < 0x80; c++ {
		for at := 0; at < 17; at++ {
			in := []byte(strings.Repeat("a", 17))
			in[at] = byte(c)
			wantOut, wantChanged, _ := ref(string(in))
			gotOut, gotChanged, _ := Lowercase(string(in))
			if gotOut != wantOut || gotChanged != wantChanged {
				t.Fatalf("Lowercase(%q) = %q, %v; Coraza: %q, %v", in, gotOut, gotChanged, wantOut, wantChanged)
			}
		}
	}
}

// TestLookup: every transformation of all is in the package's table and
// found by Lookup under its name in any case, as Coraza's registry finds
// it; the table holds nothing else; "none" and unknown names are not found.
func TestLookup(t *testing.T) {
	if len(table) != len(all) {
		t.Errorf("table has %d transformations, the tests %d", len(table), len(all))
	}
	for i, tr := range all {
		if i < len(table) && table[i].name != tr.name {
			t.Errorf("table[%d] is %s, all[%d] %s", i, table[i].name, i, tr.name)
		}
		for _, name := range []string{tr.name, strings.ToLower(tr.name), strings.ToUpper(tr.name)} {
			fn, ok := Lookup(name)
			if !ok {
				t.Errorf("Lookup(%q): not found", name)
				continue
			}
			// The same function: same answer on a value every one changes.
			in := "A B/*c*/ %41\\x41 \x00\t&lt; é"
			gotOut, gotChanged, _ := fn(in)
			wantOut, wantChanged, _ := tr.fn(in)
			if gotOut != wantOut || gotChanged != wantChanged {
				t.Errorf("Lookup(%q) is not %s", name, tr.name)
			}
		}
	}
	for _, name := range []string{"none", "", "urldecode ", "lowercasE ", "ſ"} {
		if _, ok := Lookup(name); ok {
			t.Errorf("Lookup(%q) found a function", name)
		}
	}
}

// BenchmarkTransformations times each transformation, ours and Coraza's
// (called directly, see corazaTransformation), on a value it leaves
// unchanged and on one it changes. Ours and Coraza's run back to back; to
// compare them on a busy machine, run the test binary several times
// rather than with -count (which repeats each benchmark in a row), so
// load falls on both alike.
func BenchmarkTransformations(b *testing.B) {
	unchanged := strings.Repeat("ordinary-value_", 20)
	changed := map[string]string{
		"urlDecodeUni":  strings.Repeat("a+b%20c%u0041d", 21),
		"utf8toUnicode": strings.Repeat("caf\u00e9 d\u00e9j\u00e0 ", 15),
		"jsDecode":      strings.Repeat("a\\x41b\\u0042cd", 20),
		"cssDecode":     strings.Repeat("a\\41 b\\42cdefg", 20),
		"removeNulls":   strings.Repeat("ordinary-value\x00", 20),
		"lowercase":     strings.Repeat("Ordinary-Value_", 20),

		"normalizePath":    "/static/./css//site/../main.css/",
		"normalisePath":    "/static/./css//site/../main.css/",
		"normalizePathWin": `C:\inetpub\wwwroot\..\web.config::$DATA`,
		"urlDecode":        strings.Repeat("a+b%20c%41d", 27),
		"escapeSeqDecode":  strings.Repeat("a\\x41b\\101cd", 25),
		"normalisePathWin": `C:\inetpub\wwwroot\..\web.config::$DATA`,

		"compressWhitespace": strings.Repeat("a  b\t\tc ", 30),
		"cmdLine":            strings.Repeat("Cat /etc/x;ls ", 21),
		"htmlEntityDecode":   strings.Repeat("a&lt;b&amp;c ", 23),
	}
	for _, tr := range all {
		v := changed[tr.name]
		if v == "" {
			v = strings.Repeat("a b/*c*/d ", 30)
		}
		ref := corazaFn(b, tr.name)
		for _, kind := range []struct{ name, v string }{{"unchanged", unchanged}, {"changed", v}} {
			for _, impl := range []struct {
				name string
				fn   func(string) (string, bool, error)
			}{{"ours", tr.fn}, {"coraza", ref}} {
				b.Run(tr.name+"/"+kind.name+"/"+impl.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						impl.fn(kind.v)
					}
				})
			}
		}
	}
}
