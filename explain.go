package edgeguard

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/quota"
	"github.com/edgeguard/edgeguard/internal/redisconf"
)

// Explanation is what every stage says about one request.
type Explanation struct {
	// Client is the resolved client, Peer the TCP peer it was resolved
	// from, Source how (peer, proxy or header).
	Client string `json:"client"`
	Peer   string `json:"peer"`
	Source string `json:"source"`
	// Route is the route the request matched ("" for the default).
	Route string `json:"route,omitempty"`
	// Stages holds each stage's verdict, in chain order.
	Stages []StageVerdict `json:"stages"`
	// Result is what the chain as configured would do: "allow", or
	// "deny STATUS by STAGE".
	Result string `json:"result"`
	// Verdicts are the stages' verdicts as the stages returned them.
	Verdicts []filters.Verdict `json:"-"`
}

// StageVerdict is one stage's verdict, for people and for -json.
type StageVerdict struct {
	Stage string `json:"stage"`
	// Verdict is allow, deny, or shadow_deny (a stage in shadow mode
	// would deny; the chain allows).
	Verdict    string `json:"verdict"`
	Status     int    `json:"status,omitempty"`
	Reason     string `json:"reason,omitempty"`
	RuleIDs    []int  `json:"rule_ids,omitempty"`
	Score      int    `json:"anomaly_score,omitempty"`
	RetryAfter string `json:"retry_after,omitempty"`
	// Notes are the stage's remarks: for the WAF, each matched rule with
	// its severity, the variable and the matched data (truncated), and its
	// message.
	Notes []string `json:"notes,omitempty"`
}

// Explain is a dry run: it asks every stage of the chain cfg describes for
// its verdict on r, whatever the others decide. It builds a Guard of its
// own for this one request and closes it, with every Redis replaced by
// memory (no quota, ban or route switch is read from or written to Redis),
// and tells no observer (no strike, no ban). Nothing that serves traffic
// is touched; in exchange, the limiters decide as for a client they have
// never seen. r.RemoteAddr is the TCP peer.
func Explain(cfg *config.Config, r *http.Request, now time.Time, opts ...Option) (*Explanation, error) {
	g, err := New(dryConfig(cfg), opts...)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	return g.Explain(r, now)
}

// dryConfig is cfg with every Redis the stages and the forwarder would
// dial left out: quotas count in memory, bans and the closed switch stay
// local.
func dryConfig(cfg *config.Config) *config.Config {
	dry := *cfg
	local := func(q *quota.Config) {
		q.Store, q.Redis = quota.StoreMemory, redisconf.Config{}
	}
	local(&dry.Quota)
	dry.Reputation.Redis = redisconf.Config{}
	dry.Forward.ClosedSwitch.Redis = redisconf.Config{}
	if cfg.RouteStages != nil {
		dry.RouteStages = make(map[string]config.RouteStages, len(cfg.RouteStages))
		for route, rs := range cfg.RouteStages {
			if rs.Quota != nil {
				q := *rs.Quota
				local(&q)
				rs.Quota = &q
			}
			dry.RouteStages[route] = rs
		}
	}
	return &dry
}

// Explain resolves r's client as the edge would (r.RemoteAddr is the TCP
// peer) and asks every stage of g for its verdict, whatever the others
// decide. Nothing is reported to observers, so explaining bans no one; but
// g's limiters do count the request: for a dry run, use the function
// Explain.
func (g *Guard) Explain(r *http.Request, now time.Time) (*Explanation, error) {
	req := &filters.Request{HTTP: r, Now: now, ID: "explain", Explaining: true}
	if _, ref := g.intake(req, r); ref != nil {
		if ref.stage == "client_ip" {
			return nil, fmt.Errorf("resolve client: %w", ref.err)
		}
		return nil, ref.err
	}
	defer req.Finish()
	chain := g.chainFor(req.Route)
	ex := &Explanation{Client: req.Client.String(), Peer: req.Peer.Addr().String(), Source: req.Source.String(),
		Route: req.Route, Verdicts: chain.Explain(req), Result: "allow"}
	for _, v := range ex.Verdicts {
		if v.Deny && !v.Shadow && ex.Result == "allow" {
			ex.Result = fmt.Sprintf("deny %d by %s", v.StatusCode(), v.Stage)
		}
		ex.Stages = append(ex.Stages, stageVerdict(v, req.Notes))
	}
	return ex, nil
}

func stageVerdict(v filters.Verdict, notes []filters.Note) StageVerdict {
	sv := StageVerdict{Stage: v.Stage, Verdict: "allow", Reason: v.Reason, RuleIDs: v.RuleIDs, Score: v.Score}
	if v.Deny {
		sv.Verdict, sv.Status = "deny", v.StatusCode()
		if v.Shadow {
			sv.Verdict = "shadow_deny"
		}
	}
	if v.RetryAfter > 0 {
		sv.RetryAfter = v.RetryAfter.String()
	}
	for _, n := range notes {
		if n.Stage == v.Stage && !strings.HasPrefix(n.Text, "shadow deny: ") {
			sv.Notes = append(sv.Notes, n.Text)
		}
	}
	return sv
}
