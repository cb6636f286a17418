package edgeguard

import (
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters"
)

// buildErrorsDir copies a config's neighbours, each broken its own way
// (testdata/broken-neighbours, shared with the binary's test): a list with
// a bad line, a pack without pack.yaml, a pack whose rule does not compile.
// The list that is named but missing is left out.
func buildErrorsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/broken-neighbours")); err != nil {
		t.Fatal(err)
	}
	return dir
}

const buildErrorsConfig = `upstream: http://127.0.0.1:9000
routes: [{path: /login, upstream: default}]
stages: [reputation, waf]
reputation:
  lists:
    - {file: bad.txt, action: deny}
    - {file: missing.txt, action: deny}
waf:
  packs: [nometa]
route_stages:
  /login:
    waf: {packs: [broken]}
`

// TestBuildErrorsAtOnce: New builds every stage and route even after one
// fails, and reports each problem once, under the path of the key that
// named the file (which the binary turns into FILE:LINE), without the
// layers repeating each other ("build stage reputation: reputation:
// loading lists: reputation: bad list: ...").
func TestBuildErrorsAtOnce(t *testing.T) {
	dir := buildErrorsDir(t)
	cfg := mustConfig(t, buildErrorsConfig)
	want := []struct{ field, msg string }{
		{"reputation.lists[0]", dir + `/bad.txt:3: "1.2.3.4/99" is not an IP address or CIDR prefix`},
		{"reputation.lists[1]", dir + "/missing.txt: no such file or directory"},
		{"waf.packs[0]", dir + "/nometa/pack.yaml: no such file or directory"},
		{"route_stages./login.waf.packs[0]", dir + "/broken/rules.conf:2: "}, // then Coraza's words
	}
	for name, build := range map[string]func() error{
		"New": func() error {
			g, err := New(cfg, WithLogger(slog.New(slog.DiscardHandler)), WithDir(dir))
			if err == nil {
				g.Close()
			}
			return err
		},
		"CheckStages": func() error { return CheckStages(cfg, WithDir(dir)) },
	} {
		t.Run(name, func(t *testing.T) {
			got := filters.FieldErrors(build())
			if len(got) != len(want) {
				t.Fatalf("%d problems, want %d: %v", len(got), len(want), got)
			}
			for i, w := range want {
				if got[i].Field != w.field || !strings.HasPrefix(got[i].Err.Error(), w.msg) {
					t.Errorf("problem %d = %q, want %s: %s…", i, got[i], w.field, w.msg)
				}
				if strings.Contains(got[i].Err.Error(), "reputation:") || strings.Contains(got[i].Err.Error(), "waf:") {
					t.Errorf("problem %d repeats a prefix: %q", i, got[i])
				}
			}
		})
	}
}

// TestCheckStagesSkipsRefusedBlocks: a draft's refused blocks are not
// built (their problem is already reported), and stages that build are
// closed again.
func TestCheckStagesSkipsRefusedBlocks(t *testing.T) {
	dir := buildErrorsDir(t)
	_, err := config.Parse("test.yaml", []byte(strings.Replace(buildErrorsConfig, "  packs: [nometa]\n", "  packs: [nometa]\n  paranoia: high\n", 1)))
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Draft() == nil {
		t.Fatalf("want a draft, got %v", err)
	}
	got := filters.FieldErrors(CheckStages(ce.Draft(), WithDir(dir)))
	if len(got) != 2 || got[0].Field != "reputation.lists[0]" || got[1].Field != "reputation.lists[1]" {
		t.Fatalf("the refused waf block (and the route's, laid over it) was built, or reputation was not: %v", got)
	}
}
