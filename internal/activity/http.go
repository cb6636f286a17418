package activity

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/edgeguard/edgeguard/internal/httpkit"
)

// LatencyWindow is the span, in seconds, of the overview's percentiles.
const LatencyWindow = 60

// Sources are what the JSON endpoints need besides the Recorder.
type Sources struct {
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Reputation says what the reputation stage holds about a client at
	// now; nil when there is no such stage (every client is "none").
	Reputation func(addr netip.Addr, now time.Time) Reputation
	// ActiveConnections reads the open connections of the edge listener;
	// nil reads 0.
	ActiveConnections func() int64
}

// Reputation is a client's standing with the reputation stage.
type Reputation struct {
	// State is StateBanned, StateDenyListed, StateAllowListed or StateNone.
	State string
	// Until is when a ban ends (zero for the other states).
	Until time.Time
	// Source is who made the ban (a stage, or "operator"), or which kind
	// of list holds the client.
	Source string
}

// The states a Reputation names.
const (
	StateNone        = "none"
	StateBanned      = "banned"
	StateDenyListed  = "denylisted"
	StateAllowListed = "allowlisted"
)

// Handler serves the recorder's JSON for the admin listener, which checks
// the token and the request's origin before it:
//
//	GET /v1/activity/overview?seconds=N  the series (N seconds, default and at most 900), latency, connections
//	GET /v1/activity/clients             top clients by requests and by refusals, with their reputation
//	GET /v1/activity/waf                 top WAF rules, and the last refusals of every stage
//	GET /v1/activity/blocked/{id}        one refusal with its stages' verdicts; 404 once evicted
//
// Errors are {"error": "..."}.
func (r *Recorder) Handler(src Sources) http.Handler {
	if src.Now == nil {
		src.Now = time.Now
	}
	if src.Reputation == nil {
		src.Reputation = func(netip.Addr, time.Time) Reputation { return Reputation{State: StateNone} }
	}
	if src.ActiveConnections == nil {
		src.ActiveConnections = func() int64 { return 0 }
	}
	h := &handler{r: r, src: src}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/activity/overview", h.overview)
	mux.HandleFunc("GET /v1/activity/clients", h.clients)
	mux.HandleFunc("GET /v1/activity/waf", h.waf)
	mux.HandleFunc("GET /v1/activity/blocked/{id...}", h.blocked) // a trusted proxy's id may hold a /
	return mux
}

type handler struct {
	r   *Recorder
	src Sources
}

type overviewJSON struct {
	Now               string      `json:"now"`
	StepSeconds       int         `json:"step_seconds"`
	Series            []pointJSON `json:"series"`
	Latency           latencyJSON `json:"latency"`
	ActiveConnections int64       `json:"active_connections"`
	MemoryBytes       int         `json:"memory_bytes"`
}

type pointJSON struct {
	T       int64             `json:"t"`
	Allowed uint32            `json:"allowed"`
	Denied  uint32            `json:"denied"`
	Shadow  uint32            `json:"shadow"`
	Errors  uint32            `json:"errors"`
	ByStage map[string]uint32 `json:"by_stage"`
}

type latencyJSON struct {
	P50           float64 `json:"p50_ms"`
	P99           float64 `json:"p99_ms"`
	WindowSeconds int     `json:"window_seconds"`
}

func (h *handler) overview(w http.ResponseWriter, req *http.Request) {
	n, err := parseSeconds(req.URL.Query().Get("seconds"))
	if err != nil {
		httpkit.WriteJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	now := h.src.Now()
	out := overviewJSON{
		Now:               now.UTC().Format(time.RFC3339),
		StepSeconds:       1,
		Series:            make([]pointJSON, 0, n),
		Latency:           latencyJSON{WindowSeconds: LatencyWindow},
		ActiveConnections: h.src.ActiveConnections(),
		MemoryBytes:       h.r.MemoryBytes(),
	}
	for _, p := range h.r.Series(now, n) {
		out.Series = append(out.Series, pointJSON{T: p.Unix, Allowed: p.Outcomes[Allowed], Denied: p.Outcomes[Denied],
			Shadow: p.Outcomes[Shadow], Errors: p.Outcomes[Errored], ByStage: p.ByStage})
	}
	out.Latency.P50, out.Latency.P99 = h.r.Latency(now, LatencyWindow)
	httpkit.WriteJSON(w, http.StatusOK, out)
}

// errSeconds is the seconds parameter's error.
var errSeconds = errors.New("activity: seconds must be a whole number from 1 to 900")

// parseSeconds reads the overview's seconds parameter: empty means Window.
func parseSeconds(s string) (int, error) {
	if s == "" {
		return Window, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > Window {
		return 0, fmt.Errorf("%w, not %q", errSeconds, s)
	}
	return n, nil
}

type clientJSON struct {
	Client     string         `json:"client"`
	Count      uint64         `json:"count"`
	Error      uint64         `json:"error"`
	Reputation reputationJSON `json:"reputation"`
}

type reputationJSON struct {
	State  string `json:"state"`
	Until  string `json:"until,omitempty"`
	Source string `json:"source,omitempty"`
}

func (h *handler) clients(w http.ResponseWriter, req *http.Request) {
	now := h.src.Now()
	list := func(hs []Hitter[netip.Addr, struct{}]) []clientJSON {
		out := make([]clientJSON, 0, len(hs))
		for _, c := range hs {
			rep := h.src.Reputation(c.Key, now)
			rj := reputationJSON{State: rep.State, Source: rep.Source}
			if rj.State == "" {
				rj.State = StateNone
			}
			if !rep.Until.IsZero() {
				rj.Until = rep.Until.UTC().Format(time.RFC3339)
			}
			out = append(out, clientJSON{Client: c.Key.String(), Count: c.Count, Error: c.Error, Reputation: rj})
		}
		return out
	}
	httpkit.WriteJSON(w, http.StatusOK, struct {
		ByRequests []clientJSON `json:"by_requests"`
		ByDenials  []clientJSON `json:"by_denials"`
	}{list(h.r.TopClients(now)), list(h.r.TopDenied(now))})
}

type ruleJSON struct {
	ID      int    `json:"id"`
	Message string `json:"message"`
	Count   uint64 `json:"count"`
	Error   uint64 `json:"error"`
}

type ruleRefJSON struct {
	ID      int    `json:"id"`
	Message string `json:"message"`
}

type blockedJSON struct {
	ID     string        `json:"id"`
	Time   string        `json:"time"`
	Client string        `json:"client"`
	Route  string        `json:"route"`
	Method string        `json:"method"`
	Path   string        `json:"path"`
	Stage  string        `json:"stage"`
	Status int           `json:"status"`
	Reason string        `json:"reason"`
	Rules  []ruleRefJSON `json:"rules"`
	Source string        `json:"source"`
	Stages []stageJSON   `json:"stages,omitempty"`
}

type stageJSON struct {
	Stage   string        `json:"stage"`
	Verdict string        `json:"verdict"`
	Reason  string        `json:"reason,omitempty"`
	Rules   []ruleRefJSON `json:"rules,omitempty"`
}

func (h *handler) waf(w http.ResponseWriter, req *http.Request) {
	now := h.src.Now()
	top := h.r.TopRules(now)
	rules := make([]ruleJSON, 0, len(top))
	for _, rl := range top {
		rules = append(rules, ruleJSON{ID: rl.Key, Message: rl.Value, Count: rl.Count, Error: rl.Error})
	}
	recent := h.r.Blocked()
	blocked := make([]blockedJSON, 0, len(recent))
	for _, b := range recent {
		blocked = append(blocked, blockedOf(b, false))
	}
	httpkit.WriteJSON(w, http.StatusOK, struct {
		Rules   []ruleJSON    `json:"rules"`
		Blocked []blockedJSON `json:"blocked"`
	}{rules, blocked})
}

func (h *handler) blocked(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	b, ok := h.r.FindBlocked(id)
	if !ok {
		httpkit.WriteJSONError(w, http.StatusNotFound, fmt.Sprintf("no refused request with id %q among the last %d", id, BlockedSize))
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, blockedOf(b, true))
}

func blockedOf(b Blocked, stages bool) blockedJSON {
	out := blockedJSON{ID: b.ID, Time: b.Time.UTC().Format(time.RFC3339Nano), Route: b.Route, Method: b.Method,
		Path: b.Path, Stage: b.Stage, Status: b.Status, Reason: b.Reason, Rules: rulesJSON(b.Rules), Source: b.Source}
	if b.Client.IsValid() {
		out.Client = b.Client.String()
	}
	if stages {
		out.Stages = make([]stageJSON, 0, len(b.Stages))
		for _, s := range b.Stages {
			sj := stageJSON{Stage: s.Stage, Verdict: s.Verdict, Reason: s.Reason}
			if len(s.Rules) > 0 {
				sj.Rules = rulesJSON(s.Rules)
			}
			out.Stages = append(out.Stages, sj)
		}
	}
	return out
}

func rulesJSON(rules []Rule) []ruleRefJSON {
	out := make([]ruleRefJSON, 0, len(rules))
	for _, rl := range rules {
		out = append(out, ruleRefJSON{ID: rl.ID, Message: rl.Message})
	}
	return out
}
