package activity

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, path string, into any) int {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q", path, ct)
	}
	if into != nil {
		if err := json.Unmarshal(w.Body.Bytes(), into); err != nil {
			t.Fatalf("%s: %v in %s", path, err, w.Body)
		}
	}
	return w.Code
}

func fixedSources(now time.Time) Sources {
	return Sources{
		Now: func() time.Time { return now },
		Reputation: func(a netip.Addr, _ time.Time) Reputation {
			if a == netip.MustParseAddr("203.0.113.7") {
				return Reputation{State: StateBanned, Until: now.Add(time.Hour), Source: "waf"}
			}
			return Reputation{State: StateNone}
		},
		ActiveConnections: func() int64 { return 17 },
	}
}

// TestOverviewJSON: the series holds exactly the seconds asked for, oldest
// first, quiet ones as zeros with an empty by_stage, beside the latency,
// the connections and the memory bound.
func TestOverviewJSON(t *testing.T) {
	r := New(0)
	r.Record(served(at(-2), "192.0.2.1"))
	r.Record(served(at(0), "192.0.2.1"))
	r.Record(refused(at(0), "203.0.113.7", "r1", "waf"))
	var got struct {
		Now         string `json:"now"`
		StepSeconds int    `json:"step_seconds"`
		Series      []struct {
			T                               int64
			Allowed, Denied, Shadow, Errors int
			ByStage                         map[string]int `json:"by_stage"`
		}
		Latency struct {
			P50    float64 `json:"p50_ms"`
			P99    float64 `json:"p99_ms"`
			Window int     `json:"window_seconds"`
		}
		Conns  int64 `json:"active_connections"`
		Memory int   `json:"memory_bytes"`
	}
	h := r.Handler(fixedSources(at(0)))
	if code := get(t, h, "/v1/activity/overview?seconds=3", &got); code != 200 {
		t.Fatalf("status %d", code)
	}
	if got.Now != at(0).UTC().Format(time.RFC3339) || got.StepSeconds != 1 || got.Conns != 17 || got.Memory != r.MemoryBytes() {
		t.Errorf("overview %+v", got)
	}
	if len(got.Series) != 3 {
		t.Fatalf("%d points, want 3", len(got.Series))
	}
	wantT := []int64{at(-2).Unix(), at(-1).Unix(), at(0).Unix()}
	wantAllowed, wantDenied := []int{1, 0, 1}, []int{0, 0, 1}
	for i, p := range got.Series {
		if p.T != wantT[i] || p.Allowed != wantAllowed[i] || p.Denied != wantDenied[i] || p.ByStage == nil {
			t.Errorf("point %d: %+v, want t %d, allowed %d, denied %d, a by_stage object", i, p, wantT[i], wantAllowed[i], wantDenied[i])
		}
	}
	if s := got.Series[2].ByStage; s["waf"] != 1 || s[Forwarded] != 1 {
		t.Errorf("by_stage %v", s)
	}
	if got.Latency.Window != LatencyWindow || got.Latency.P50 < 3*(1-LatencyError) || got.Latency.P50 > 3*(1+LatencyError) {
		t.Errorf("latency %+v, want p50 3 ms over %d s", got.Latency, LatencyWindow)
	}
	var def struct{ Series []any }
	get(t, h, "/v1/activity/overview", &def)
	if len(def.Series) != Window {
		t.Errorf("default: %d points, want %d", len(def.Series), Window)
	}
}

// TestSecondsParameter: anything but a whole number from 1 to 900 is a
// 400 naming the parameter and the value.
func TestSecondsParameter(t *testing.T) {
	h := New(0).Handler(fixedSources(at(0)))
	tests := []struct {
		q    string
		want int
	}{
		{"seconds=1", 200}, {"seconds=900", 200}, {"", 200},
		{"seconds=0", 400}, {"seconds=901", 400}, {"seconds=-5", 400}, {"seconds=abc", 400},
		{"seconds=1.5", 400}, {"seconds=%205", 400}, {"seconds=99999999999999999999", 400},
	}
	for _, tt := range tests {
		var body struct{ Error string }
		code := get(t, h, "/v1/activity/overview?"+tt.q, &body)
		if code != tt.want {
			t.Errorf("%q: %d, want %d", tt.q, code, tt.want)
		}
		if tt.want == 400 && (!strings.Contains(body.Error, "seconds") || !strings.Contains(body.Error, "not")) {
			t.Errorf("%q: error %q does not name the parameter and the value", tt.q, body.Error)
		}
	}
}

// TestClientsJSON: both lists, most first, with each client's reputation
// as Sources reports it; until only for a ban.
func TestClientsJSON(t *testing.T) {
	r := New(0)
	for range 5 {
		r.Record(refused(at(0), "203.0.113.7", "x", "reputation"))
	}
	for range 3 {
		r.Record(served(at(0), "192.0.2.1"))
	}
	type client struct {
		Client       string
		Count, Error uint64
		Reputation   struct{ State, Until, Source string }
	}
	var got struct {
		ByRequests []client `json:"by_requests"`
		ByDenials  []client `json:"by_denials"`
	}
	if code := get(t, r.Handler(fixedSources(at(0))), "/v1/activity/clients", &got); code != 200 {
		t.Fatalf("status %d", code)
	}
	if len(got.ByRequests) != 2 || got.ByRequests[0].Client != "203.0.113.7" || got.ByRequests[0].Count != 5 || got.ByRequests[1].Count != 3 {
		t.Fatalf("by_requests %+v", got.ByRequests)
	}
	if len(got.ByDenials) != 1 || got.ByDenials[0].Client != "203.0.113.7" || got.ByDenials[0].Count != 5 {
		t.Errorf("by_denials %+v", got.ByDenials)
	}
	rep := got.ByRequests[0].Reputation
	if rep.State != StateBanned || rep.Source != "waf" || rep.Until != at(3600).UTC().Format(time.RFC3339) {
		t.Errorf("banned client's reputation %+v", rep)
	}
	if rep := got.ByRequests[1].Reputation; rep.State != StateNone || rep.Until != "" {
		t.Errorf("clean client's reputation %+v", rep)
	}
}

// TestWAFAndBlockedJSON: the rules with messages and counts, the refusals
// newest first, one refusal by id with its stages, and a JSON 404 for an
// id the ring does not hold.
func TestWAFAndBlockedJSON(t *testing.T) {
	r := New(0)
	r.RulesFired(at(0), []int{942100, 949110}, []string{"SQL Injection Attack Detected via libinjection", "Inbound Anomaly Score Exceeded (Total Score: 5)"})
	r.RulesFired(at(0), []int{942100}, nil)
	e := refused(at(0), "203.0.113.7", "old", "volumetric")
	r.Record(e)
	e = refused(at(1), "203.0.113.7", "new", "waf")
	e.RuleIDs, e.RuleMessages = []int{942100}, []string{"SQL Injection Attack Detected via libinjection"}
	e.Chain = nil
	r.Record(e)
	h := r.Handler(fixedSources(at(1)))
	var got struct {
		Rules []struct {
			ID           int
			Message      string
			Count, Error uint64
		}
		Blocked []map[string]any
	}
	if code := get(t, h, "/v1/activity/waf", &got); code != 200 {
		t.Fatalf("status %d", code)
	}
	if len(got.Rules) != 2 || got.Rules[0].ID != 942100 || got.Rules[0].Count != 2 || got.Rules[1].Message == "" {
		t.Errorf("rules %+v", got.Rules)
	}
	if len(got.Blocked) != 2 || got.Blocked[0]["id"] != "new" || got.Blocked[1]["id"] != "old" {
		t.Fatalf("blocked %v", got.Blocked)
	}
	for _, key := range []string{"id", "time", "client", "route", "method", "path", "stage", "status", "reason", "rules", "source"} {
		if _, ok := got.Blocked[1][key]; !ok {
			t.Errorf("blocked entry lacks %q: %v", key, got.Blocked[1])
		}
	}
	if _, ok := got.Blocked[0]["stages"]; ok {
		t.Error("the list carries stages; only the detail should")
	}
	var one map[string]any
	if code := get(t, h, "/v1/activity/blocked/new", &one); code != 200 || one["stage"] != "waf" {
		t.Fatalf("detail: %d %v", code, one)
	}
	stages, _ := one["stages"].([]any)
	if len(stages) != 1 || stages[0].(map[string]any)["verdict"] != VerdictDeny || stages[0].(map[string]any)["rules"] == nil {
		t.Errorf("detail stages %v", one["stages"])
	}
	var miss struct{ Error string }
	if code := get(t, h, "/v1/activity/blocked/nope", &miss); code != 404 || !strings.Contains(miss.Error, `"nope"`) {
		t.Errorf("unknown id: %d %q", code, miss.Error)
	}
}
