package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMENginx: the nginx config README.md shows for forward-auth is
// the one TestE2ENginxAuthRequest runs.
func TestREADMENginx(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := "```nginx\n" + strings.TrimPrefix(nginxAuthConf, "\n") + "```\n"; !strings.Contains(string(readme), want) {
		t.Errorf("README.md lacks the nginx forward-auth config the e2e test runs:\n%s", want)
	}
}
