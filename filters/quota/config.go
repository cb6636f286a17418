package quota

import (
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/redisconf"
	"golang.org/x/net/http/httpguts"
)

// StoreKind is where quota state lives: the value of Config.Store.
type StoreKind string

// Store kinds. Empty means StoreMemory.
const (
	StoreMemory StoreKind = "memory"
	StoreRedis  StoreKind = "redis"
)

// OnError is what a request gets while the store fails: the value of
// Config.OnError.
type OnError string

// on_error modes. Empty means OnErrorLocal.
const (
	OnErrorLocal OnError = "local"
	OnErrorAllow OnError = "allow"
	OnErrorDeny  OnError = "deny"
)

// KeyKind is where a KeySource reads the client identity from.
type KeyKind string

// Key source kinds, as written before the colon in Config.Key.
const (
	KeyIP     KeyKind = "ip"
	KeyHeader KeyKind = "header"
	KeyCookie KeyKind = "cookie"
	KeyJWT    KeyKind = "jwt"
)

// Batch says whether concurrent Redis calls share pipelines: the value of
// Config.Batch.
type Batch string

// Batch switch values. Empty means BatchOn.
const (
	BatchOn  Batch = "on"
	BatchOff Batch = "off"
)

// Defaults for the zero values of Config.
const (
	DefaultLocalCacheSize = 100_000
	DefaultKeyPrefix      = "edgeguard:quota:"
	DefaultBreakerFails   = 5
	DefaultBreakerBackoff = time.Second
	DefaultBreakerMax     = 30 * time.Second
)

// Config is the quota: block.
type Config struct {
	// Mode is block (enforce), shadow (send the headers and count what
	// would be denied, deny nothing) or off.
	Mode filters.Mode `yaml:"mode" json:"mode"`
	// Store is where quota state lives: memory (this process only, the
	// default: N nodes admit N times the quota) or redis (shared by every
	// node using the same Redis: one fleet-wide quota).
	Store StoreKind `yaml:"store,omitempty" json:"store,omitempty"`
	// Redis is how to reach Redis when Store is redis; ignored otherwise.
	// Its timeout (default 50ms) bounds each quota decision.
	Redis redisconf.Config `yaml:"redis,omitempty" json:"redis,omitempty"`
	// OnError is what a request gets while Redis fails (an error, a timeout
	// or an open breaker): local (the default) decides with an in-process
	// limiter at each policy's rate divided by FleetSize, allow admits it,
	// deny refuses it with 503 and a Retry-After (an outage is not the
	// client's fault: not a 429, and no strike). See RATIONALE for why
	// local is the default.
	OnError OnError `yaml:"on_error,omitempty" json:"on_error,omitempty"`
	// FleetSize is the number of edge nodes sharing the quota, used only by
	// on_error: local: each node then admits rate/FleetSize with a burst of
	// burst/FleetSize (rounded up), so the fleet as a whole stays near the
	// quota while Redis is away. "auto" (the default with the Redis store)
	// counts the nodes: each announces itself in Redis every
	// Fleet.Announce with an expiry of Fleet.TTL, and the count it last saw
	// is what it divides by once Redis is gone. A number fixes the size.
	// With the memory store it is unused (each node has its own quota).
	FleetSize FleetSize `yaml:"fleet_size,omitempty" json:"fleet_size,omitempty"`
	// Fleet tunes fleet_size: auto.
	Fleet Fleet `yaml:"fleet,omitempty" json:"fleet,omitempty"`
	// Key lists where the client identity comes from, in order; the first
	// source present and trusted in a request is used: "header:NAME" (e.g.
	// an API key header), "cookie:NAME", "jwt:CLAIM" (a claim of a bearer
	// token whose signature JWT verifies), "ip" (the resolved client key,
	// IPv6 collapsed to its prefix). A client can send any header, cookie
	// or token it likes, so those are trusted only when verified: a
	// header or cookie value whose SHA-256 is in KeysFile, a token that
	// JWT's keys signed and whose exp/nbf hold. Without KeysFile a header
	// or cookie is believed only on requests forwarded by a trusted L7
	// proxy (client_ip.trusted_proxies), which must set it. A source that
	// is absent, unknown or invalid passes to the next one, so a client
	// inventing keys meets the per-IP limit of an "ip" after them, never a
	// fresh bucket. The value is hashed before it is used as a key, so no
	// API key reaches Redis. A request with none of them present is not
	// subject to quotas. Default [ip].
	Key []string `yaml:"key,omitempty" json:"key,omitempty"`
	// KeysFile names a file of the SHA-256 hashes (hex) of the API keys
	// this edge accepts in header: and cookie: sources, one a line, "#"
	// starting a comment; anything after the hash and a space is a label
	// (so `sha256sum` output works). Relative to the config file; read
	// again on every reload. A key whose hash is not listed is not
	// trusted: the request is identified by the next source.
	KeysFile string `yaml:"keys_file,omitempty" json:"keys_file,omitempty"`
	// JWT says how the tokens of jwt:CLAIM sources are verified; required
	// when a jwt: source is listed.
	JWT *JWT `yaml:"jwt,omitempty" json:"jwt,omitempty"`
	// KeyPrefix starts every Redis key, to share a Redis with other users.
	// Default "edgeguard:quota:". It must not contain braces.
	KeyPrefix string `yaml:"key_prefix,omitempty" json:"key_prefix,omitempty"`
	// Policies are the limits. A request is checked against every policy
	// that matches it; all must allow, and a request denied by one consumes
	// nothing from the others.
	Policies []Policy `yaml:"policies" json:"policies"`
	// Breaker stops calling a failing Redis for a while so that requests do
	// not queue on it.
	Breaker Breaker `yaml:"breaker,omitempty" json:"breaker,omitempty"`
	// LocalCacheSize bounds the cache of clients Redis denied: until the
	// denial's retry time, their requests are denied without a Redis call
	// (exact: a GCRA deny changes no state). Default 100000 entries.
	LocalCacheSize int `yaml:"local_cache_size,omitempty" json:"local_cache_size,omitempty"`
	// MaxKeys bounds the keys the memory store (and the local fallback)
	// hold; past it, the store forgets some live clients, who get a fresh
	// burst. Default 1048576.
	MaxKeys int `yaml:"max_keys,omitempty" json:"max_keys,omitempty"`
	// Batch is on (the default) or off. On, concurrent requests share Redis
	// pipelines (go-redis's auto-pipelining: what is already queued goes out
	// in one write, nothing waits for more): about 2-3× the decisions per
	// second at 64 concurrent requests, for some 20µs more latency on a lone
	// request. Off, each request is one script call on the connection pool.
	// Measured in bench/ (see its README).
	Batch Batch `yaml:"batch,omitempty" json:"batch,omitempty"`
}

// Policy is one named limit.
type Policy struct {
	// Name identifies the policy in headers, logs and Redis keys; letters,
	// digits, '-', '_' and '.', unique within the stage.
	Name string `yaml:"name" json:"name"`
	// Rate is the sustained rate, e.g. "600/m".
	Rate filters.Rate `yaml:"rate" json:"rate"`
	// Burst is how many requests a client that has been idle may send at
	// once (GCRA's tolerance is Burst emission intervals). Default: the
	// rate's count, so "600/m" lets a fresh client spend its minute at once.
	Burst int64 `yaml:"burst,omitempty" json:"burst,omitempty"`
	// Cost is how many units one request takes. Default 1; at most Burst.
	Cost int64 `yaml:"cost,omitempty" json:"cost,omitempty"`
	// Mode overrides the stage's mode for this policy: shadow sends its
	// headers and counts its denials without denying (a way to try a new
	// limit), off disables it. Default: the stage's mode.
	Mode filters.Mode `yaml:"mode,omitempty" json:"mode,omitempty"`
	// Match restricts the policy to some requests; empty matches all.
	Match Match `yaml:"match,omitempty" json:"match,omitempty"`
	// Tiers give some clients another rate, chosen by a request header
	// that an authenticating proxy sets (e.g. a plan header). The header is
	// believed only on requests that came through a trusted L7 proxy (whose
	// client address was taken from a forwarding header, so from a peer in
	// client_ip.trusted_proxies); on any other request the policy's own rate
	// applies. That proxy must set the header on every request, overwriting
	// whatever the client sent, or clients choose their own tier.
	Tiers *Tiers `yaml:"tiers,omitempty" json:"tiers,omitempty"`
}

// Match selects requests; every field that is set must match.
type Match struct {
	// PathPrefix matches request paths that start with it ("/api/"). The
	// path is compared cleaned, as a router sees it: "//api/x" and
	// "/x/../api/x" are "/api/x"; a trailing slash is kept.
	PathPrefix string `yaml:"path_prefix,omitempty" json:"path_prefix,omitempty"`
	// Methods matches these request methods (upper case, e.g. POST).
	Methods []string `yaml:"methods,omitempty" json:"methods,omitempty"`
	// Host matches the request host, case-insensitively, with the port,
	// IPv6 brackets and a trailing dot ignored on both sides
	// ("API.example.com.:443" is "api.example.com").
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
}

// Tiers maps the value of one request header to a different limit.
type Tiers struct {
	// Header names the request header holding the tier (e.g. X-Plan). It
	// is read only from requests forwarded by a trusted proxy (see
	// Policy.Tiers), which must set or overwrite it.
	Header string `yaml:"header" json:"header"`
	// Values maps a header value (exact match) to its limit; other values
	// and a missing header use the policy's own rate and burst. All tiers
	// of a policy share one count per client, kept as time (GCRA's
	// theoretical arrival time), so switching tiers cannot multiply the
	// quota: each request spends its own tier's interval from the same
	// account. A client that moves to a tier with a shorter burst window
	// (burst × interval) first waits until its debt fits that window.
	Values map[string]TierLimit `yaml:"values" json:"values"`
}

// TierLimit is the limit of one tier.
type TierLimit struct {
	// Rate is the tier's sustained rate.
	Rate filters.Rate `yaml:"rate" json:"rate"`
	// Burst is the tier's burst; default the rate's count.
	Burst int64 `yaml:"burst,omitempty" json:"burst,omitempty"`
}

// Breaker is the circuit breaker in front of Redis.
type Breaker struct {
	// Failures is how many consecutive failed calls open the breaker.
	// Default 5.
	Failures int `yaml:"failures,omitempty" json:"failures,omitempty"`
	// Backoff is how long an open breaker sends requests to on_error before
	// one request probes Redis again. Each failed probe doubles it. Default 1s.
	Backoff filters.Duration `yaml:"backoff,omitempty" json:"backoff,omitempty"`
	// MaxBackoff caps the doubled back-off. Default 30s.
	MaxBackoff filters.Duration `yaml:"max_backoff,omitempty" json:"max_backoff,omitempty"`
}

// KeySource is one parsed entry of Config.Key.
type KeySource struct {
	// Kind is KeyHeader, KeyCookie or KeyIP.
	Kind KeyKind
	// Name is the canonical header name or the cookie name; empty for ip.
	Name string
}

func (k KeySource) String() string {
	if k.Kind == KeyIP {
		return string(KeyIP)
	}
	return string(k.Kind) + ":" + k.Name
}

// ErrKeySource is wrapped by ParseKeySource errors.
var ErrKeySource = errors.New("quota: bad key source")

// ParseKeySource parses "ip", "header:NAME", "cookie:NAME" or "jwt:CLAIM".
func ParseKeySource(s string) (KeySource, error) {
	if s == string(KeyIP) {
		return KeySource{Kind: KeyIP}, nil
	}
	text, name, ok := strings.Cut(s, ":")
	kind := KeyKind(text)
	if ok && kind == KeyJWT {
		// A claim name is any JSON object key; bound it and keep it
		// printable, as it goes to logs.
		if name == "" || len(name) > 256 || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return KeySource{}, fmt.Errorf("%w %q: the claim name must be 1 to 256 printable characters without spaces", ErrKeySource, s)
		}
		return KeySource{Kind: kind, Name: name}, nil
	}
	if !ok || (kind != KeyHeader && kind != KeyCookie) {
		return KeySource{}, fmt.Errorf("%w %q: want ip, header:NAME, cookie:NAME or jwt:CLAIM", ErrKeySource, s)
	}
	if name == "" || !httpguts.ValidHeaderFieldName(name) {
		return KeySource{}, fmt.Errorf("%w %q: %s name must be a non-empty HTTP token", ErrKeySource, s, kind)
	}
	if kind == KeyHeader {
		name = textproto.CanonicalMIMEHeaderKey(name)
	}
	return KeySource{Kind: kind, Name: name}, nil
}

// isPolicyName allows what is safe unquoted in logs and Redis keys and needs
// no escaping in a structured-field string.
func isPolicyName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// Validate checks the block without touching Redis.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, filters.FieldErrorf(field, format, args...))
	}
	if err := c.Mode.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch c.Store {
	case "", StoreMemory:
	case StoreRedis:
		if c.Redis.IsZero() {
			add("redis.addrs", "store is redis but no address is set")
		}
		errs = append(errs, filters.PrefixFields("redis", c.Redis.Validate()))
	default:
		add("store", "%q: want memory or redis", c.Store)
	}
	switch c.OnError {
	case "", OnErrorLocal, OnErrorAllow, OnErrorDeny:
	default:
		add("on_error", "%q: want local, allow or deny", c.OnError)
	}
	if c.FleetSize < 0 {
		add("fleet_size", "must not be negative")
	}
	seenKey := map[string]bool{}
	for i, s := range c.Key {
		k, err := ParseKeySource(s)
		if err != nil {
			// Wrapped, not formatted: the field error then says the
			// key's path once, without the sentinel's "quota: ".
			errs = append(errs, &filters.FieldError{Field: fmt.Sprintf("key[%d]", i), Err: err})
			continue
		}
		if k.Kind == KeyJWT && c.JWT == nil {
			add(fmt.Sprintf("key[%d]", i), "%q needs a jwt: block saying which keys sign the tokens", s)
		}
		if seenKey[k.String()] {
			add(fmt.Sprintf("key[%d]", i), "%q is listed twice", s)
		}
		seenKey[k.String()] = true
	}
	if c.JWT != nil {
		errs = append(errs, filters.PrefixFields("jwt", c.JWT.validate()))
	}
	if c.Fleet.Announce < 0 {
		add("fleet.announce", "must not be negative")
	}
	if c.Fleet.TTL < 0 {
		add("fleet.ttl", "must not be negative")
	}
	if c.Fleet.TTL > 0 && c.Fleet.TTL < c.Fleet.Announce {
		add("fleet.ttl", "%s is shorter than announce %s: nodes would drop out between announcements", c.Fleet.TTL.D(), c.Fleet.Announce.D())
	}
	if c.Fleet.Node != "" && (len(c.Fleet.Node) > 128 || strings.ContainsFunc(c.Fleet.Node, func(r rune) bool { return r <= ' ' || r == 0x7f })) {
		add("fleet.node", "%q: want 1 to 128 printable characters without spaces", c.Fleet.Node)
	}
	if strings.ContainsAny(c.KeyPrefix, "{}") {
		add("key_prefix", "must not contain { or }: they would change the Redis Cluster hash tag")
	}
	if len(c.Policies) == 0 && c.Mode != filters.ModeOff {
		add("policies", "at least one policy is needed")
	}
	seenPolicy := map[string]bool{}
	for i, p := range c.Policies {
		errs = append(errs, filters.PrefixFields(fmt.Sprintf("policies[%d]", i), p.validate()))
		if seenPolicy[p.Name] {
			add(fmt.Sprintf("policies[%d].name", i), "%q is used twice", p.Name)
		}
		seenPolicy[p.Name] = true
	}
	if c.Breaker.Failures < 0 {
		add("breaker.failures", "must not be negative")
	}
	if c.Breaker.MaxBackoff > 0 && c.Breaker.Backoff > c.Breaker.MaxBackoff {
		add("breaker.backoff", "%s exceeds max_backoff %s", c.Breaker.Backoff.D(), c.Breaker.MaxBackoff.D())
	}
	switch c.Batch {
	case "", BatchOn, BatchOff:
	default:
		add("batch", "%q: want on or off", c.Batch)
	}
	if c.LocalCacheSize < 0 {
		add("local_cache_size", "must not be negative")
	}
	if c.MaxKeys < 0 {
		add("max_keys", "must not be negative")
	}
	return errors.Join(errs...)
}

// Build makes the stage from c: New, for the stage table.
func (c Config) Build(env filters.Env) (filters.Filter, error) {
	f, err := New(c, env)
	if err != nil {
		return nil, err // not a nil *Filter inside a non-nil interface
	}
	return f, nil
}

func (p Policy) validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, filters.FieldErrorf(field, format, args...))
	}
	if !isPolicyName(p.Name) {
		add("name", "%q: want 1 to 64 letters, digits, '-', '_' or '.'", p.Name)
	}
	if p.Rate.IsZero() {
		add("rate", "is required, e.g. \"600/m\"")
	}
	if err := p.Mode.Validate(); err != nil {
		errs = append(errs, err)
	}
	if p.Cost < 0 {
		add("cost", "must not be negative")
	}
	if err := checkLimit(p.Rate, p.Burst, p.Cost); err != nil && !p.Rate.IsZero() {
		add("burst", "%v", err)
	}
	if p.Match.PathPrefix != "" && !strings.HasPrefix(p.Match.PathPrefix, "/") {
		add("match.path_prefix", "%q must start with /", p.Match.PathPrefix)
	}
	for i, m := range p.Match.Methods {
		if !httpguts.ValidHeaderFieldName(m) || strings.ToUpper(m) != m {
			add(fmt.Sprintf("match.methods[%d]", i), "%q: want an upper-case method like GET", m)
		}
	}
	if strings.ContainsAny(p.Match.Host, "/ ") {
		add("match.host", "%q is not a host name", p.Match.Host)
	}
	if t := p.Tiers; t != nil {
		if !httpguts.ValidHeaderFieldName(t.Header) {
			add("tiers.header", "%q: want a header name", t.Header)
		}
		if len(t.Values) == 0 {
			add("tiers.values", "at least one tier is needed")
		}
		for v, l := range t.Values {
			field := fmt.Sprintf("tiers.values.%s", v)
			if l.Rate.IsZero() {
				add(field+".rate", "is required")
				continue
			}
			if err := checkLimit(l.Rate, l.Burst, p.Cost); err != nil {
				add(field+".burst", "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

// checkLimit checks what the stores would refuse: a burst below the cost
// (never admitted) or a tolerance beyond a year.
func checkLimit(rate filters.Rate, burst, cost int64) error {
	if burst < 0 {
		return fmt.Errorf("must not be negative")
	}
	l := filters.LimitOf(rate, burst)
	if cost < 1 {
		cost = 1
	}
	if cost > l.Burst {
		return fmt.Errorf("%d is below the cost %d: no request could ever pass", l.Burst, cost)
	}
	if l.Burst > maxSpan/l.GCRA(usTick).Interval {
		return fmt.Errorf("burst %d at %s spans more than a year", l.Burst, rate)
	}
	return nil
}
