package edgeguardcaddy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ with what the adapter produces")

// TestCaddyfileAdapt: each testdata/*.caddyfiletest is a Caddyfile, a line
// of dashes and the JSON Caddy adapts it to (edgeguard's blocks typed as
// its stage structs, the directive ordered before redir), or an error
// line: "error: SUBSTRING".
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	adapter := caddyconfig.GetAdapter("caddyfile")
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			in, want, ok := strings.Cut(string(data), "\n----------\n")
			if !ok {
				t.Fatal("no ---------- line")
			}
			out, _, err := adapter.Adapt([]byte(in), nil)
			var got string
			if err != nil {
				got = "error: " + err.Error()
			} else {
				var buf bytes.Buffer
				if err := json.Indent(&buf, out, "", "\t"); err != nil {
					t.Fatal(err)
				}
				got = buf.String()
			}
			if *update && !strings.HasPrefix(want, "error: ") {
				if err := os.WriteFile(file, []byte(in+"\n----------\n"+got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want = strings.TrimSpace(want)
			if strings.HasPrefix(want, "error: ") {
				if !strings.Contains(got, strings.TrimPrefix(want, "error: ")) {
					t.Fatalf("got\n%s\nwant an error containing %q", got, strings.TrimPrefix(want, "error: "))
				}
				return
			}
			if got != want {
				t.Fatalf("adapted to\n%s\nwant\n%s", got, want)
			}
		})
	}
}
