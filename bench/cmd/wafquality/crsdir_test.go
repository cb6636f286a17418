package main

import (
	"os/exec"
	"strings"
	"testing"
)

func crsDirForTest(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/corazawaf/coraza-coreruleset/v4").Output()
	if err != nil {
		t.Skipf("coraza-coreruleset not found: %v", err)
	}
	return strings.TrimSpace(string(out))
}
