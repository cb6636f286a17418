package edgeguard

import (
	"os"
	"regexp"
	"testing"

	"github.com/edgeguard/edgeguard/config"
)

// TestREADMEConfigs parses every YAML example in README.md: an example that
// does not load is a bug in the README or in the loader.
func TestREADMEConfigs(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) < 3 {
		t.Fatalf("found %d yaml examples in README.md", len(blocks))
	}
	for i, b := range blocks {
		if _, err := config.Parse("README.md example", b[1]); err != nil {
			t.Errorf("example %d does not load:\n%v\n%s", i+1, err, b[1])
		}
	}
}
