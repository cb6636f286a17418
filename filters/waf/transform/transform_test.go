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

type transformation struct {
	name string
	fn   func(string) (string, bool, error)
}

var all = []transformation{
	{"replaceComments", ReplaceComments},
	{"removeWhitespace", RemoveWhitespace},
	{"compressWhitespace", CompressWhitespace},
	{"cmdLine", CmdLine},
	{"htmlEntityDecode", HTMLEntityDecode},
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

func BenchmarkTransformations(b *testing.B) {
	values := map[string]string{
		"unchanged": strings.Repeat("ordinary-value_", 20),
		"changed":   strings.Repeat("a b/*c*/d ", 30),
	}
	for _, tr := range all {
		for kind, v := range values {
			b.Run(tr.name+"/"+kind, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					tr.fn(v)
				}
			})
		}
	}
}
