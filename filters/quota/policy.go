package quota

import (
	"crypto/sha256"
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/edgeguard/edgeguard/filters"
)

// This file decides a request's policies: which of them it falls under, at
// which tier, and which client it is counted against.

// policy is a Policy compiled for the request path.
type policy struct {
	name    string
	limit   filters.Limit
	cost    int64
	shadow  bool
	item    string // RateLimit-Policy member for limit
	prefix  filters.PathPrefix
	methods []string
	host    string
	tierHdr string
	tiers   map[string]tier
}

// tier is one entry of Policy.Tiers. All tiers of a policy share the
// policy's state (one Redis key per client), so a client that switches
// tiers carries its debt along instead of getting each tier's quota anew.
type tier struct {
	limit filters.Limit
	item  string
	idx   int // 1-based; 0 is the policy's own limit
}

func compilePolicy(p Policy) policy {
	cost := p.Cost
	if cost == 0 {
		cost = 1
	}
	c := policy{
		name:    p.Name,
		limit:   filters.LimitOf(p.Rate, p.Burst),
		cost:    cost,
		shadow:  p.Mode == filters.ModeShadow,
		prefix:  filters.NewPathPrefix(p.Match.PathPrefix, filters.AnyByte, filters.AnySpelling),
		methods: p.Match.Methods,
		host:    filters.MatchHost(p.Match.Host),
	}
	c.item = policyItem(c.name, c.limit)
	if p.Tiers != nil {
		c.tierHdr = http.CanonicalHeaderKey(p.Tiers.Header)
		c.tiers = make(map[string]tier, len(p.Tiers.Values))
		for i, v := range slices.Sorted(maps.Keys(p.Tiers.Values)) {
			l := filters.LimitOf(p.Tiers.Values[v].Rate, p.Tiers.Values[v].Burst)
			c.tiers[v] = tier{limit: l, item: policyItem(c.name, l), idx: i + 1}
		}
	}
	return c
}

// matches reports whether r is subject to p. The host is compared in its
// normal form (filters.MatchHost); the path prefix holds when it covers
// (filters.PathPrefix, every spelling) either the normal form of the path
// (filters.MatchPath) or the path as sent: a normalising backend routes the
// one, a backend that resolves nothing the other, and the policy must hold
// for both.
func (p *policy) matches(r *http.Request) bool {
	if !p.prefix.IsZero() && !p.prefix.Covers(filters.MatchPath(r.URL.Path)) && !p.prefix.Covers(sentPath(r.URL)) {
		return false
	}
	if len(p.methods) > 0 {
		found := false
		for _, m := range p.methods {
			if m == r.Method {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if p.host != "" && filters.MatchHost(r.Host) != p.host {
		return false
	}
	return true
}

// tierFor returns r's tier of p (the policy's own limit as tier 0). The
// tier header is believed only on a request that came through a trusted
// L7 proxy (its client address was read from a forwarding header, which
// ipparse reads only from trusted_proxies): anyone else could name the
// tier they like, so they get the policy's own limit.
func (p *policy) tierFor(r *filters.Request) tier {
	if p.tiers != nil && r.HTTP != nil && r.Source == filters.SourceHeader {
		if t, ok := p.tiers[r.HTTP.Header.Get(p.tierHdr)]; ok {
			return t
		}
	}
	return tier{limit: p.limit, item: p.item}
}

// clientID hashes the first key source of r that is present and trusted,
// with the source's name, so that equal values from different sources stay
// different clients and no raw API key or cookie leaves the process. byIP
// says the source was the client address. A source the client could have
// invented is trusted only when verified (see Config.Key); one that fails
// is counted and passes to the next source, so an invented key meets the
// per-IP limit rather than a fresh bucket.
func (f *Filter) clientID(r *filters.Request) (id [16]byte, byIP, ok bool) {
	for _, s := range f.sources {
		if s.Kind == KeyIP {
			if r.Client.IsValid() {
				return hashID(string(KeyIP), string(r.Key[:])), true, true
			}
			continue
		}
		if r.HTTP == nil {
			continue
		}
		value, present, trusted := f.keyValue(r, s)
		if !present {
			continue
		}
		if !trusted {
			f.stats.unverified.Add(1)
			continue
		}
		return hashID(s.String(), value), false, true
	}
	return [16]byte{}, false, false
}

// keyValue reads source s of r: present says the request carries it,
// trusted that it passed verification.
func (f *Filter) keyValue(r *filters.Request, s KeySource) (value string, present, trusted bool) {
	switch s.Kind {
	case KeyHeader:
		value = r.HTTP.Header.Get(s.Name)
	case KeyCookie:
		if c, err := r.HTTP.Cookie(s.Name); err == nil {
			value = c.Value
		}
	case KeyJWT:
		if r.HTTP.Header.Get(f.jwt.header) == "" {
			return "", false, false
		}
		value, trusted = f.jwt.claim(r.HTTP, s.Name, r.Now)
		return value, true, trusted
	}
	if value == "" {
		return "", false, false
	}
	if f.keys == nil {
		// Nothing to verify against: believed only from a trusted L7
		// proxy (client_ip.trusted_proxies), which must set it.
		return value, true, r.Source == filters.SourceHeader
	}
	_, known := f.keys[HashKey(value)]
	return value, true, known
}

func hashID(source, value string) [16]byte {
	h := sha256.New()
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(value))
	var sum [32]byte
	var id [16]byte
	copy(id[:], h.Sum(sum[:0]))
	return id
}

// sentPath is the path as the client sent it, decoded unless decoding
// would change it (an escaped "/").
func sentPath(u *url.URL) string {
	if u.RawPath != "" {
		return u.RawPath
	}
	return u.Path
}
