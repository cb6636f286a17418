package edgeguardcaddy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// FuzzUnmarshalCaddyfile: whatever an edgeguard block holds, it is
// refused with an error or gives a handler whose JSON decodes back to the
// same handler (once normalised); it never panics.
func FuzzUnmarshalCaddyfile(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.caddyfiletest")
	for _, file := range files {
		data, _ := os.ReadFile(file)
		in, _, _ := strings.Cut(string(data), "\n----------\n")
		if i := strings.Index(in, "edgeguard"); i >= 0 {
			f.Add(in[i:])
		}
	}
	f.Add("edgeguard x {\n\tquota {\n\t\tpolicies {\n\t\t\tname a\n\t\t}\n\t\tpolicies\n\t}\n}")
	f.Fuzz(func(t *testing.T, block string) {
		d := caddyfile.NewTestDispenser(block)
		var h Handler
		if err := h.UnmarshalCaddyfile(d); err != nil {
			return
		}
		out, err := json.Marshal(&h)
		if err != nil {
			t.Fatalf("marshal %+v: %v", h, err)
		}
		var back Handler
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("the handler's JSON does not decode: %v\n%s", err, out)
		}
		// Decoding may normalise ("" mode reads as block); after that
		// the JSON is a fixed point.
		again, _ := json.Marshal(&back)
		var third Handler
		if err := json.Unmarshal(again, &third); err != nil {
			t.Fatalf("the handler's JSON does not decode twice: %v\n%s", err, again)
		}
		if last, _ := json.Marshal(&third); string(last) != string(again) {
			t.Fatalf("JSON round trip keeps changing the handler:\n%s\n%s", again, last)
		}
	})
}
