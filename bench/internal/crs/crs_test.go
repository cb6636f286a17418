package crs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRuleLevels(t *testing.T) {
	dir := t.TempDir()
	conf := `# comment naming id:1 and paranoia-level/4 before any rule
SecRule ARGS "@rx a" \
    "id:100,phase:2,block,tag:'paranoia-level/1',chain"
    SecRule ARGS "@rx b" "id:999,tag:'paranoia-level/3'"
SecRule ARGS "@rx c" "id:200,phase:2,block,tag:'paranoia-level/2'"
SecAction "id:300,phase:1,pass,nolog"
# a comment after a rule without a level: paranoia-level/3
`
	if err := os.WriteFile(filepath.Join(dir, "r.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := RuleLevels(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A chained rule belongs to its head: its own id and tag are not a
	// rule of their own, and never relabel the head. A rule without a
	// level tag is left out.
	want := map[int]int{100: 1, 200: 2}
	if len(got) != len(want) || got[100] != 1 || got[200] != 2 {
		t.Errorf("RuleLevels = %v, want %v", got, want)
	}
	if _, err := RuleLevels(t.TempDir()); !errors.Is(err, ErrCRS) {
		t.Errorf("RuleLevels(empty dir) = %v, want ErrCRS", err)
	}
}
