package rx

import (
	"encoding/base64"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/corazawaf/coraza-coreruleset/v4"
	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"
	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/goccy/go-yaml"
	"rsc.io/binaryregexp"
)

var (
	crsOnce     sync.Once
	crsPatterns []string
	crsErr      error
)

// allCRSPatterns returns every distinct @rx argument of CRS (setup and
// rules), as Coraza's own SecLang parser hands it to the operator: a
// recording factory stands in for @rx while a WAF with CRS is built, then
// this package's operator is registered again.
func allCRSPatterns(t testing.TB) []string {
	t.Helper()
	crsOnce.Do(func() {
		seen := map[string]bool{}
		plugins.RegisterOperator(Name, func(o plugintypes.OperatorOptions) (plugintypes.Operator, error) {
			if !seen[o.Arguments] {
				seen[o.Arguments] = true
				crsPatterns = append(crsPatterns, o.Arguments)
			}
			return New(o)
		})
		defer Register()
		_, crsErr = coraza.NewWAF(coraza.NewWAFConfig().WithRootFS(coreruleset.FS).
			WithDirectives("Include @crs-setup.conf.example").
			WithDirectives("Include @owasp_crs/*.conf"))
	})
	if crsErr != nil {
		t.Fatalf("building CRS to collect its patterns: %v", crsErr)
	}
	if len(crsPatterns) < 250 {
		t.Fatalf("collected only %d CRS @rx patterns", len(crsPatterns))
	}
	return crsPatterns
}

// reference is Coraza v3.8.1's @rx, restated: Go's regexp over (?sm)
// and the pattern, or binaryregexp over the bare pattern when it matches
// bytes outside UTF-8. It returns the submatch index pairs, nil for no
// match.
type reference func(string) []int

func newReference(pattern string) (reference, error) {
	if matchesArbitraryBytes(pattern) {
		re, err := binaryregexp.Compile(pattern)
		if err != nil {
			return nil, err
		}
		return re.FindStringSubmatchIndex, nil
	}
	re, err := regexp.Compile("(?sm)" + pattern)
	if err != nil {
		return nil, err
	}
	return re.FindStringSubmatchIndex, nil
}

// captureTx is the part of a transaction @rx uses.
type captureTx struct {
	plugintypes.TransactionState
	capturing bool
	fields    map[int]string
}

func (c *captureTx) Capturing() bool { return c.capturing }

func (c *captureTx) CaptureField(i int, v string) {
	if c.fields == nil {
		c.fields = map[int]string{}
	}
	c.fields[i] = v
}

// wantCaptures is what Coraza writes to TX for loc.
func wantCaptures(value string, loc []int) map[int]string {
	m := map[int]string{}
	for i := 0; i < len(loc)/2 && i < maxCaptures; i++ {
		if loc[2*i] < 0 {
			m[i] = ""
		} else {
			m[i] = value[loc[2*i]:loc[2*i+1]]
		}
	}
	return m
}

// crsInputs returns the strings CRS's regression tests send, in the forms
// rules see them: raw and URL-decoded, the URI, its query values, header
// values, bodies and their form values, whole raw requests; each also in
// lower and upper case. The set is deduplicated and sorted.
func crsInputs(t testing.TB) []string {
	t.Helper()
	set := map[string]bool{}
	add := func(s string) {
		for _, v := range []string{s, strings.ToLower(s), strings.ToUpper(s)} {
			set[v] = true
			if d, err := url.QueryUnescape(v); err == nil {
				set[d] = true
			}
		}
	}
	addForm := func(s string) {
		add(s)
		if q, err := url.ParseQuery(s); err == nil {
			for k, vs := range q {
				add(k)
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	err := fs.WalkDir(crstests.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		src, err := fs.ReadFile(crstests.FS, p)
		if err != nil {
			return err
		}
		var file struct {
			Tests []struct {
				Stages []struct {
					Input struct {
						URI            string         `yaml:"uri"`
						Headers        map[string]any `yaml:"headers"`
						Data           string         `yaml:"data"`
						EncodedRequest string         `yaml:"encoded_request"`
					} `yaml:"input"`
				} `yaml:"stages"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(src, &file); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		for _, tc := range file.Tests {
			for _, st := range tc.Stages {
				in := st.Input
				add(in.URI)
				if _, q, ok := strings.Cut(in.URI, "?"); ok {
					addForm(q)
				}
				for k, v := range in.Headers {
					add(k)
					add(fmt.Sprint(v))
				}
				addForm(in.Data)
				if raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(in.EncodedRequest), "")); err == nil {
					add(string(raw))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading CRS's regression tests: %v", err)
	}
	for _, s := range adversarialInputs() {
		set[s] = true
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// adversarialInputs are strings where RE2 and Go's regexp, or a careless
// prefilter, part ways.
func adversarialInputs() []string {
	base := []string{
		"' union select 1,2 --", "<script>alert(1)</script>", "; cat /etc/passwd", "../../etc/shadow",
		"${jndi:ldap://x}", "() { :; }; /bin/bash", "SELECT * FROM users", "javascript:alert(1)",
	}
	var out []string
	for _, b := range base {
		out = append(out, b,
			strings.ToUpper(b),
			"\xff"+b, b+"\xfe", strings.ReplaceAll(b, " ", "\xc0\xa0"), strings.ReplaceAll(b, "e", "\x80"),
			"\x00"+b, strings.ReplaceAll(b, " ", "\x00"),
			strings.ReplaceAll(b, "s", "ſ"), strings.ReplaceAll(b, "S", "ſ"), // long s folds to s
			strings.ReplaceAll(b, "k", "K"), strings.ReplaceAll(b, "c", "\u212a"), // Kelvin sign folds to k
			strings.ReplaceAll(b, "i", "İ"), strings.ReplaceAll(b, "a", "\ufffd"),
			strings.Repeat("a", 10000)+b, b+strings.Repeat("\n", 300)+b,
			strings.Repeat(b, 50),
		)
	}
	out = append(out, "", "\x00", "\xff", "\ufffd", "\n", "é", "\u212a", "ſ")
	return out
}

// TestCRSPatternsAgreeWithCoraza compiles every CRS @rx pattern as this
// package does and as Coraza does, and compares the match and the
// captures on every input, through the capturing and the match-only path.
func TestCRSPatternsAgreeWithCoraza(t *testing.T) {
	patterns := allCRSPatterns(t)
	// All 291 patterns × all ~25,000 inputs take minutes: by default a
	// fixed, evenly spaced sample (and every adversarial input) runs;
	// EDGEGUARD_RX_FULL=1 runs them all; -short and -race a smaller sample.
	inputs := crsInputs(t)
	switch {
	case os.Getenv("EDGEGUARD_RX_FULL") == "1":
	case testing.Short() || raceDetector:
		inputs = sample(inputs, 400)
	default:
		inputs = sample(inputs, 2500)
	}
	var withRE2, withPrefilter, binary int
	var calls, pruned int
	for _, p := range patterns {
		op, err := New(plugintypes.OperatorOptions{Arguments: p})
		if err != nil {
			t.Errorf("pattern %q: %v", p, err)
			continue
		}
		ref, err := newReference(p)
		if err != nil {
			t.Errorf("pattern %q: Coraza's compile fails where ours does not: %v", p, err)
			continue
		}
		m, _ := op.(*Matcher)
		switch {
		case m == nil:
			binary++
		case m.fast == nil:
			t.Logf("RE2 refuses %q: Go's regexp decides", p)
		default:
			withRE2++
		}
		if m != nil && m.pre != nil {
			withPrefilter++
		}
		for _, in := range inputs {
			loc := ref(in)
			match := &captureTx{}
			if got := op.Evaluate(match, in); got != (loc != nil) {
				t.Errorf("pattern %q, input %q: match-only %v, Coraza %v", p, in, got, loc != nil)
			}
			capt := &captureTx{capturing: true}
			if got := op.Evaluate(capt, in); got != (loc != nil) {
				t.Errorf("pattern %q, input %q: capturing %v, Coraza %v", p, in, got, loc != nil)
			} else if got && !mapsEqual(capt.fields, wantCaptures(in, loc)) {
				t.Errorf("pattern %q, input %q: captures %v, Coraza %v", p, in, capt.fields, wantCaptures(in, loc))
			}
			if m != nil && m.pre != nil {
				calls++
				if !m.pre.mayMatch(in) {
					pruned++
				}
			}
		}
	}
	t.Logf("%d patterns (%d on RE2, %d byte patterns, %d with a prefilter) × %d inputs; the prefilter ruled out %d of %d evaluations (%.1f%%)",
		len(patterns), withRE2, binary, withPrefilter, len(inputs), pruned, calls, 100*float64(pruned)/float64(max(calls, 1)))
}

func mapsEqual(a, b map[int]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// sample keeps n of in, evenly spaced, and every adversarial input.
func sample(in []string, n int) []string {
	if len(in) <= n {
		return in
	}
	var out []string
	for i := 0; i < len(in); i += len(in) / n {
		out = append(out, in[i])
	}
	out = append(out, adversarialInputs()...)
	slices.Sort(out)
	return slices.Compact(out)
}
