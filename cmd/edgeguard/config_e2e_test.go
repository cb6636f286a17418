package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runPositional starts `edgeguard run FILE` (the path as an argument, not
// -config) on cfg and waits until it serves.
func runPositional(t *testing.T, cfg string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := newProc(dir)
	p.writeConfig(t, cfg, "")
	m := p.launch(t, dir, "run", p.config)
	if got := fmt.Sprint(m["stages"]); got != "[reputation volumetric waf]" {
		t.Errorf("serving stages %s, want the defaults [reputation volumetric waf]", got)
	}
	return p
}

// TestE2EOneLineConfig: `upstream: URL` alone is a valid config, and run
// with the path as its argument it serves the cheap stages and the WAF at
// paranoia 1. The test moves the two listen addresses off their defaults
// (:8080, 127.0.0.1:9090), which other processes on a test machine hold.
func TestE2EOneLineConfig(t *testing.T) {
	up := echoUpstream(t)
	bin := binary(t)
	oneLine := filepath.Join(t.TempDir(), "edge.yaml")
	if err := os.WriteFile(oneLine, []byte("upstream: "+up.URL+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "validate", oneLine).CombinedOutput(); err != nil || !strings.HasSuffix(string(out), ": ok\n") {
		t.Fatalf("validate of the one-line config: %v\n%s", err, out)
	}
	p := runPositional(t, "upstream: "+up.URL+"\nlisten: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\n")
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/", 200},
		{"/?id=" + url.QueryEscape("1' OR '1'='1"), 403}, // CRS at PL1
		{"/?q=" + url.QueryEscape("<script>alert(1)</script>"), 403},
	} {
		resp, err := http.Get("http://" + p.edge + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
}

// TestE2EValidateReportsEverything: one validate run prints every problem
// of a broken file, each once as FILE:LINE: message, in the file's terms,
// and each prefixed once: by the field's path, never again by the name of
// the Go package that found it ("volumetric.rate: filters: bad rate").
func TestE2EValidateReportsEverything(t *testing.T) {
	bin := binary(t)
	path := filepath.Join(t.TempDir(), "broken.yaml")
	os.WriteFile(path, []byte(`upstream: http://127.0.0.1:9000
stages: [reputation, volumetric, waf, firewall, quota]
volumetric:
  rate: "50 per second"
  burst: lots
waf:
  paranoia: high
  body_limt: 1MiB
  mode: detect
client_ip:
  trusted_proxies: 10.0.0.0/8
admin:
  listen: "0.0.0.0:9090"
  pprof: yes please
log:
  level: chatty
quota:
  key: [cookie, ip]
  policies:
    - {name: api, rate: 5 a day}
`), 0o644)
	out, err := exec.Command(bin, "validate", path).Output()
	if code := exitCode(err); code != 1 {
		t.Fatalf("validate exit %d, want 1\n%s", code, out)
	}
	want := []string{
		`:2: stages[3]: unknown stage "firewall" (want one of reputation, volumetric, waf, quota)`,
		`:4: volumetric.rate: bad rate "50 per second": want COUNT/PERIOD, like 50/s or 600/m`,
		`:5: volumetric.burst: want an integer 1-57646075230, got "lots"`, // the default rate 50/s stands in for the refused one
		`:7: waf.paranoia: want an integer 1-4, got "high"`,
		`:8: waf: unknown key "body_limt"`,
		`:9: waf.mode: mode "detect": want block, shadow or off`,
		`:11: client_ip.trusted_proxies: want a list, got "10.0.0.0/8"`,
		`:13: admin.listen: "0.0.0.0:9090" is not a loopback address: set admin.token, or the ban and metrics API would be open to the network`,
		`:14: admin.pprof: want true or false, got "yes please"`,
		`:16: log.level: "chatty": want debug, info, warn or error`,
		`:18: quota.key[0]: bad key source "cookie": want ip, header:NAME, cookie:NAME or jwt:CLAIM`,
		`:20: quota.policies[0].rate: bad rate "5 a day": want COUNT/PERIOD, like 50/s or 600/m`,
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d problems, want %d:\n%s", len(lines), len(want), out)
	}
	// After "FILE:LINE: field.path: ", a package name would be a word
	// and a colon: "filters: ", "quota: ", "edgeguard: ".
	stutter := regexp.MustCompile(`^[^:]+:\d+: [\w.\[\]/]+: [a-z][a-z0-9]*: `)
	for i, w := range want {
		if lines[i] != path+w {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], path+w)
		}
		if stutter.MatchString(lines[i]) || strings.Contains(lines[i], "edgeguard") {
			t.Errorf("line %d names a package after its field: %q", i+1, lines[i])
		}
	}
}

// TestE2ECommandLine: every command prints its help on -h and exits 0;
// surplus or unknown arguments are errors (exit 2), never ignored; run and
// validate take the config as an argument or as -config, not both.
func TestE2ECommandLine(t *testing.T) {
	bin := binary(t)
	cfg := filepath.Join(t.TempDir(), "edge.yaml")
	os.WriteFile(cfg, []byte("upstream: http://127.0.0.1:9000\n"), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		out  string // a substring of stdout
	}{
		{[]string{"-h"}, 0, "Usage:"},
		{[]string{"run", "-h"}, 0, "Usage: edgeguard run"},
		{[]string{"validate", "-h"}, 0, "Usage: edgeguard validate"},
		{[]string{"validate", "--help"}, 0, "Usage: edgeguard validate"},
		{[]string{"demo", "-h"}, 0, "Usage: edgeguard demo"},
		{[]string{"explain", "-h"}, 0, "Usage: edgeguard explain"},
		{[]string{"rules", "-h"}, 0, "Usage: edgeguard rules test"},
		{[]string{"rules", "test", "-h"}, 0, "Usage: edgeguard rules test"},
		{[]string{"config", "-h"}, 0, "Usage: edgeguard config schema"},
		{[]string{"config", "schema", "-h"}, 0, "Usage: edgeguard config schema"},
		{[]string{"version", "-h"}, 0, "Usage: edgeguard version"},
		{[]string{"health", "-h"}, 0, "Usage: edgeguard health"},
		{[]string{"tune", "-h"}, 0, "Usage: edgeguard tune"},
		{[]string{"validate", cfg}, 0, cfg + ": ok"},
		{[]string{"validate", "-config", cfg}, 0, cfg + ": ok"},
		{[]string{"validate", cfg, "extra"}, 2, ""},
		{[]string{"validate", "-config", cfg, cfg}, 2, ""},
		{[]string{"validate"}, 2, ""},
		{[]string{"validate", "-bogus", cfg}, 2, ""},
		{[]string{"run", cfg, "extra"}, 2, ""},
		{[]string{"run"}, 2, ""},
		{[]string{"version", "extra"}, 2, ""},
		{[]string{"demo", "extra"}, 2, ""},
		{[]string{"config", "schema", "extra"}, 2, ""},
		{[]string{"frobnicate"}, 2, ""},
		{[]string{"version"}, 0, "coraza v3."},
		{[]string{"version"}, 0, "edgeguard " + e2eVersion + " (commit " + e2eCommit + ", go1."},
		{[]string{"version"}, 0, "crs v4."},
		{[]string{"config", "schema"}, 0, `"$schema"`},
	} {
		out, err := exec.Command(bin, tc.args...).Output()
		if code := exitStatus(err); code != tc.code {
			t.Errorf("edgeguard %s: exit %d, want %d\n%s", strings.Join(tc.args, " "), code, tc.code, out)
			continue
		}
		if !strings.Contains(string(out), tc.out) {
			t.Errorf("edgeguard %s: stdout lacks %q:\n%s", strings.Join(tc.args, " "), tc.out, out)
		}
	}
}

// exitStatus is a finished command's exit code: 0 for no error.
func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	return exitCode(err)
}

// TestE2EReloadMetricsAndAccessLine: a refused and an accepted SIGHUP are
// counted apart, the last-reload time moves only on success, and the
// access line has the fields the README lists.
func TestE2EReloadMetricsAndAccessLine(t *testing.T) {
	up := echoUpstream(t)
	const cfg = "upstream: {{upstream}}\nlisten: 127.0.0.1:0\nadmin: {listen: 127.0.0.1:0}\nstages: []\n"
	p := start(t, cfg, up.URL)
	resp, err := http.Get("http://" + p.edge + "/shop?token=s3cret&page=2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	m, from := p.log.waitFor(t, 0, 10*time.Second, map[string]string{"msg": "access", "path": "/shop"})
	for k, want := range map[string]string{"query": "token=REDACTED&page=2", "protocol": "HTTP/1.1", "status": "200", "upstream": strings.TrimPrefix(up.URL, "http://")} {
		if fmt.Sprint(m[k]) != want {
			t.Errorf("access line %s = %v, want %s", k, m[k], want)
		}
	}
	if d, ok := m["duration"].(float64); !ok || d <= 0 || d > 10 {
		t.Errorf("access line duration = %#v, want seconds", m["duration"])
	}
	metric := func(name string) string {
		t.Helper()
		for _, l := range strings.Split(fetchText(t, "http://"+p.admin+"/metrics"), "\n") {
			if strings.HasPrefix(l, name+" ") {
				return strings.TrimPrefix(l, name+" ")
			}
		}
		t.Fatalf("/metrics lacks %s", name)
		return ""
	}
	loaded := metric("edgeguard_config_last_reload_success_timestamp_seconds")
	p.writeConfig(t, cfg+"waf: {paranoia: high}\n", up.URL)
	p.cmd.Process.Signal(syscall.SIGHUP)
	_, from = p.log.waitFor(t, from, 10*time.Second, map[string]string{"msg": "reload refused; the previous config keeps serving"})
	if got := metric(`edgeguard_config_reloads_total{result="failure"}`); got != "1" {
		t.Errorf("failures after a refused reload: %s", got)
	}
	if got := metric("edgeguard_config_last_reload_success_timestamp_seconds"); got != loaded {
		t.Errorf("a refused reload moved the last-reload time: %s -> %s", loaded, got)
	}
	// The timestamp has nanoseconds, and the refused reload and its
	// round trips lie between the start's value and the next reload's.
	p.writeConfig(t, cfg, up.URL)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.log.waitFor(t, from, 10*time.Second, map[string]string{"msg": "reloaded"})
	if got := metric(`edgeguard_config_reloads_total{result="success"}`); got != "1" {
		t.Errorf("successes after a good reload: %s", got)
	}
	if got := metric("edgeguard_config_last_reload_success_timestamp_seconds"); got == loaded {
		t.Errorf("a good reload left the last-reload time at %s", got)
	}
	if !regexp.MustCompile(`(?m)^edgeguard_build_info\{.*coraza="v3\..*crs="v4\..*\} 1$`).MatchString(fetchText(t, "http://"+p.admin+"/metrics")) {
		t.Error("/metrics lacks edgeguard_build_info with the Coraza version")
	}
}

// TestE2ERoutesPoolsAndRefusals: with routes, named pools and a route's
// own WAF, /metrics times the upstream by pool (api and default, never
// only "none"), the shared chain's stage series say route="*" beside the
// route's and none says route=""; the access line names the route, the
// refusing stage and its rule ids, and counts a chunked upload's bytes.
func TestE2ERoutesPoolsAndRefusals(t *testing.T) {
	up := echoUpstream(t)
	p := start(t, `upstream: {{upstream}}
upstreams:
  api: {backends: ["{{upstream}}"]}
routes: [{path: /api, upstream: api}]
stages: [waf]
route_stages:
  /api:
    waf: {paranoia: 2}
listen: 127.0.0.1:0
admin: {listen: 127.0.0.1:0}
`, up.URL)
	const upload = `{"note": "a chunked upload"}`
	for _, tc := range []struct {
		method, path string
		body         io.Reader
		want         int
	}{
		{"GET", "/", nil, 200},
		{"GET", "/api/items", nil, 200},
		{"GET", "/api/items?id=" + url.QueryEscape("1' OR '1'='1"), nil, 403},
		// A reader of unknown length: the client sends it chunked.
		{"POST", "/upload", io.MultiReader(strings.NewReader(upload)), 200},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+p.edge+tc.path, tc.body)
		if tc.body != nil {
			req.Header.Set("Content-Type", "application/json") // CRS refuses a body without an allowed one
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.want)
		}
	}
	denied, from := p.log.waitFor(t, 0, 10*time.Second, map[string]string{"msg": "access", "status": "403"})
	ids := fmt.Sprint(denied["rule_ids"])
	if denied["route"] != "/api" || denied["stage"] != "waf" || !strings.Contains(ids, "942100") || !strings.Contains(ids, "949110") {
		t.Errorf("WAF refusal's access line: route %v, stage %v, rule_ids %s; want /api, waf, [... 942100 ... 949110]", denied["route"], denied["stage"], ids)
	}
	uploaded, _ := p.log.waitFor(t, from, 10*time.Second, map[string]string{"msg": "access", "path": "/upload"})
	if uploaded["bytes_in"] != float64(len(upload)) || uploaded["route"] != nil {
		t.Errorf("chunked upload's access line: bytes_in %v, route %v; want %d and no route", uploaded["bytes_in"], uploaded["route"], len(upload))
	}
	metrics := fetchText(t, "http://"+p.admin+"/metrics")
	for _, re := range []string{
		`(?m)^edgeguard_upstream_duration_seconds_count\{pool="api"\} 1$`,
		`(?m)^edgeguard_upstream_duration_seconds_count\{pool="default"\} 2$`,
		`(?m)^edgeguard_waf_\w+\{([^}]*,)?route="\*"(,[^}]*)?\} `,
		`(?m)^edgeguard_waf_\w+\{([^}]*,)?route="/api"(,[^}]*)?\} `,
	} {
		if !regexp.MustCompile(re).MatchString(metrics) {
			t.Errorf("/metrics has no line matching %s", re)
		}
	}
	if strings.Contains(metrics, `route=""`) {
		t.Errorf("/metrics has a series with route=\"\":\n%s", metrics)
	}
}
