package edgeguard

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// adminJSON GETs path from g's admin API and decodes the answer into into;
// it returns the raw body.
func adminJSON(t *testing.T, g *Guard, path string, into any) string {
	t.Helper()
	w := httptest.NewRecorder()
	g.AdminHandler().ServeHTTP(w, adminRequest("GET", path, nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), into); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, w.Body)
	}
	return w.Body.String()
}

// TestActivityThroughGuard drives real requests through the chain and
// reads them back from the admin API: the counts match what was sent, a
// SQL injection shows up with its CRS rule and message and the stages
// that let it pass, and a client banned through the ban API is listed
// with its ban. Credentials, cookies, the query and the body of the
// requests appear in none of the answers.
func TestActivityThroughGuard(t *testing.T) {
	g := mustGuard(t, "stages: [reputation, volumetric, waf]\nvolumetric: {rate: 1/m, burst: 2}\n")
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	send := func(method, target, client string, body string, header http.Header) *httptest.ResponseRecorder {
		t.Helper()
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		r.RemoteAddr = client + ":40000"
		for k, vs := range header {
			r.Header[k] = vs
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	secrets := []string{"SECRET-TOKEN-4711", "COOKIE-SECRET-4711", "QUERY-SECRET-4711", "BODY-SECRET-4711", "UNION"}
	creds := http.Header{"Authorization": {"Bearer SECRET-TOKEN-4711"}, "Cookie": {"session=COOKIE-SECRET-4711"},
		"User-Agent": {"activity-test"}, "Accept": {"*/*"}}

	for i, want := range []int{200, 200, 429} {
		if w := send("GET", "/items?page=QUERY-SECRET-4711", "192.0.2.10", "", creds); w.Code != want {
			var waf any
			adminJSON(t, g, "/v1/activity/waf", &waf)
			t.Fatalf("benign request %d: %d, want %d; refusals: %v", i, w.Code, want, waf)
		}
	}
	creds.Set("Content-Type", "application/x-www-form-urlencoded")
	creds.Set("Content-Length", "21")
	attack := send("POST", "/items?id=1%27%20UNION%20SELECT%20password%20FROM%20users--&key=QUERY-SECRET-4711", "192.0.2.20", "note=BODY-SECRET-4711", creds)
	if attack.Code != http.StatusForbidden {
		t.Fatalf("SQL injection: %d, want 403", attack.Code)
	}
	attackID := attack.Header().Get("X-Request-Id")
	ban := httptest.NewRecorder()
	g.AdminHandler().ServeHTTP(ban, adminRequest("POST", "/v1/bans", strings.NewReader(`{"target":"198.51.100.9","ttl":"1h","reason":"test"}`)))
	if ban.Code != http.StatusCreated && ban.Code != http.StatusOK {
		t.Fatalf("ban: %d %s", ban.Code, ban.Body)
	}
	if w := send("GET", "/", "198.51.100.9", "", nil); w.Code != http.StatusForbidden {
		t.Fatalf("banned client: %d, want 403", w.Code)
	}

	var bodies []string
	var overview struct {
		Series []struct {
			Allowed, Denied, Shadow, Errors int
			ByStage                         map[string]int `json:"by_stage"`
		}
	}
	bodies = append(bodies, adminJSON(t, g, "/v1/activity/overview?seconds=60", &overview))
	total := map[string]int{}
	for _, p := range overview.Series {
		total["allowed"] += p.Allowed
		total["denied"] += p.Denied
		total["shadow+errors"] += p.Shadow + p.Errors
		for s, n := range p.ByStage {
			total[s] += n
		}
	}
	want := map[string]int{"allowed": 2, "denied": 3, "shadow+errors": 0, "forward": 2, "volumetric": 1, "waf": 1, "reputation": 1}
	for k, n := range want {
		if total[k] != n {
			t.Errorf("overview: %s %d, want %d (all: %v)", k, total[k], n, total)
		}
	}

	var waf struct {
		Rules []struct {
			ID      int
			Message string
			Count   int
		}
		Blocked []struct {
			ID, Client, Method, Path, Stage, Source string
			Status                                  int
			Rules                                   []struct {
				ID      int
				Message string
			}
		}
	}
	bodies = append(bodies, adminJSON(t, g, "/v1/activity/waf", &waf))
	found := false
	for _, rl := range waf.Rules {
		if rl.ID == 942100 {
			found = rl.Count == 1 && strings.Contains(rl.Message, "SQL Injection")
		}
	}
	if !found {
		t.Errorf("rules %+v lack 942100 once with its message", waf.Rules)
	}
	if len(waf.Blocked) != 3 {
		t.Fatalf("blocked %+v, want the 3 refusals", waf.Blocked)
	}
	b := waf.Blocked[1] // newest first: the ban's refusal, then the attack
	if b.ID != attackID || b.Stage != "waf" || b.Status != 403 || b.Client != "192.0.2.20" || b.Method != "POST" || b.Path != "/items" || b.Source != "peer" || len(b.Rules) == 0 {
		t.Errorf("the attack's entry %+v (request id %s)", b, attackID)
	}

	var detail struct {
		Stages []struct {
			Stage, Verdict string
			Rules          []struct{ ID int }
		}
	}
	bodies = append(bodies, adminJSON(t, g, "/v1/activity/blocked/"+attackID, &detail))
	var got []string
	for _, s := range detail.Stages {
		got = append(got, s.Stage+":"+s.Verdict)
	}
	if strings.Join(got, " ") != "reputation:allow volumetric:allow waf:deny" || len(detail.Stages[2].Rules) == 0 {
		t.Errorf("the attack's stages %+v", detail.Stages)
	}

	var clients struct {
		ByRequests []struct {
			Client     string
			Count      int
			Reputation struct{ State, Until, Source string }
		} `json:"by_requests"`
	}
	bodies = append(bodies, adminJSON(t, g, "/v1/activity/clients", &clients))
	states := map[string]string{}
	for _, c := range clients.ByRequests {
		states[c.Client] = c.Reputation.State
		if c.Client == "198.51.100.9" && (c.Reputation.Until == "" || c.Reputation.Source != "operator") {
			t.Errorf("the banned client's reputation %+v, want its expiry and source operator", c.Reputation)
		}
	}
	if states["198.51.100.9"] != "banned" || states["192.0.2.10"] != "none" || len(states) != 3 {
		t.Errorf("clients' states %v", states)
	}

	for _, body := range bodies {
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("an activity answer holds %q:\n%s", s, body)
			}
		}
	}
}

// TestActivityConnections: the overview reads the edge listener's open
// connections from the Metrics the listener reports to.
func TestActivityConnections(t *testing.T) {
	g := mustGuard(t, "stages: []\n")
	g.metrics.ConnOpened()
	g.metrics.ConnOpened()
	g.metrics.ConnClosed()
	var got struct {
		Conns  int64 `json:"active_connections"`
		Memory int   `json:"memory_bytes"`
	}
	adminJSON(t, g, "/v1/activity/overview?seconds=1", &got)
	if got.Conns != 1 || got.Memory <= 0 {
		t.Errorf("active_connections %d, memory_bytes %d; want 1 and the bound", got.Conns, got.Memory)
	}
}

// sqlErrorPage is an upstream error page that CRS's outbound rules
// refuse when waf.inspect_response is on: 951220 (SQL error leakage) scores
// it and 959100 (outbound anomaly score) blocks.
const sqlErrorPage = "<html><body>You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near ''' at line 1</body></html>"

// TestActivityMatchesRequestsTotal: the console and /metrics count from
// one feed. After traffic that each stage refuses once (an intake refusal,
// a ban, a flood, a request-phase and a response-phase WAF deny), that
// passes, or that a shadow stage would refuse, the overview's requests by
// stage equal edgeguard_requests_total's denies per stage and its forwarded
// allows, and its shadow count equals the shadow denies. A deny the WAF
// decides on the response counts as the WAF's, in both, and is listed
// among the blocked requests with its rule.
func TestActivityMatchesRequestsTotal(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       map[string]int // the overview's totals: outcomes and requests by stage
	}{
		{
			name: "enforcing",
			yaml: "stages: [reputation, volumetric, waf]\nvolumetric: {rate: 1/m, burst: 2}\nwaf: {inspect_response: true}\n",
			want: map[string]int{"allowed": 2, "denied": 6, "shadow": 0, "forward": 2, "header": 1, "reputation": 1, "volumetric": 1, "waf": 3},
		},
		{
			name: "volumetric in shadow",
			yaml: "stages: [reputation, volumetric, waf]\nvolumetric: {mode: shadow, rate: 1/m, burst: 2}\nwaf: {inspect_response: true}\n",
			want: map[string]int{"allowed": 2, "denied": 5, "shadow": 1, "forward": 3, "header": 1, "reputation": 1, "waf": 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := mustGuard(t, tt.yaml)
			h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/report" {
					w.Header().Set("Content-Type", "text/html")
					w.Write([]byte(sqlErrorPage))
					return
				}
				w.Write([]byte("ok"))
			}))
			send := func(target, client string, header http.Header) *httptest.ResponseRecorder {
				t.Helper()
				r := httptest.NewRequest("GET", target, nil)
				r.RemoteAddr = client + ":40000"
				r.Header.Set("User-Agent", "activity-test")
				r.Header.Set("Accept", "*/*")
				for k, vs := range header {
					r.Header[k] = vs
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			for range 3 { // the third is over volumetric's burst
				send("/items", "192.0.2.10", nil)
			}
			if w := send("/items?id=1%27%20UNION%20SELECT%20password%20FROM%20users--", "192.0.2.20", nil); w.Code != http.StatusForbidden {
				t.Fatalf("SQL injection: %d, want 403", w.Code)
			}
			if w := send("/items?id=1%27%20OR%201=1--", "192.0.2.21", nil); w.Code != http.StatusForbidden {
				t.Fatalf("second SQL injection: %d, want 403", w.Code)
			}
			leak := send("/report", "192.0.2.30", nil)
			if leak.Code != http.StatusForbidden || strings.Contains(leak.Body.String(), "SQL syntax") {
				t.Fatalf("SQL error page with inspect_response: %d %q, want 403 without the page", leak.Code, leak.Body)
			}
			if w := send("/items", "192.0.2.40", http.Header{"Connection": {"Content-Type"}}); w.Code != http.StatusBadRequest {
				t.Fatalf("Connection: Content-Type: %d, want 400 before the chain", w.Code)
			}
			ban := httptest.NewRecorder()
			g.AdminHandler().ServeHTTP(ban, adminRequest("POST", "/v1/bans", strings.NewReader(`{"target":"198.51.100.9","ttl":"1h"}`)))
			if ban.Code != http.StatusCreated {
				t.Fatalf("ban: %d %s", ban.Code, ban.Body)
			}
			if w := send("/", "198.51.100.9", nil); w.Code != http.StatusForbidden {
				t.Fatalf("banned client: %d, want 403", w.Code)
			}

			var overview struct {
				Series []struct {
					Allowed, Denied, Shadow, Errors int
					ByStage                         map[string]int `json:"by_stage"`
				}
			}
			adminJSON(t, g, "/v1/activity/overview?seconds=60", &overview)
			got, byStage := map[string]int{}, map[string]int{}
			for _, p := range overview.Series {
				got["allowed"] += p.Allowed
				got["denied"] += p.Denied
				got["shadow"] += p.Shadow
				for s, n := range p.ByStage {
					got[s] += n
					byStage[s] += n
				}
			}
			for k, n := range tt.want {
				if got[k] != n {
					t.Errorf("overview: %s %d, want %d (all: %v)", k, got[k], n, got)
				}
			}

			// edgeguard_requests_total by "stage verdict".
			mfs, err := g.metrics.Registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			counted := map[string]int{}
			for _, mf := range mfs {
				if mf.GetName() != "edgeguard_requests_total" {
					continue
				}
				for _, m := range mf.GetMetric() {
					var stage, verdict string
					for _, l := range m.GetLabel() {
						switch l.GetName() {
						case "stage":
							stage = l.GetValue()
						case "verdict":
							verdict = l.GetValue()
						}
					}
					counted[stage+" "+verdict] += int(m.GetCounter().GetValue())
				}
			}
			fromMetrics := map[string]int{}
			shadowDenies := 0
			for k, n := range counted {
				stage, verdict, _ := strings.Cut(k, " ")
				switch {
				case verdict == "shadow_deny":
					shadowDenies += n
				case verdict == "allow" && stage == "forward", verdict == "deny" && stage != "forward":
					fromMetrics[stage] += n
				case n != 0:
					t.Errorf("edgeguard_requests_total{stage=%q, verdict=%q} %d: no such pair", stage, verdict, n)
				}
			}
			for s := range fromMetrics {
				if fromMetrics[s] != byStage[s] {
					t.Errorf("stage %s: edgeguard_requests_total %d, the console %d (metrics: %v; console: %v)", s, fromMetrics[s], byStage[s], counted, byStage)
				}
			}
			for s := range byStage {
				if _, ok := fromMetrics[s]; !ok && byStage[s] != 0 {
					t.Errorf("stage %s: the console counts %d, edgeguard_requests_total none (metrics: %v)", s, byStage[s], counted)
				}
			}
			if shadowDenies != got["shadow"] {
				t.Errorf("shadow denies: edgeguard_requests_total %d, the console %d", shadowDenies, got["shadow"])
			}

			// The response-phase deny is a blocked request of the WAF's.
			var waf struct {
				Blocked []struct {
					ID, Stage string
					Status    int
					Rules     []struct{ ID int }
				}
			}
			adminJSON(t, g, "/v1/activity/waf", &waf)
			leakID := leak.Header().Get("X-Request-Id")
			var found bool
			for _, b := range waf.Blocked {
				if b.ID != leakID {
					continue
				}
				found = true
				if b.Stage != "waf" || b.Status != http.StatusForbidden || len(b.Rules) != 1 || b.Rules[0].ID != 959100 {
					t.Errorf("the response-phase deny's entry %+v, want stage waf, 403, rule 959100", b)
				}
			}
			if !found {
				t.Errorf("the response-phase deny %s is not among the blocked requests %+v", leakID, waf.Blocked)
			}
		})
	}
}
