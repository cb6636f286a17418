package edgeguardcaddy

import (
	"encoding/json"
	"os"
	"regexp"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestREADMECaddyfile: the Caddyfile README.md shows adapts, with the
// guard placed before the reverse_proxy it protects.
func TestREADMECaddyfile(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```caddyfile\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no caddyfile block")
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt(m[1], nil)
	if err != nil {
		t.Fatalf("README.md's Caddyfile does not adapt: %v", err)
	}
	var cfg struct {
		Apps struct {
			HTTP struct {
				Servers map[string]struct {
					Routes []struct {
						Handle []struct {
							Handler string          `json:"handler"`
							Routes  json.RawMessage `json:"routes"`
						} `json:"handle"`
					} `json:"routes"`
				} `json:"servers"`
			} `json:"http"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	// A site block becomes a subroute; its handlers are in order inside.
	order := regexp.MustCompile(`"handler":"(edgeguard|reverse_proxy)"`).FindAllStringSubmatch(string(out), -1)
	if len(order) != 2 || order[0][1] != "edgeguard" || order[1][1] != "reverse_proxy" {
		t.Errorf("handlers in order %v, want edgeguard then reverse_proxy", order)
	}
}
