package edgeguard

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strconv"
	"testing"
)

// TestMetricsCarrySoakGauges: /metrics carries, unlabelled, every gauge
// bench/cmd/soak samples (its gauges map, read from the source so that a
// gauge soak starts reading is held here too). soak refuses a scrape that
// lacks one, but only when someone runs a soak; this fails in the tests.
func TestMetricsCarrySoakGauges(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the process gauges (open fds, resident memory) come from /proc")
	}
	names := soakGauges(t, "bench/cmd/soak/main.go")
	g := mustGuard(t, "stages: []\n")
	w := httptest.NewRecorder()
	g.AdminHandler().ServeHTTP(w, adminRequest("GET", "/metrics", nil))
	if w.Code != 200 {
		t.Fatalf("/metrics: %d", w.Code)
	}
	body := w.Body.String()
	for _, name := range names {
		// soak reads "name value" lines: no labels, a number.
		re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` ([0-9.e+-]+)$`)
		m := re.FindStringSubmatch(body)
		if m == nil {
			t.Errorf("/metrics lacks the gauge %s that soak samples", name)
			continue
		}
		if _, err := strconv.ParseFloat(m[1], 64); err != nil {
			t.Errorf("/metrics: %s %q: %v", name, m[1], err)
		}
	}
}

// soakGauges returns the keys of the gauges map in soak's source.
func soakGauges(t *testing.T, file string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "gauges" || len(vs.Values) != 1 {
			return true
		}
		lit, ok := vs.Values[0].(*ast.CompositeLit)
		if !ok {
			t.Fatalf("%s: gauges is not a map literal", file)
		}
		for _, e := range lit.Elts {
			kv, ok := e.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			if k, ok := kv.Key.(*ast.BasicLit); ok && k.Kind == token.STRING {
				name, err := strconv.Unquote(k.Value)
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, name)
			}
		}
		return false
	})
	if len(names) == 0 {
		t.Fatalf("%s: no gauges map with string keys; soak's source moved?", file)
	}
	return names
}
