package reputation

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

func do(t *testing.T, h http.Handler, method, path, body string) (int, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: response %q is not a JSON object: %v", method, path, w.Body.String(), err)
	}
	return w.Code, out
}

func TestAdminAPI(t *testing.T) {
	var offset atomic.Int64 // the clock is read by the sweeper goroutine too
	f := newFilterClock(t, Config{Ban: BanPolicy{TTL: filters.Duration(15 * time.Minute)}}, nil,
		func() time.Time { return t0.Add(time.Duration(offset.Load())) })
	now := t0
	h := f.AdminHandler()

	code, out := do(t, h, "POST", "/v1/bans", `{"target": "192.0.2.7", "ttl": "1h", "reason": "scraper"}`)
	if code != 201 || out["target"] != "192.0.2.7" || out["reason"] != "scraper" || out["source"] != SourceOperator ||
		out["expires"] != t0.Add(time.Hour).Format(time.RFC3339) {
		t.Fatalf("POST: %d %v", code, out)
	}
	// A lone IPv6 address bans its /64 key; no ttl means ban.ttl.
	code, out = do(t, h, "POST", "/v1/bans", `{"target": "2001:db8::1"}`)
	if code != 201 || out["target"] != "2001:db8::/64" || out["expires"] != t0.Add(15*time.Minute).Format(time.RFC3339) {
		t.Fatalf("POST v6: %d %v", code, out)
	}
	if !f.Check(req("2001:db8::ffff", now)).Deny || !f.Check(req("192.0.2.7", now)).Deny {
		t.Fatal("admin bans not enforced")
	}

	code, out = do(t, h, "GET", "/v1/bans", "")
	bans, _ := out["bans"].([]any)
	if code != 200 || len(bans) != 2 {
		t.Fatalf("GET: %d %v", code, out)
	}
	if first := bans[0].(map[string]any); first["target"] != "192.0.2.7" {
		t.Errorf("GET not sorted: %v", bans)
	}

	// DELETE with the prefix in the path, slash and all, and escaped.
	code, out = do(t, h, "DELETE", "/v1/bans/2001:db8::/64", "")
	if code != 200 || out["target"] != "2001:db8::/64" {
		t.Fatalf("DELETE v6: %d %v", code, out)
	}
	code, _ = do(t, h, "DELETE", "/v1/bans/192.0.2.7%2F32", "")
	if code != 200 {
		t.Fatalf("DELETE escaped: %d", code)
	}
	if f.Check(req("192.0.2.7", now)).Deny {
		t.Fatal("still banned after DELETE")
	}
	code, out = do(t, h, "DELETE", "/v1/bans/192.0.2.7", "")
	if code != 404 || !strings.Contains(out["error"].(string), "no ban in force on 192.0.2.7") {
		t.Fatalf("DELETE unknown: %d %v", code, out)
	}
	// Expired bans are not listed.
	do(t, h, "POST", "/v1/bans", `{"target": "198.51.100.0/24", "ttl": "1m"}`)
	offset.Store(int64(time.Minute))
	if _, out = do(t, h, "GET", "/v1/bans", ""); len(out["bans"].([]any)) != 0 {
		t.Errorf("expired ban listed: %v", out)
	}
}

func TestAdminAPIBadInput(t *testing.T) {
	f := newFilter(t, Config{}, nil)
	h := f.AdminHandler()
	tests := []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"unknown field", "POST", "/v1/bans", `{"target": "1.2.3.4", "tll": "1h"}`, 400, `unknown field "tll"`},
		{"not an ip", "POST", "/v1/bans", `{"target": "example.com"}`, 400, `target: "example.com": not an IP address or CIDR prefix`},
		{"host bits", "POST", "/v1/bans", `{"target": "10.1.2.3/8"}`, 400, "did you mean 10.0.0.0/8"},
		{"slash zero", "POST", "/v1/bans", `{"target": "0.0.0.0/0"}`, 400, "would ban every address"},
		{"zone", "POST", "/v1/bans", `{"target": "fe80::1%eth0"}`, 400, "zones are not allowed"},
		{"no target", "POST", "/v1/bans", `{"ttl": "1h"}`, 400, "target: required"},
		{"negative ttl", "POST", "/v1/bans", `{"target": "1.2.3.4", "ttl": "-1h"}`, 400, `ttl: "-1h" must be positive`},
		{"zero ttl", "POST", "/v1/bans", `{"target": "1.2.3.4", "ttl": "0s"}`, 400, `ttl: "0s" must be positive`},
		{"unitless ttl", "POST", "/v1/bans", `{"target": "1.2.3.4", "ttl": "60"}`, 400, `ttl: "60" is not a duration`},
		{"ttl number", "POST", "/v1/bans", `{"target": "1.2.3.4", "ttl": 60}`, 400, `field "ttl" must be a string`},
		{"not json", "POST", "/v1/bans", `target=1.2.3.4`, 400, "invalid JSON"},
		{"empty", "POST", "/v1/bans", ``, 400, "empty"},
		{"two objects", "POST", "/v1/bans", `{"target": "1.2.3.4"}{}`, 400, "exactly one JSON object"},
		{"too big", "POST", "/v1/bans", `{"reason": "` + strings.Repeat("x", maxAdminBody) + `"}`, 400, "larger than"},
		{"long reason", "POST", "/v1/bans", `{"target": "1.2.3.4", "reason": "` + strings.Repeat("x", 201) + `"}`, 400, "reason: longer than 200"},
		{"delete garbage", "DELETE", "/v1/bans/nope", "", 400, `target: "nope": not an IP address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := do(t, h, tt.method, tt.path, tt.body)
			msg, _ := out["error"].(string)
			if code != tt.code || !strings.Contains(msg, tt.msg) {
				t.Errorf("got %d %q, want %d containing %q", code, msg, tt.code, tt.msg)
			}
		})
	}
	if bans := f.BansAt(t0); len(bans) != 0 {
		t.Errorf("bad requests made bans: %v", bans)
	}
}

// TestAdminBanScope: a ban wider than the documented bound, over an
// allow-listed address, or over the admin request's own peer is refused
// with 409 unless the request says "force": true; a narrower neighbour of
// each is taken as before.
func TestAdminBanScope(t *testing.T) {
	cfg := Config{Lists: []List{{File: "allow.txt", Action: ActionAllow}}}
	const peer = "198.51.100.9" // the admin request's own TCP peer
	tests := []struct {
		name, target string
		want         int // without force; with force every one is 201
	}{
		{"IPv4 /1", "0.0.0.0/1", http.StatusConflict},
		{"IPv4 /7", "10.0.0.0/7", http.StatusConflict},
		{"IPv4 /8: the bound itself", "10.0.0.0/8", http.StatusCreated},
		{"IPv6 /1", "::/1", http.StatusConflict},
		{"IPv6 /15", "2a00::/15", http.StatusConflict},
		{"IPv6 /16: the bound itself", "2a00::/16", http.StatusCreated},
		{"allow-listed address", "203.0.113.5", http.StatusConflict},
		{"inside an allow-listed prefix", "192.0.2.128/25", http.StatusConflict},
		{"covering an allow-listed address", "203.0.113.0/24", http.StatusConflict},
		{"allow-listed IPv6 key", "2001:db8:1::7", http.StatusConflict},
		{"next to the allow list", "203.0.114.5", http.StatusCreated},
		{"own peer", peer, http.StatusConflict},
		{"covering own peer", "198.51.100.0/24", http.StatusConflict},
		{"next to own peer", "198.51.101.0/24", http.StatusCreated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, force := range []bool{false, true} {
				f := newFilter(t, cfg, map[string]string{"allow.txt": "203.0.113.5\n192.0.2.0/24\n2001:db8:1::/48\n"})
				body := `{"target": "` + tt.target + `"}`
				want := tt.want
				if force {
					body, want = `{"target": "`+tt.target+`", "force": true}`, http.StatusCreated
				}
				r := httptest.NewRequest("POST", "/v1/bans", strings.NewReader(body))
				r.RemoteAddr = peer + ":41000"
				w := httptest.NewRecorder()
				f.AdminHandler().ServeHTTP(w, r)
				if w.Code != want {
					t.Fatalf("force=%v: POST %s: %d %s, want %d", force, body, w.Code, w.Body, want)
				}
				if banned := len(f.BansAt(t0)) == 1; banned != (want == http.StatusCreated) {
					t.Fatalf("force=%v: %s: %d bans in force after %d", force, tt.target, len(f.BansAt(t0)), w.Code)
				}
				if want == http.StatusConflict && !strings.Contains(w.Body.String(), `\"force\": true`) {
					t.Errorf("refusal does not say how to force it: %s", w.Body)
				}
			}
		})
	}
}
