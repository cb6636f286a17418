package reputation

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// maxAdminBody bounds a POST /v1/bans body; a ban is a few dozen bytes.
const maxAdminBody = 64 << 10

// banJSON is a ban as the admin API shows it.
type banJSON struct {
	Target  string    `json:"target"`
	Reason  string    `json:"reason"`
	Source  string    `json:"source"`
	Level   int       `json:"level"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

func toJSON(b *Ban) banJSON {
	return banJSON{Target: formatPrefix(b.Prefix), Reason: b.Reason, Source: b.Source, Level: b.Level,
		Created: b.Created.UTC(), Expires: b.Expires.UTC()}
}

// banRequest is the body of POST /v1/bans.
type banRequest struct {
	Target string  `json:"target"`
	TTL    *string `json:"ttl"`
	Reason string  `json:"reason"`
	// Force bans a target that the safety checks of checkScope refuse.
	Force bool `json:"force"`
}

// The widest operator bans the admin API takes without "force": an IPv4 /8
// (16.7 million addresses, one of the old class A blocks) and an IPv6 /16
// (far wider than any single network's allocation from a registry). A ban wider than that is
// almost always a typo (0.0.0.0/1 for 0.0.0.0/31) and would lock out half
// the internet, the operator included.
const (
	MinBanBits4 = 8
	MinBanBits6 = 16
)

// AdminHandler serves the ban API, to be mounted on the admin listener
// (which checks the bearer token before it):
//
//	GET    /v1/bans           the bans in force: {"bans": [{target, reason, source, level, created, expires}]}
//	POST   /v1/bans           {"target": "192.0.2.7" | "2001:db8::/64", "ttl": "1h", "reason": "...", "force": false}; ttl defaults to ban.ttl
//	DELETE /v1/bans/{target}  lift the ban of exactly that target (a lone IPv6 address means its /64 key)
//
// With Redis configured, bans and unbans reach every node. Errors are
// {"error": "..."} with 400 for bad input, 404 for an unknown ban and 409
// for a ban that checkScope refuses without "force": true (wider than
// MinBanBits4/MinBanBits6, covering an allow-listed address, or covering
// the admin request's own peer).
func (f *Filter) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/bans", f.listBans)
	mux.HandleFunc("POST /v1/bans", f.postBan)
	mux.HandleFunc("DELETE /v1/bans/{target...}", f.deleteBan)
	return mux
}

func (f *Filter) listBans(w http.ResponseWriter, r *http.Request) {
	bans := f.BansAt(f.clock())
	out := struct {
		Bans []banJSON `json:"bans"`
	}{Bans: make([]banJSON, 0, len(bans))}
	for _, b := range bans {
		out.Bans = append(out.Bans, toJSON(b))
	}
	writeJSON(w, http.StatusOK, out)
}

func (f *Filter) postBan(w http.ResponseWriter, r *http.Request) {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	var req banRequest
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "body: "+describeJSONError(err))
		return
	}
	if dec.Decode(&struct{}{}) != io.EOF {
		writeError(w, http.StatusBadRequest, "body: want exactly one JSON object")
		return
	}
	if req.Target == "" {
		writeError(w, http.StatusBadRequest, `target: required, an IP address or CIDR prefix like "192.0.2.7" or "2001:db8::/64"`)
		return
	}
	p, err := ParseTarget(req.Target, f.v6Bits)
	if err != nil {
		writeError(w, http.StatusBadRequest, "target: "+targetMessage(err))
		return
	}
	if !req.Force {
		if msg := f.checkScope(p, peerOf(r)); msg != "" {
			writeError(w, http.StatusConflict, "target: "+msg+`; send "force": true to ban it anyway`)
			return
		}
	}
	ttl := f.cfg.Ban.TTL.D()
	if req.TTL != nil {
		d, err := time.ParseDuration(*req.TTL)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("ttl: %q is not a duration; want a number with a unit, like 30m, 1h, 24h", *req.TTL))
			return
		}
		if d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("ttl: %q must be positive", *req.TTL))
			return
		}
		ttl = d
	}
	if len(req.Reason) > 200 {
		writeError(w, http.StatusBadRequest, "reason: longer than 200 bytes")
		return
	}
	reason := req.Reason
	if reason == "" {
		reason = "operator"
	}
	b, err := f.BanAt(f.clock(), p, ttl, reason)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, toJSON(b))
}

// checkScope says why an operator ban of p would do more harm than the
// operator can have meant, or "" when it would not: wider than the bound,
// over an allow-listed address, or over peer, the address the ban request
// itself came from (an operator who bans their own jump host or tunnel
// locks themselves out of everything behind the edge).
func (f *Filter) checkScope(p netip.Prefix, peer netip.Addr) string {
	bound := MinBanBits6
	if p.Addr().Is4() {
		bound = MinBanBits4
	}
	if p.Bits() < bound {
		return fmt.Sprintf("%s is wider than a /%d", p, bound)
	}
	allow := f.lists.Load().allow
	if allow.LookupPrefix(p) {
		return fmt.Sprintf("%s is on an allow list", formatPrefix(p))
	}
	for sub := range allow.Subnets(p) {
		return fmt.Sprintf("%s covers %s, which is on an allow list", formatPrefix(p), formatPrefix(sub))
	}
	if peer.IsValid() && p.Contains(peer) {
		return fmt.Sprintf("%s covers %s, the address this request came from", formatPrefix(p), peer)
	}
	return ""
}

// peerOf is the TCP peer of an admin request.
func peerOf(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (f *Filter) deleteBan(w http.ResponseWriter, r *http.Request) {
	raw := r.PathValue("target")
	p, err := ParseTarget(raw, f.v6Bits)
	if err != nil {
		writeError(w, http.StatusBadRequest, "target: "+targetMessage(err))
		return
	}
	b, ok := f.UnbanAt(f.clock(), p)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no ban in force on %s", formatPrefix(p)))
		return
	}
	writeJSON(w, http.StatusOK, toJSON(b))
}

// targetMessage strips the package's sentinel off a target error for
// clients: "reputation: bad target "x": ..." becomes ""x": ...".
func targetMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), ErrTarget.Error())
	return strings.TrimPrefix(strings.TrimPrefix(msg, ":"), " ")
}

func describeJSONError(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return fmt.Sprintf("larger than %d bytes", maxAdminBody)
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, err)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type)
	case errors.Is(err, io.EOF):
		return "empty; want a JSON object with target, ttl and reason"
	}
	// DisallowUnknownFields reports `json: unknown field "x"`.
	return err.Error()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
