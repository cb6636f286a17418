package waf

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// fusedInCRS rewrites every CRS rule file and counts the rules fused.
func fusedInCRS(t *testing.T) (fused, files int) {
	t.Helper()
	names, err := fs.Glob(coreruleset.FS, "@owasp_crs/*.conf")
	if err != nil || len(names) == 0 {
		t.Fatalf("CRS rule files: %v, %v", names, err)
	}
	for _, n := range names {
		src, err := fs.ReadFile(coreruleset.FS, n)
		if err != nil {
			t.Fatal(err)
		}
		out, k := fuseRules(src)
		if strings.Count(string(out), "\n") != strings.Count(string(src), "\n") {
			t.Errorf("%s: %d lines rewritten to %d", n, strings.Count(string(src), "\n"), strings.Count(string(out), "\n"))
		}
		fused += k
	}
	return fused, len(names)
}

// TestFuseCRSCount: how many CRS rules skip Coraza's transformation cache,
// pinned so that a CRS update or a transformation leaving the package is
// seen here, and every file keeps its line count.
func TestFuseCRSCount(t *testing.T) {
	fused, files := fusedInCRS(t)
	if fused != 137 {
		t.Errorf("%d rules fused in %d CRS files, want 137 with CRS v4.25 (say in filters/waf/README.md what changed)", fused, files)
	}
}

// TestFuseRules: which rules are rewritten and to what. The rest are left
// byte for byte, and every later line keeps its number.
func TestFuseRules(t *testing.T) {
	tests := []struct {
		name, src, want string
		fused           int
	}{
		{"one line",
			`SecRule ARGS "@rx a\"b" "id:1,phase:2,t:none,t:cmdLine,t:htmlEntityDecode,block,msg:'x, y'"` + "\n",
			`SecRule ARGS "@rxchain cmdLine,htmlEntityDecode a\"b" "id:1,phase:2,t:none,block,msg:'x, y'"` + "\n", 1},
		{"continued over lines, with a comment and a blank line inside",
			"SecRule ARGS|ARGS_NAMES \"!@rx  ^x$\" \\\n    \"id:2,\\\n# note\n\n    t:none,t:lowercase,t:none,\\\n    t:cmdLine,\\\n    pass\"\nSecAction \"id:3\"\n",
			"SecRule ARGS|ARGS_NAMES \"!@rxchain cmdLine ^x$\" \"id:2,t:none,pass\"\n\n\n\n\n\n\nSecAction \"id:3\"\n", 1},
		{"chain starter and its child stay", "SecRule ARGS \"@rx a\" \"id:4,t:none,t:cmdLine,chain\"\nSecRule MATCHED_VAR \"@rx b\" \"t:none,t:cmdLine\"\n", "", 0},
		{"multiMatch stays", `SecRule ARGS "@rx a" "id:5,multiMatch,t:none,t:cmdLine"` + "\n", "", 0},
		{"a transformation without a copy stays", `SecRule ARGS "@rx a" "id:6,t:none,t:base64Decode"` + "\n", "", 0},
		{"no t:none first stays", `SecRule ARGS "@rx a" "id:7,t:cmdLine"` + "\n", "", 0},
		{"no transformation stays", `SecRule ARGS "@rx a" "id:8,t:none"` + "\n", "", 0},
		{"another operator stays", `SecRule ARGS "@pm a b" "id:9,t:none,t:cmdLine"` + "\n", "", 0},
		{"a macro in the pattern stays", `SecRule ARGS "@rx %{tx.x}" "id:10,t:none,t:cmdLine"` + "\n", "", 0},
		{"a backtick block leaves the file alone", "SecDataset x `\na\n`\n" + `SecRule ARGS "@rx a" "id:11,t:none,t:cmdLine"` + "\n", "", 0},
		{"after a child the next rule is fused",
			"SecRule ARGS \"@rx a\" \"id:12,t:none,chain\"\nSecRule ARGS \"@rx b\" \"t:none\"\nSecRule ARGS \"@rx c\" \"id:13,t:none,t:cmdLine\"\n",
			"SecRule ARGS \"@rx a\" \"id:12,t:none,chain\"\nSecRule ARGS \"@rx b\" \"t:none\"\nSecRule ARGS \"@rxchain cmdLine c\" \"id:13,t:none\"\n", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want == "" {
				want = tc.src
			}
			got, n := fuseRules([]byte(tc.src))
			if string(got) != want || n != tc.fused {
				t.Fatalf("fused %d:\n%s\nwant %d:\n%s", n, got, tc.fused, want)
			}
		})
	}
}

// TestChainRx: @rxchain matches what @rx matches after the named
// transformations, and refuses arguments it cannot build from.
func TestChainRx(t *testing.T) {
	useOwnPlugins()
	op, err := newChainRx(plugintypes.OperatorOptions{Arguments: "htmlEntityDecode,cmdLine  ^<script"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"&lt;SCRIPT>", true},     // decoded, then lower-cased by cmdLine
		{`<"sc"ript`, true},       // cmdLine drops the quotes
		{"x<script", false},       // anchored
		{"&amp;lt;script", false}, // one decoding only
	} {
		if got := op.Evaluate(notCapturing{}, tc.in); got != tc.want {
			t.Errorf("@rxchain on %q = %v, want %v", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "cmdLine", "base64Decode x", "cmdLine ("} {
		if _, err := newChainRx(plugintypes.OperatorOptions{Arguments: bad}); err == nil {
			t.Errorf("@rxchain %q built", bad)
		}
	}
}

// notCapturing is the part of a transaction @rx reads when the rule has no
// capture action.
type notCapturing struct{ plugintypes.TransactionState }

func (notCapturing) Capturing() bool { return false }
