package edgeguard

import (
	"fmt"
	"net/http"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// Explanation is what every stage says about one request.
type Explanation struct {
	Client   string
	Source   string
	Verdicts []filters.Verdict
	// Result is what the chain as configured would do: "allow", or
	// "deny STATUS by STAGE".
	Result string
}

// Explain resolves r's client as the edge would (r.RemoteAddr is the TCP
// peer) and asks every stage for its verdict, whatever the others decide.
// Nothing is reported to observers, so explaining bans no one; limiters do
// count the request.
func (g *Guard) Explain(r *http.Request, now time.Time) (*Explanation, error) {
	req := &filters.Request{HTTP: r, Now: now, ID: "explain"}
	if _, ref := g.intake(req, r); ref != nil {
		if ref.stage == "client_ip" {
			return nil, fmt.Errorf("resolve client: %w", ref.err)
		}
		return nil, ref.err
	}
	defer req.Finish()
	chain := g.chainFor(req.Route)
	ex := &Explanation{Client: req.Client.String(), Source: req.Source.String(), Verdicts: chain.Explain(req), Result: "allow"}
	for _, v := range ex.Verdicts {
		if v.Deny && !v.Shadow {
			ex.Result = fmt.Sprintf("deny %d by %s", v.StatusCode(), v.Stage)
			break
		}
	}
	return ex, nil
}
