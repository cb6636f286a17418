package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestE2EExplain: explain prints each stage's verdict for a raw request,
// the client as resolved from -client and the headers, and the result.
func TestE2EExplain(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "edge.yaml")
	os.WriteFile(cfg, []byte(`upstream: http://127.0.0.1:9
stages: [reputation, volumetric, waf, quota]
client_ip: {trusted_proxies: [10.0.0.0/8]}
volumetric: {rate: 10/s}
waf: {mode: shadow}
quota: {store: memory, key: [ip], policies: [{name: api, rate: 600/m}]}
`), 0o644)
	req := filepath.Join(dir, "attack.http")
	os.WriteFile(req, []byte("GET /items?id=1%27%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\r\nHost: shop.example.com\r\nX-Forwarded-For: 6.6.6.6, 203.0.113.8\r\n\r\n"), 0o644)
	out, err := exec.Command(bin, "explain", "-config", cfg, "-request", req, "-client", "10.1.2.3").CombinedOutput()
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	for _, want := range []string{
		`(?m)^client 203\.0\.113\.8 \(from header\)$`,
		`(?m)^reputation +allow`,
		`(?m)^volumetric +allow`,
		`(?m)^waf +deny 403 \(shadow: would deny, allows\).*rules=\[.*942100`,
		`(?m)^quota +allow`,
		`(?m)^result: allow$`,
	} {
		if !regexp.MustCompile(want).Match(out) {
			t.Errorf("explain output lacks %s:\n%s", want, out)
		}
	}
}
