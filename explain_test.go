package edgeguard

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestExplainIsADryRun: explaining requests, attacks included, over and
// over, counts nothing: a Redis that the config's quota and reputation
// share stays empty (no quota state, no strike, no ban), a live Guard on
// the same Redis still lets the client through, and each explanation
// decides as the first would.
func TestExplainIsADryRun(t *testing.T) {
	srv := redistest.Start(t)
	cfg := mustConfig(t, `
stages: [reputation, volumetric, waf, quota]
reputation:
  strikes: {threshold: 1, window: 1m}
  redis: {addrs: ["`+srv.Addr+`"]}
volumetric: {rate: 1/m, burst: 1}
waf: {mode: block}
quota:
  store: redis
  redis: {addrs: ["`+srv.Addr+`"]}
  key: [ip]
  policies: [{name: default, rate: 1/m, burst: 1}]
`)
	explain := func(target string) *Explanation {
		t.Helper()
		r := httptest.NewRequest("GET", target, nil)
		r.RemoteAddr = "192.0.2.50:4000"
		ex, err := Explain(cfg, r, time.Now(), WithLogger(slog.New(slog.DiscardHandler)))
		if err != nil {
			t.Fatal(err)
		}
		return ex
	}
	for i := range 3 {
		if ex := explain("/items?id=7"); ex.Result != "allow" {
			t.Fatalf("benign explanation %d: %s; want allow every time (nothing counted)", i, ex.Result)
		}
		if ex := explain("/items?id=1%27%20UNION%20SELECT%20password%20FROM%20users--"); ex.Result != "deny 403 by waf" {
			t.Fatalf("attack explanation %d: %s; want deny 403 by waf, not a ban", i, ex.Result)
		}
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	if keys, err := rdb.Keys(context.Background(), "*").Result(); err != nil || len(keys) != 0 {
		t.Fatalf("Redis after explaining: keys %v, err %v; want none", keys, err)
	}
	live := mustGuard(t, "stages: [reputation, quota]\nreputation: {redis: {addrs: [\""+srv.Addr+"\"]}}\nquota: {store: redis, redis: {addrs: [\""+srv.Addr+"\"]}, key: [ip], policies: [{name: default, rate: 1/m, burst: 1}]}\n")
	if w := do(live.Wrap(http.NotFoundHandler()), "192.0.2.50:4000", nil); w.Code != http.StatusNotFound {
		t.Errorf("live Guard on the same Redis: %d, want the app's 404 (no ban, quota unspent)", w.Code)
	}
}

// TestExplainWAFRules: for the WAF, explain lists each matched rule with
// its severity, the variable, the matched data (truncated) and the
// message, and the anomaly score.
func TestExplainWAFRules(t *testing.T) {
	cfg := mustConfig(t, "stages: [waf]\nwaf: {mode: shadow}\n")
	r := httptest.NewRequest("GET", "/items?id=1%27%20UNION%20SELECT%20password%20FROM%20users--"+strings.Repeat("x", 200), nil)
	r.RemoteAddr = "192.0.2.51:4000"
	ex, err := Explain(cfg, r, time.Now(), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	waf := ex.Stages[0]
	if waf.Verdict != "shadow_deny" || waf.Score < 5 || ex.Result != "allow" {
		t.Fatalf("waf %+v, result %s", waf, ex.Result)
	}
	var found bool
	for _, n := range waf.Notes {
		if strings.HasPrefix(n, "942100 severity=critical ARGS:id=\"1' UNION SELECT") && strings.Contains(n, "…\"") &&
			strings.Contains(n, "SQL Injection Attack Detected via libinjection") && len(n) < 300 {
			found = true
		}
	}
	if !found {
		t.Errorf("no note for 942100 with variable, truncated data and message: %q", waf.Notes)
	}
}
