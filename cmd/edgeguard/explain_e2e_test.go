package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestE2EExplain: explain prints each stage's verdict for a raw request,
// the client as resolved from -peer and the headers, and the result.
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
	out, err := exec.Command(bin, "explain", "-config", cfg, "-request", req, "-peer", "10.1.2.3").CombinedOutput()
	if err != nil {
		t.Fatalf("explain: %v\n%s", err, out)
	}
	for _, want := range []string{
		`(?m)^client 203\.0\.113\.8 \(from header, peer 10\.1\.2\.3\)$`,
		`(?m)^reputation +allow`,
		`(?m)^volumetric +allow`,
		`(?m)^waf +deny 403 \(shadow: would deny, allows\).*rules=\[.*942100`,
		`(?m)^quota +allow`,
		`(?m)^result: allow \(dry run`,
	} {
		if !regexp.MustCompile(want).Match(out) {
			t.Errorf("explain output lacks %s:\n%s", want, out)
		}
	}
}

// TestE2EExplainJSON: -json gives the same explanation to programs, with
// the WAF's matched rules; -client explains the request as sent straight
// from that client, its forwarding headers dropped.
func TestE2EExplainJSON(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "edge.yaml")
	os.WriteFile(cfg, []byte(`upstream: http://127.0.0.1:9
stages: [volumetric, waf]
client_ip: {trusted_proxies: [10.0.0.0/8]}
volumetric: {rate: 1/m, burst: 1}
waf: {mode: block}
`), 0o644)
	req := filepath.Join(dir, "attack.http")
	os.WriteFile(req, []byte("GET /items?id=1%27%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\r\nHost: shop.example.com\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"), 0o644)
	out, err := exec.Command(bin, "explain", "-config", cfg, "-request", req, "-client", "10.9.9.9", "-json").Output()
	if err != nil {
		t.Fatalf("explain -json: %v\n%s", err, out)
	}
	var ex struct {
		Client string
		Peer   string
		Stages []struct {
			Stage        string
			Verdict      string
			Status       int
			AnomalyScore int `json:"anomaly_score"`
			Notes        []string
		}
		Result string
	}
	if err := json.Unmarshal(out, &ex); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if ex.Client != "10.9.9.9" || ex.Peer != "10.9.9.9" || ex.Result != "deny 403 by waf" || len(ex.Stages) != 2 {
		t.Fatalf("explanation %+v", ex)
	}
	w := ex.Stages[1]
	if w.Stage != "waf" || w.Verdict != "deny" || w.AnomalyScore < 5 || len(w.Notes) == 0 || !strings.Contains(strings.Join(w.Notes, "\n"), `942100 severity=critical ARGS:id="1' UNION SELECT`) {
		t.Errorf("waf stage %+v", w)
	}
}
