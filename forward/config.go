package forward

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/redisconf"
)

// DefaultPool is the name the one-pool shorthand `upstream:` gets, and the
// pool a route without `upstream` forwards to.
const DefaultPool = "default"

// Balance policies a pool may name.
const (
	RoundRobin       = "round_robin"
	LeastOutstanding = "least_outstanding"
	ConsistentHash   = "consistent_hash"
)

// Defaults applied to zero values; each is documented on its field.
const (
	DefaultDialTimeout           = 2 * time.Second
	DefaultResponseHeaderTimeout = 30 * time.Second
	DefaultIdleConnTimeout       = 90 * time.Second
	DefaultMaxIdleConnsPerHost   = 64
	DefaultSend                  = 30 * time.Second
	DefaultCheckInterval         = 5 * time.Second
	DefaultCheckTimeout          = time.Second
	DefaultHealthyThreshold      = 2
	DefaultUnhealthyThreshold    = 3
	DefaultOutlierFailures       = 5
	DefaultOutlierWindow         = 10 * time.Second
	DefaultEjection              = 5 * time.Second
	DefaultMaxEjection           = 5 * time.Minute
	DefaultMaxEjectionPercent    = 50
	DefaultPanicThreshold        = 50
	DefaultRetryAttempts         = 2
	DefaultQueueTimeout          = 2 * time.Second
	DefaultClosedStatus          = http.StatusServiceUnavailable
	DefaultClosedBody            = "This offer is closed.\n"
	DefaultSwitchChannel         = "edgeguard:routes:closed"
)

// Config holds the forwarding keys of the config file, all at the top level:
// `upstream`, `upstreams`, `routes`, `timeouts` and `closed_switch`.
type Config struct {
	// Upstream is the one-pool shorthand: a single backend URL such as
	// "http://127.0.0.1:9000". It becomes the pool named "default", which
	// serves every request no route matches. It may be combined with
	// `upstreams` and `routes`, but not with an `upstreams` entry named
	// "default".
	Upstream string `yaml:"upstream" json:"upstream"`
	// Upstreams are the named pools of backends routes forward to.
	Upstreams map[string]Pool `yaml:"upstreams" json:"upstreams"`
	// Routes send requests to pools by host and path prefix; the longest
	// matching prefix wins, and a route naming a host beats one that does
	// not at equal length. A request no route matches goes to the default
	// route: the `upstream` shorthand, or, without it, it is answered 404.
	// A route with path "/" and no host is a catch-all.
	Routes []Route `yaml:"routes" json:"routes"`
	// Timeouts bound the upstream side of every request.
	Timeouts Timeouts `yaml:"timeouts" json:"timeouts"`
	// ClosedSwitch makes the sold-out switch of the admin API fleet-wide
	// through Redis. Without it, closing a route affects this node only.
	ClosedSwitch SwitchConfig `yaml:"closed_switch" json:"closed_switch"`
}

// Pool is a named set of interchangeable backends.
type Pool struct {
	// Backends are the backend base URLs, "http://host:port" or
	// "https://host:port", without path, query or user info. At least one.
	Backends []string `yaml:"backends" json:"backends"`
	// Balance picks the backend for each request: round_robin (the default)
	// takes them in turn, each in proportion to its weight, spread evenly
	// (smooth weighted round robin: weights 5, 1, 1 give a a b a c a a, not
	// a a a a a b c); least_outstanding takes the one with the fewest
	// requests in flight, so a slow backend gets less traffic;
	// consistent_hash keeps each client (its client key) on one backend, and
	// a backend leaving moves only its own share of clients.
	Balance string `yaml:"balance" json:"balance"`
	// Weights gives backends of a round_robin pool a share other than 1,
	// keyed by the backend URL as listed in Backends: {"http://10.0.0.5:8080":
	// 3} sends that backend three requests for each one of the others.
	// Weights are 1 to 1000; a backend left out has weight 1. A backend that
	// is out (ejected, down) is skipped and its share is spread over the
	// others by their weights.
	Weights map[string]int `yaml:"weights" json:"weights"`
	// HealthCheck turns on active checks. Off when its path is empty.
	HealthCheck HealthCheck `yaml:"health_check" json:"health_check"`
	// Outlier is the passive ejection of backends that fail real requests.
	// It is always on, with the defaults documented on its fields.
	Outlier Outlier `yaml:"outlier" json:"outlier"`
	// Retry says when a failed request is tried again on another backend.
	Retry Retry `yaml:"retry" json:"retry"`
	// ProxyProtocol, when true, opens every backend connection with a PROXY
	// protocol v2 header carrying the resolved client address. Connections
	// then carry one client each, so keep-alive reuse is off for the pool:
	// turn it on only for backends that read the header.
	ProxyProtocol bool `yaml:"proxy_protocol" json:"proxy_protocol"`
	// PreserveHost, when true, sends the client's Host header to the
	// backend; by default the backend's own host:port is sent (the original
	// host is always in X-Forwarded-Host).
	PreserveHost bool `yaml:"preserve_host" json:"preserve_host"`
}

// HealthCheck is an active check: a GET of Path on every backend each
// Interval; a backend is marked down after UnhealthyThreshold failures in a
// row and up again after HealthyThreshold successes in a row. A 2xx or 3xx
// answer within Timeout is a success.
type HealthCheck struct {
	// Path is requested on each backend, e.g. "/healthz". Empty: no checks.
	Path string `yaml:"path" json:"path"`
	// Interval between two checks of one backend. Default 5s.
	Interval filters.Duration `yaml:"interval" json:"interval"`
	// Timeout of one check. Default 1s; must be below Interval.
	Timeout filters.Duration `yaml:"timeout" json:"timeout"`
	// HealthyThreshold is the number of successes in a row that bring a
	// down (or ejected) backend back. Default 2.
	HealthyThreshold int `yaml:"healthy_threshold" json:"healthy_threshold"`
	// UnhealthyThreshold is the number of failures in a row that take a
	// backend down. Default 3.
	UnhealthyThreshold int `yaml:"unhealthy_threshold" json:"unhealthy_threshold"`
}

// Outlier is passive ejection: a backend whose real requests fail
// Failures times in a row, all within Window, is taken out of the pool for
// an ejection time that starts at Ejection and doubles with each ejection in
// a row, up to MaxEjection. A request that does not fail resets the run.
//
// A failure is what the backend is to blame for: a connection that could
// not be made, a timeout, a connection the backend dropped, or an answer
// whose status is in Statuses. Errors caused by the client (it went away,
// its request body broke off) never count. Because the requests are the
// clients', ejection is capped (MaxEjectionPercent) and a pool with too few
// backends left stops honouring it (PanicThreshold): see RATIONALE.md.
type Outlier struct {
	// Failures in a row that eject a backend. Default 5.
	Failures int `yaml:"failures" json:"failures"`
	// Window the failures must fall within. Default 10s.
	Window filters.Duration `yaml:"window" json:"window"`
	// Ejection is the first ejection time. Default 5s.
	Ejection filters.Duration `yaml:"ejection" json:"ejection"`
	// MaxEjection caps the growing ejection time. Default 5m.
	MaxEjection filters.Duration `yaml:"max_ejection" json:"max_ejection"`
	// Statuses are the answer statuses that count as failures, each 500 to
	// 599. Default [502, 503, 504]: the gateway failures that say the
	// backend (or what stands behind it) is unwell. A 500 is left out by
	// default because an application answers 500 to requests it cannot
	// handle, and any client can send those.
	Statuses []int `yaml:"statuses" json:"statuses"`
	// MaxEjectionPercent is the largest share of the pool's backends that
	// may be out at once for an ejection to happen: a backend is not
	// ejected when that would leave more than this percentage of the pool
	// ejected or down. Whatever its value, passive ejection never takes
	// out the last available backend, so a one-backend pool is never
	// ejected. 0 to 100; default 50.
	MaxEjectionPercent *int `yaml:"max_ejection_percent" json:"max_ejection_percent"`
	// PanicThreshold is the percentage of the pool's backends that must be
	// available (not ejected, not down) for ejections to be honoured:
	// below it a pick ignores passive ejection and takes any backend that
	// passes its active checks, so that a burst of failures degrades the
	// pool rather than turning every request into a 503. 0 turns panic
	// mode off. 0 to 100; default 50.
	PanicThreshold *int `yaml:"panic_threshold" json:"panic_threshold"`
}

// Retry says how often a request may be tried. A request that failed to
// connect (nothing was sent) is always retried on another backend while
// attempts remain. Request bodies are streamed, never buffered, so a request
// whose body was read is never replayed.
type Retry struct {
	// Attempts is the total number of tries, the first included. Default 2;
	// 1 turns retries off.
	Attempts int `yaml:"attempts" json:"attempts"`
	// Idempotent allows retrying a request that reached a backend and then
	// failed (connection reset, no answer) when its method is idempotent
	// (GET, HEAD, OPTIONS, TRACE, PUT, DELETE) and it has no body.
	// Off by default: a backend may have acted on it.
	Idempotent bool `yaml:"idempotent" json:"idempotent"`
}

// Route sends matching requests to a pool.
type Route struct {
	// Name identifies the route in logs, metrics, per-route stage settings
	// and the admin API (/v1/routes/{name}/closed). Default: the host and
	// path, e.g. "/checkout" or "shop.example.com/cart". Names are unique.
	Name string `yaml:"name" json:"name"`
	// Host restricts the route to one Host header (case-insensitive, port
	// ignored); "*.example.com" matches any subdomain. Empty: any host.
	Host string `yaml:"host" json:"host"`
	// Path is the path prefix, starting with "/". It matches whole
	// segments: "/checkout" matches "/checkout" and "/checkout/pay" but not
	// "/checkouts" (and, unless StrictPath, "/Checkout.json"). Default "/".
	Path string `yaml:"path" json:"path"`
	// StrictPath, when true, matches Path only as written (in normal form,
	// see filters.MatchPath). By default a route also takes the spellings
	// of its path that common backends serve as the same resource: case
	// variants ("/CHECKOUT": ASP.NET, IIS, Express), a format suffix
	// ("/checkout.json": Rails) and trailing whitespace or dots
	// ("/checkout%20"), so that the route's shield and stage settings
	// cannot be dodged by spelling. Set it only for a backend that serves
	// those spellings as other resources.
	StrictPath bool `yaml:"strict_path" json:"strict_path"`
	// Upstream names the pool in `upstreams`. Empty: the `upstream`
	// shorthand's pool.
	Upstream string `yaml:"upstream" json:"upstream"`
	// Shield protects the route as a whole during traffic spikes. Off
	// unless one of its parts is set.
	Shield Shield `yaml:"shield" json:"shield"`
}

// Shield is the per-route traffic shield for flash sales.
type Shield struct {
	// MaxInFlight is the most requests of this route in flight to its pool
	// at once; 0 means no limit.
	MaxInFlight int `yaml:"max_in_flight" json:"max_in_flight"`
	// Queue is the size of the waiting room: up to this many requests wait,
	// first in first out, for a free slot when MaxInFlight are in flight.
	// Beyond it requests are answered 503 with Retry-After at once. 0: no
	// waiting room. Needs MaxInFlight.
	Queue int `yaml:"queue" json:"queue"`
	// QueueTimeout is the longest a request waits in the waiting room
	// before it is answered 503. Default 2s.
	QueueTimeout filters.Duration `yaml:"queue_timeout" json:"queue_timeout"`
	// Cap is a fleet-wide limit on the route's request rate, shared by every
	// edge node. Off when its rate is unset.
	Cap Cap `yaml:"cap" json:"cap"`
	// Closed is what a closed route answers (see the admin API).
	Closed ClosedResponse `yaml:"closed" json:"closed"`
}

// Cap is a GCRA limit on a route as a whole (the key is the route, not the
// client), kept in the shared store so that every node counts against it.
type Cap struct {
	// Rate is the sustained rate, like "2000/s". Unset: no cap.
	Rate filters.Rate `yaml:"rate" json:"rate"`
	// Burst is how many requests an idle route admits at the same instant
	// before the rate paces them. Default: the rate's count ("2000/s" lets
	// 2000 through at once).
	Burst int `yaml:"burst" json:"burst"`
	// Store is where the cap is counted. redis (the default) counts it in
	// the quota stage's Redis store, shared by every node, so the cap holds
	// for the fleet as a whole; it needs the quota stage in the chain, not
	// off, with store: redis, and a config without one is refused rather
	// than left to cap each node on its own. memory counts it in this
	// node's memory: each node admits the full rate, which is what a single
	// node (or a cap meant per node) wants.
	Store CapStore `yaml:"store" json:"store"`
	// OnError is what happens when the store cannot answer: local (the
	// default) enforces the cap in this node's memory, so during an outage
	// the fleet may pass up to one cap per node; allow lets requests pass;
	// deny answers 503.
	OnError OnError `yaml:"on_error" json:"on_error"`
}

// CapStore is where a route cap is counted: the value of Cap.Store.
type CapStore string

// Cap stores. Empty means CapStoreRedis.
const (
	CapStoreRedis  CapStore = "redis"
	CapStoreMemory CapStore = "memory"
)

// Fleet reports whether s counts the cap for the whole fleet, in the quota
// stage's shared store.
func (s CapStore) Fleet() bool { return s != CapStoreMemory }

// Validate checks s as the store field of a cap: nil for redis, memory and
// empty (redis), a *filters.FieldError for "store" otherwise.
func (s CapStore) Validate() error {
	switch s {
	case "", CapStoreRedis, CapStoreMemory:
		return nil
	}
	return filters.FieldErrorf("store", "%q: want redis or memory", string(s))
}

// OnError is what a capped request gets while the cap's store fails: the
// value of Cap.OnError.
type OnError string

// On-error modes of the route cap. Empty means OnErrorLocal.
const (
	OnErrorLocal OnError = "local"
	OnErrorAllow OnError = "allow"
	OnErrorDeny  OnError = "deny"
)

// Validate checks o as the on_error field of a cap: nil for local, allow,
// deny and empty (local), a *filters.FieldError for "on_error" otherwise.
func (o OnError) Validate() error {
	switch o {
	case "", OnErrorLocal, OnErrorAllow, OnErrorDeny:
		return nil
	}
	return filters.FieldErrorf("on_error", "%q: want local, allow or deny", string(o))
}

// ClosedResponse is the answer of a closed (sold-out) route.
type ClosedResponse struct {
	// Status of the answer. Default 503.
	Status int `yaml:"status" json:"status"`
	// Body of the answer. Default "This offer is closed.".
	Body string `yaml:"body" json:"body"`
	// ContentType of the body. Default "text/plain; charset=utf-8".
	ContentType string `yaml:"content_type" json:"content_type"`
	// RetryAfter, when set, is sent as Retry-After.
	RetryAfter filters.Duration `yaml:"retry_after" json:"retry_after"`
}

// SwitchConfig makes the closed switch fleet-wide: closed routes are kept in
// a Redis set and changes are announced on a pub/sub channel; every node
// keeps a local copy, so a closed route costs no Redis call.
type SwitchConfig struct {
	// Redis is where the switch lives. Empty: the switch is local.
	Redis redisconf.Config `yaml:"redis" json:"redis"`
	// Channel is the pub/sub channel; the set of closed routes is kept
	// under the same name with ":set" appended. Default
	// "edgeguard:routes:closed".
	Channel string `yaml:"channel" json:"channel"`
	// Resync is how often the full set is read again, to heal messages lost
	// while a node was disconnected. Default 10s.
	Resync filters.Duration `yaml:"resync" json:"resync"`
}

// Timeouts bound the upstream side of a request.
type Timeouts struct {
	// Dial bounds connecting to a backend. Default 2s.
	Dial filters.Duration `yaml:"dial" json:"dial"`
	// ResponseHeader bounds the wait for a backend's response headers after
	// the request was sent. Default 30s.
	ResponseHeader filters.Duration `yaml:"response_header" json:"response_header"`
	// IdleConn is how long an idle keep-alive connection to a backend is
	// kept. Default 90s.
	IdleConn filters.Duration `yaml:"idle_conn" json:"idle_conn"`
	// MaxIdleConnsPerHost is the number of idle keep-alive connections kept
	// per backend. Default 64.
	MaxIdleConnsPerHost int `yaml:"max_idle_conns_per_host" json:"max_idle_conns_per_host"`
	// Send bounds each write of a forwarded response to the client: a
	// write (up to 32 KiB) that does not complete within it ends the
	// response, and with it the request's hold on its route's in-flight
	// slot and on its backend connection. A slot measures work at the
	// backend; a client that stops reading must not keep it. It is a time
	// without progress, not a total: a large download at a steady pace is
	// never cut. Default 30s.
	Send filters.Duration `yaml:"send" json:"send"`
}

func orDur(d filters.Duration, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d.D()
}

func orInt(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// RouteName is the name a route goes by: its own, or host+path.
func (r Route) RouteName() string {
	if r.Name != "" {
		return r.Name
	}
	return strings.ToLower(r.Host) + r.prefix()
}

func (r Route) prefix() string {
	if r.Path == "" {
		return "/"
	}
	return r.Path
}

// pools returns the configured pools with the shorthand folded in.
func (c Config) pools() map[string]Pool {
	out := make(map[string]Pool, len(c.Upstreams)+1)
	for name, p := range c.Upstreams {
		out[name] = p
	}
	if c.Upstream != "" {
		out[DefaultPool] = Pool{Backends: []string{c.Upstream}}
	}
	return out
}

// Validate checks the forwarding settings without touching the network.
// Field paths are relative to the top of the config file.
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, filters.FieldErrorf(field, format, args...))
	}
	if c.Upstream == "" && len(c.Upstreams) == 0 {
		add("upstream", "set upstream (one backend URL) or upstreams (named pools)")
	}
	if c.Upstream != "" {
		if _, err := parseBackend(c.Upstream); err != nil {
			add("upstream", "%v", err)
		}
		if _, ok := c.Upstreams[DefaultPool]; ok {
			add("upstreams."+DefaultPool, "the name %q is taken by the upstream shorthand", DefaultPool)
		}
	}
	names := make([]string, 0, len(c.Upstreams))
	for name := range c.Upstreams {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		errs = append(errs, c.Upstreams[name].validate("upstreams."+name))
	}
	seen := make(map[string]int, len(c.Routes))
	for i, r := range c.Routes {
		field := fmt.Sprintf("routes[%d]", i)
		errs = append(errs, r.validate(field, c))
		name := r.RouteName()
		if j, dup := seen[name]; dup {
			add(field+".name", "route name %q is used by routes[%d] too", name, j)
		} else {
			seen[name] = i
		}
	}
	t := c.Timeouts
	if t.MaxIdleConnsPerHost < 0 {
		add("timeouts.max_idle_conns_per_host", "must not be negative")
	}
	if t.Send < 0 {
		add("timeouts.send", "must not be negative")
	}
	if err := c.ClosedSwitch.Redis.Validate(); err != nil {
		errs = append(errs, filters.PrefixFields("closed_switch.redis", err))
	}
	return errors.Join(errs...)
}

func (p Pool) validate(field string) error {
	var errs []error
	add := func(sub, format string, args ...any) {
		errs = append(errs, filters.FieldErrorf(field+sub, format, args...))
	}
	if len(p.Backends) == 0 {
		add(".backends", "a pool needs at least one backend")
	}
	seen := make(map[string]bool, len(p.Backends))
	for i, b := range p.Backends {
		u, err := parseBackend(b)
		if err != nil {
			add(fmt.Sprintf(".backends[%d]", i), "%v", err)
			continue
		}
		if seen[u.Host] {
			add(fmt.Sprintf(".backends[%d]", i), "%s is listed twice", u.Host)
		}
		seen[u.Host] = true
	}
	if len(p.Backends) > maxBackends {
		add(".backends", "at most %d backends per pool", maxBackends)
	}
	switch p.Balance {
	case "", RoundRobin, LeastOutstanding, ConsistentHash:
	default:
		add(".balance", "%q: want round_robin, least_outstanding or consistent_hash", p.Balance)
	}
	hc := p.HealthCheck
	if hc.Path != "" {
		if !strings.HasPrefix(hc.Path, "/") {
			add(".health_check.path", "%q must start with /", hc.Path)
		}
		if orDur(hc.Timeout, DefaultCheckTimeout) >= orDur(hc.Interval, DefaultCheckInterval) {
			add(".health_check.timeout", "must be shorter than the interval")
		}
	}
	if hc.HealthyThreshold < 0 {
		add(".health_check.healthy_threshold", "must not be negative")
	}
	if hc.UnhealthyThreshold < 0 {
		add(".health_check.unhealthy_threshold", "must not be negative")
	}
	for u, w := range p.Weights {
		if !slices.Contains(p.Backends, u) {
			add(".weights", "%q is not one of the pool's backends (write it as listed there)", u)
		}
		if w < 1 || w > maxWeight {
			add(".weights", "%q: weight %d, want 1 to %d", u, w, maxWeight)
		}
	}
	if len(p.Weights) > 0 && p.Balance != "" && p.Balance != RoundRobin {
		add(".weights", "weights apply to round_robin only, not %s", p.Balance)
	}
	o := p.Outlier
	if o.Failures < 0 {
		add(".outlier.failures", "must not be negative")
	}
	for i, st := range o.Statuses {
		if st < 500 || st > 599 {
			add(fmt.Sprintf(".outlier.statuses[%d]", i), "%d: want a 5xx status (a 4xx is the client's doing)", st)
		}
	}
	if v := o.MaxEjectionPercent; v != nil && (*v < 0 || *v > 100) {
		add(".outlier.max_ejection_percent", "%d: want 0 to 100", *v)
	}
	if v := o.PanicThreshold; v != nil && (*v < 0 || *v > 100) {
		add(".outlier.panic_threshold", "%d: want 0 to 100", *v)
	}
	if orDur(o.MaxEjection, DefaultMaxEjection) < orDur(o.Ejection, DefaultEjection) {
		add(".outlier.max_ejection", "must not be shorter than ejection")
	}
	if p.Retry.Attempts < 0 {
		add(".retry.attempts", "must not be negative")
	}
	return errors.Join(errs...)
}

func (r Route) validate(field string, c Config) error {
	var errs []error
	add := func(sub, format string, args ...any) {
		errs = append(errs, filters.FieldErrorf(field+sub, format, args...))
	}
	if r.Path != "" && !strings.HasPrefix(r.Path, "/") {
		add(".path", "%q must start with /", r.Path)
	}
	if strings.ContainsAny(r.Host, "/ ") {
		add(".host", "%q is not a host name", r.Host)
	}
	switch {
	case r.Upstream == "" && c.Upstream == "":
		add(".upstream", "name a pool from upstreams (there is no upstream shorthand to default to)")
	case r.Upstream != "" && r.Upstream != DefaultPool:
		if _, ok := c.Upstreams[r.Upstream]; !ok {
			add(".upstream", "no pool named %q in upstreams", r.Upstream)
		}
	case r.Upstream == DefaultPool && c.Upstream == "":
		if _, ok := c.Upstreams[DefaultPool]; !ok {
			add(".upstream", "no pool named %q in upstreams", r.Upstream)
		}
	}
	s := r.Shield
	if s.MaxInFlight < 0 {
		add(".shield.max_in_flight", "must not be negative")
	}
	if s.Queue < 0 {
		add(".shield.queue", "must not be negative")
	}
	if s.Queue > 0 && s.MaxInFlight == 0 {
		add(".shield.queue", "a waiting room needs max_in_flight")
	}
	if s.Cap.Burst < 0 {
		add(".shield.cap.burst", "must not be negative")
	}
	if err := s.Cap.OnError.Validate(); err != nil {
		errs = append(errs, filters.PrefixFields(field+".shield.cap", err))
	}
	if err := s.Cap.Store.Validate(); err != nil {
		errs = append(errs, filters.PrefixFields(field+".shield.cap", err))
	}
	if st := s.Closed.Status; st != 0 && (st < 200 || st > 599) {
		add(".shield.closed.status", "%d is not a final HTTP status", st)
	}
	return errors.Join(errs...)
}

// maxWeight bounds a backend's weight, so that a pool's total weight stays
// far inside an int64 however long the process runs.
const maxWeight = 1000

// maxBackends bounds a pool so a backend index fits the hash ring's entries.
const maxBackends = 1024

// parseBackend checks one backend URL and returns it reduced to scheme and
// host.
func parseBackend(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("backend %q: scheme must be http or https", raw)
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("backend %q: want scheme://host:port only, without user, path or query", raw)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, fmt.Errorf("backend %q: want an explicit host:port: %w", raw, err)
	}
	if host == "" || port == "" {
		return nil, fmt.Errorf("backend %q: want an explicit host:port", raw)
	}
	out := &url.URL{Scheme: u.Scheme, Host: u.Host}
	// url.Parse takes bytes in an IPv6 zone that its own String escapes
	// into something it then refuses ("[::%25\xc9]" becomes "%C9"): a
	// host must read back as itself, or requests could not name it.
	if again, err := url.Parse(out.String()); err != nil || again.Host != out.Host {
		return nil, fmt.Errorf("backend %q: the host does not read back as itself once written out", raw)
	}
	return out, nil
}
