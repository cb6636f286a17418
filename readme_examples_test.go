package edgeguard

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEGoExample: the Go middleware example in README.md is
// ExampleGuard_Wrap_serveMux word for word, so `go test` runs what the
// README shows.
func TestREADMEGoExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) != 1 {
		t.Fatalf("README.md has %d go blocks, want the one middleware example", len(blocks))
	}
	src, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	fn := regexp.MustCompile("(?s)\nfunc ExampleGuard_Wrap_serveMux\\(\\) \\{\n.*?\n\\}\n").Find(src)
	if fn == nil {
		t.Fatal("example_test.go has no ExampleGuard_Wrap_serveMux")
	}
	if got, want := strings.TrimSpace(string(blocks[0][1])), strings.TrimSpace(string(fn)); got != want {
		t.Errorf("README.md's go example differs from ExampleGuard_Wrap_serveMux:\n%s\n---- want ----\n%s", got, want)
	}
}
