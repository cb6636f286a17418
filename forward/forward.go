package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/admission"
	"github.com/edgeguard/edgeguard/internal/httpkit"
	"github.com/redis/go-redis/v9"
	"golang.org/x/net/http/httpguts"
)

// Env is what the owner hands the forwarder when it builds one.
type Env struct {
	// Logger is the structured logger; nil discards.
	Logger *slog.Logger
	// Limiter is the shared store behind fleet-wide route caps (store:
	// redis, the default). Nil: there is none, and a config with such a
	// cap is refused (ErrNoFleetStore). Caps with store: memory count in
	// this process and never use it.
	Limiter RouteLimiter
	// Redis, when set, carries the fleet-wide closed switch instead of a
	// client built from Config.ClosedSwitch.Redis. The owner keeps it and
	// closes it; the forwarder only subscribes and publishes.
	Redis redis.UniversalClient
	// Clock tells the time for health and ejection decisions. Nil: time.Now.
	// (Route caps take the request's own arrival time, filters.Request.Now.)
	Clock func() time.Time
	// Previous is the forwarder this one replaces on a reload, or nil; the
	// closed routes it knew carry over. The owner closes it after the swap.
	Previous *Forwarder
	// ClientIPHeader is the header the client IP is read from
	// (client_ip.header). When it is a single-IP header other than
	// X-Real-IP (e.g. CF-Connecting-IP), the upstream gets it set to the
	// resolved client, so that a backend reading it sees what edgeguard
	// decided rather than what the client claimed. Empty, X-Forwarded-For
	// or Forwarded: nothing extra (those are always rewritten).
	ClientIPHeader string
}

// ClientAddressHeaders are the client-address headers that never reach the
// upstream as the client sent them (see httpkit.ClientAddressHeaders): the
// one named by Env.ClientIPHeader is set to the resolved client, the others
// are removed.
var ClientAddressHeaders = httpkit.ClientAddressHeaders

// route is a built Route.
type route struct {
	name     string
	host     string // filters.MatchHost form; "" any
	wildcard bool   // host is "*.suffix": match by suffix (kept with its dot)
	path     filters.PathPrefix
	pool     *pool
	gate     *admission.Gate // nil: no concurrency limit
	capOn    bool
	capKey   string
	limiter  RouteLimiter // where the cap is counted
	limit    filters.Limit
	onError  OnError
	closed   ClosedResponse

	closedHits, capRejects, capErrors atomic.Uint64
	lastCapWarn                       atomic.Int64
}

// Forwarder sends requests that passed the filter chain to their route's
// pool. It is an http.Handler, safe for concurrent use; its background work
// (health checks, the closed switch subscription) stops on Close.
type Forwarder struct {
	log    *slog.Logger
	clock  func() time.Time
	pools  []*pool // sorted by name
	byPool map[string]*pool
	routes []*route // in match order
	byName map[string]*route
	def    *route // no route matched; nil answers 404

	proxy     *httputil.ReverseProxy
	transport *http.Transport
	ppTrans   *http.Transport     // for pools with proxy_protocol; no keep-alive
	limiter   RouteLimiter        // Env.Limiter: the fleet's store, or nil
	local     *MemoryRouteLimiter // on_error: local
	closed    *closedSet
	fleet     *fleetSwitch

	ctx       context.Context // canceled by Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// clientHeader is Env.ClientIPHeader, canonical, when rewrite sets it;
	// "" otherwise.
	clientHeader string
	// send is Timeouts.Send.
	send time.Duration

	noRoute, h2cRefused atomic.Uint64
}

// New builds the forwarder for cfg and starts its health checks and the
// closed-switch subscription. cfg must have passed Validate.
func New(cfg Config, env Env) (*Forwarder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("forward: invalid config: %w", err)
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("stage", "forward")
	f := &Forwarder{
		log:     log,
		clock:   env.Clock,
		byPool:  map[string]*pool{},
		byName:  map[string]*route{},
		limiter: env.Limiter,
		local:   &MemoryRouteLimiter{},
		closed:  &closedSet{},
	}
	if f.clock == nil {
		f.clock = time.Now
	}
	if hdr := env.ClientIPHeader; hdr != "" {
		if !httpguts.ValidHeaderFieldName(hdr) {
			return nil, fmt.Errorf("forward: client IP header %q is not a valid header name", hdr)
		}
		switch hdr = http.CanonicalHeaderKey(hdr); hdr {
		case "X-Forwarded-For", "Forwarded", "X-Real-Ip":
		default:
			f.clientHeader = hdr
		}
	}
	if env.Previous != nil {
		f.closed.inherit(env.Previous.closed)
	}
	t := cfg.Timeouts
	f.send = orDur(t.Send, DefaultSend)
	dialer := &net.Dialer{Timeout: orDur(t.Dial, DefaultDialTimeout), KeepAlive: 30 * time.Second}
	f.transport = &http.Transport{
		DialContext:           dialer.DialContext,
		MaxIdleConnsPerHost:   orInt(t.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost),
		IdleConnTimeout:       orDur(t.IdleConn, DefaultIdleConnTimeout),
		ResponseHeaderTimeout: orDur(t.ResponseHeader, DefaultResponseHeaderTimeout),
		TLSHandshakeTimeout:   orDur(t.Dial, DefaultDialTimeout),
		ExpectContinueTimeout: time.Second,
	}
	f.ppTrans = f.transport.Clone()
	f.ppTrans.DisableKeepAlives = true
	f.ppTrans.DialContext = proxyProtoDialer(dialer)

	pcfgs := cfg.pools()
	names := make([]string, 0, len(pcfgs))
	for name := range pcfgs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p, err := newPool(name, pcfgs[name], log)
		if err != nil {
			return nil, fmt.Errorf("forward: building pool %q: %w", name, err)
		}
		p.transport = f.transport
		if p.proxyProto {
			p.transport = f.ppTrans
		}
		f.pools = append(f.pools, p)
		f.byPool[name] = p
	}
	for _, rc := range cfg.Routes {
		rt, err := f.buildRoute(rc)
		if err != nil {
			return nil, err
		}
		f.routes = append(f.routes, rt)
		f.byName[rt.name] = rt
	}
	if env.Previous != nil {
		f.inheritGates(env.Previous)
	}
	// Longest prefix first; at equal length a named host before a wildcard
	// before any host.
	slices.SortStableFunc(f.routes, func(a, b *route) int {
		if d := b.path.Len() - a.path.Len(); d != 0 {
			return d
		}
		return hostRank(a) - hostRank(b)
	})
	if cfg.Upstream != "" {
		f.def = &route{name: "", path: filters.NewPathPrefix("/", filters.SegmentEnd, filters.StrictSpelling),
			pool: f.byPool[DefaultPool], closed: withClosedDefaults(ClosedResponse{})}
	}

	f.proxy = &httputil.ReverseProxy{
		Rewrite:      f.rewrite,
		Transport:    &retryTransport{f: f},
		ErrorHandler: f.upstreamError,
		BufferPool:   newCopyBuffers(),
		ErrorLog:     slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	for _, p := range f.pools {
		if p.check.path != "" {
			f.startChecks(p, dialer)
		}
	}
	if err := f.startSwitch(cfg.ClosedSwitch, env.Redis); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func hostRank(r *route) int {
	switch {
	case r.host == "":
		return 2
	case r.wildcard:
		return 1
	}
	return 0
}

func withClosedDefaults(c ClosedResponse) ClosedResponse {
	if c.Status == 0 {
		c.Status = DefaultClosedStatus
	}
	if c.Body == "" {
		c.Body = DefaultClosedBody
	}
	if c.ContentType == "" {
		c.ContentType = "text/plain; charset=utf-8"
	}
	return c
}

// inheritGates takes over prev's gate for each route of the same name whose
// shield has the same shape: the requests holding or awaiting a slot under
// the old configuration count against the new one, so a reload never lets
// twice max_in_flight through. A route whose shield changed starts afresh.
func (f *Forwarder) inheritGates(prev *Forwarder) {
	for _, rt := range f.routes {
		old, ok := prev.byName[rt.name]
		if !ok || old.gate == nil || rt.gate == nil {
			continue
		}
		if old.gate.Limit() == rt.gate.Limit() && old.gate.Room() == rt.gate.Room() && old.gate.Timeout() == rt.gate.Timeout() {
			rt.gate = old.gate
		}
	}
}

func (f *Forwarder) buildRoute(rc Route) (*route, error) {
	poolName := rc.Upstream
	if poolName == "" {
		poolName = DefaultPool
	}
	spell := filters.AnySpelling
	if rc.StrictPath {
		spell = filters.StrictSpelling
	}
	rt := &route{
		name:   rc.RouteName(),
		host:   filters.MatchHost(rc.Host),
		path:   filters.NewPathPrefix(rc.prefix(), filters.SegmentEnd, spell),
		pool:   f.byPool[poolName],
		closed: withClosedDefaults(rc.Shield.Closed),
	}
	if strings.HasPrefix(rt.host, "*.") {
		rt.wildcard, rt.host = true, rt.host[1:]
	}
	s := rc.Shield
	if s.MaxInFlight > 0 {
		g, err := admission.New(s.MaxInFlight, s.Queue, orDur(s.QueueTimeout, DefaultQueueTimeout))
		if err != nil {
			return nil, fmt.Errorf("route %s: shield: %w", rt.name, err)
		}
		rt.gate = g
	}
	if !s.Cap.Rate.IsZero() {
		rt.capOn = true
		rt.capKey = "route:" + rt.name
		burst := s.Cap.Burst
		if burst == 0 {
			burst = int(min(s.Cap.Rate.Count, int64(math.MaxInt32)))
		}
		rt.limit = filters.Limit{Rate: s.Cap.Rate, Burst: int64(burst)}
		rt.onError = s.Cap.OnError
		if rt.onError == "" {
			rt.onError = OnErrorLocal
		}
		rt.limiter = f.local
		if s.Cap.Store.Fleet() {
			if f.limiter == nil {
				return nil, fmt.Errorf("%w: route %s: enable the quota stage with store: redis, or set the cap's store: memory to cap each node on its own", ErrNoFleetStore, rt.name)
			}
			rt.limiter = f.limiter
		}
	}
	return rt, nil
}

func (f *Forwarder) startSwitch(sc SwitchConfig, rdb redis.UniversalClient) error {
	var release func() error // nil: Env.Redis, the owner's to close
	if rdb == nil {
		if sc.Redis.IsZero() {
			return nil
		}
		var err error
		if rdb, release, err = switchClient(sc.Redis); err != nil {
			return err
		}
	}
	ch := sc.Channel
	if ch == "" {
		ch = DefaultSwitchChannel
	}
	f.fleet = &fleetSwitch{
		rdb: rdb, release: release, channel: ch, setKey: ch + ":set",
		resync:  orDur(sc.Resync, 10*time.Second),
		timeout: 2 * time.Second,
		local:   f.closed, log: f.log,
	}
	f.fleet.start()
	return nil
}

// ErrNoFleetStore is New's answer for a fleet-wide route cap (store:
// redis, the default) when Env.Limiter gives no shared store to count it
// in: counting it per node instead would quietly multiply it by the fleet.
var ErrNoFleetStore = errors.New("forward: a fleet-wide route cap (store: redis) has no shared store")

// ErrAmbiguousPath is Route's answer for a path whose normal form and raw
// form take different routes.
var ErrAmbiguousPath = errors.New("forward: ambiguous request path")

// Route returns the name of the route r takes, or "" for the default route
// (the upstream shorthand), so the owner can pick per-route stage settings
// before the chain runs and put the name in filters.Request.Route.
//
// The path is matched in its normal form (filters.MatchPath), as most
// backends serve it: "/checkout;jsessionid=1" takes the /checkout route.
// Unless a route sets strict_path, it also takes the spellings of its path
// that common backends serve as the same resource (filters.PathPrefix):
// "/CHECKOUT", "/checkout.json", "/checkout%20". A
// path whose raw form ("//checkout", "/static/../checkout",
// "/admin/..%2Fupload") would take another route than its normal form is
// refused with ErrAmbiguousPath: a backend that normalises serves it as
// one route and one that does not as the other, so neither route's shield
// or stage settings could be trusted to apply.
func (f *Forwarder) Route(r *http.Request) (string, error) {
	rt, err := f.route(r)
	if rt == nil {
		return "", err
	}
	return rt.name, err
}

func (f *Forwarder) route(r *http.Request) (*route, error) {
	host := filters.MatchHost(r.Host)
	clean := filters.MatchPath(r.URL.Path)
	rt := f.lookup(host, clean)
	if raw := rawForm(r.URL); raw != clean && strings.HasPrefix(raw, "/") && f.lookup(host, raw) != rt {
		return rt, ErrAmbiguousPath
	}
	return rt, nil
}

// rawForm is the path as a backend that resolves nothing would route it:
// as sent (decoded, unless the client escaped something, such as a "/",
// that decoding would change), less the path parameters that even such
// backends ignore.
func rawForm(u *url.URL) string {
	p := u.Path
	if u.RawPath != "" {
		p = u.RawPath
	}
	return filters.StripPathParams(p)
}

func (f *Forwarder) lookup(host, p string) *route {
	for _, rt := range f.routes {
		if rt.matchHost(host) && rt.path.Covers(p) {
			return rt
		}
	}
	return f.def
}

// matchHost reports whether host (in filters.MatchHost form) is r's.
func (r *route) matchHost(host string) bool {
	switch {
	case r.host == "":
		return true
	case r.wildcard:
		return len(host) > len(r.host) && strings.HasSuffix(host, r.host)
	}
	return host == r.host
}

// attempt is the forwarder's per-request state, carried to the Rewrite and
// the transport through the outbound request's context.
type attempt struct {
	fr    *filters.Request
	route *route
	pool  *pool
	first *backend
	local net.Addr // the listener address the client reached
	tried [4]*backend
	n     int
	send  sendWriter // the client's writer, in the same allocation
}

type attemptKey struct{}

func attemptFrom(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// ServeHTTP forwards r. The chain's view of the request comes from
// r.Context() (filters.FromContext); without one (the forwarder used on its
// own) the TCP peer is taken as the client and a request id is made up.
func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fr := filters.FromContext(r.Context())
	if fr == nil {
		fr = standalone(r)
	}
	f.Forward(w, r, fr)
}

// Forward forwards r, of which fr is the chain's view. The root package
// calls it directly, sparing a context layer and a copy of r per request.
func (f *Forwarder) Forward(w http.ResponseWriter, r *http.Request, fr *filters.Request) {
	if h := w.Header(); fr.ID != "" && h.Get("X-Request-Id") != fr.ID {
		h.Set("X-Request-Id", fr.ID)
	}
	if upgradesToH2C(r.Header) {
		// A backend that accepted it would turn the connection into an
		// HTTP/2 tunnel whose requests no stage ever sees. Clients offer
		// it on plain requests (curl --http2): drop the offer and serve
		// the request as HTTP/1.1.
		f.h2cRefused.Add(1)
		r.Header.Del("Upgrade")
		r.Header.Del("Http2-Settings")
	}
	var rt *route
	if fr.Route != "" {
		rt = f.byName[fr.Route]
	}
	if rt == nil {
		var err error
		if rt, err = f.route(r); err != nil {
			refuse(w, fr, http.StatusBadRequest, 0, "ambiguous path")
			return
		}
	}
	if rt == nil {
		f.noRoute.Add(1)
		refuse(w, fr, http.StatusNotFound, 0, "no route")
		return
	}
	if f.closed.isClosed(rt.name) {
		rt.closedHits.Add(1)
		c := rt.closed
		h := w.Header()
		h.Set("Content-Type", c.ContentType)
		h.Set("Cache-Control", "no-store")
		if c.RetryAfter > 0 {
			h.Set("Retry-After", httpkit.RetryAfter(c.RetryAfter.D()))
		}
		w.WriteHeader(c.Status)
		io.WriteString(w, c.Body)
		return
	}
	if rt.capOn {
		if ok, wait := f.capAllows(r.Context(), rt, fr); !ok {
			refuse(w, fr, http.StatusServiceUnavailable, wait, "route at capacity")
			return
		}
	}
	if rt.gate != nil {
		if err := rt.gate.Acquire(r.Context()); err != nil {
			refuse(w, fr, http.StatusServiceUnavailable, rt.gate.Timeout(), "route at capacity")
			return
		}
		defer rt.gate.Release()
	}
	p := rt.pool
	now := f.clock()
	b := p.pick(now.UnixNano(), fr.Key, nil)
	if b == nil {
		p.unavailable.Add(1)
		refuse(w, fr, http.StatusServiceUnavailable, p.retryAfter(now), "no healthy backend")
		return
	}
	fr.Pool, fr.Upstream = p.name, b.host // for the access log and metrics
	a := &attempt{fr: fr, route: rt, pool: p, first: b}
	a.local, _ = r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	a.send = newSendWriter(w, f.send)
	f.proxy.ServeHTTP(&a.send, r.WithContext(context.WithValue(r.Context(), attemptKey{}, a)))
}

// upgradesToH2C reports whether any Upgrade header line names h2c (case
// insensitive, with or without a version).
func upgradesToH2C(h http.Header) bool {
	for _, v := range h.Values("Upgrade") {
		for tok := range strings.SplitSeq(v, ",") {
			name, _, _ := strings.Cut(strings.TrimSpace(tok), "/")
			if strings.EqualFold(strings.TrimSpace(name), "h2c") {
				return true
			}
		}
	}
	return false
}

// capAllows asks the route cap, applying the route's on_error when the store
// fails.
func (f *Forwarder) capAllows(ctx context.Context, rt *route, fr *filters.Request) (bool, time.Duration) {
	now := fr.Now
	if now.IsZero() {
		now = f.clock()
	}
	d, err := rt.limiter.AllowRoute(ctx, rt.capKey, rt.limit, now)
	if err != nil {
		rt.capErrors.Add(1)
		// One warning a second per route: an outage must not flood the log.
		if last := rt.lastCapWarn.Load(); now.UnixNano()-last > int64(time.Second) && rt.lastCapWarn.CompareAndSwap(last, now.UnixNano()) {
			f.log.Warn("route cap store failed", "route", rt.name, "on_error", rt.onError, "err", err)
		}
		switch rt.onError {
		case OnErrorAllow:
			return true, 0
		case OnErrorDeny:
			rt.capRejects.Add(1)
			return false, time.Second
		}
		d, _ = f.local.AllowRoute(ctx, rt.capKey, rt.limit, now)
	}
	if !d.Allowed {
		rt.capRejects.Add(1)
		return false, d.RetryAfter
	}
	return true, 0
}

// rewrite builds the outbound request. ReverseProxy has already removed
// hop-by-hop headers, Forwarded and X-Forwarded-For/-Host/-Proto;
// X-Real-IP, the configured client IP header and X-Request-Id are set (or
// removed) here, and ClientAddressHeaders removed, so that nothing the
// client sent passes under our names or a name a backend may trust.
func (f *Forwarder) rewrite(pr *httputil.ProxyRequest) {
	a := attemptFrom(pr.In.Context())
	out := pr.Out
	out.URL.Scheme, out.URL.Host = a.first.url.Scheme, a.first.host
	if !a.pool.preserveHost {
		out.Host = ""
	}
	h := out.Header
	fr := a.fr
	httpkit.StripClientAddress(h)
	// The values set here share one array (one allocation instead of one
	// per header); each is capped at its own element, so an append made
	// to one later copies it rather than overwrite its neighbour.
	vals := make([]string, 0, 6)
	set := func(name, value string) {
		vals = append(vals, value)
		h[name] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if fr.Client.IsValid() {
		client := fr.Client.String()
		set("X-Real-Ip", client)
		if f.clientHeader != "" {
			set(f.clientHeader, client)
		}
	} else {
		delete(h, "X-Real-Ip")
		if f.clientHeader != "" {
			delete(h, f.clientHeader)
		}
	}
	switch {
	case fr.ForwardedFor != "":
		set("X-Forwarded-For", fr.ForwardedFor)
	case fr.Client.IsValid():
		set("X-Forwarded-For", fr.Client.String())
	}
	proto := "http"
	if pr.In.TLS != nil {
		proto = "https"
	}
	set("X-Forwarded-Proto", proto)
	set("X-Forwarded-Host", pr.In.Host)
	if fr.ID != "" {
		set("X-Request-Id", fr.ID)
	} else {
		delete(h, "X-Request-Id")
	}
}

// upstreamError answers a request that no backend could serve: 502 with the
// request id, one log line.
func (f *Forwarder) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	a := attemptFrom(r.Context())
	if r.Context().Err() != nil {
		// The client went away; there is nobody to answer and nothing
		// wrong upstream.
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	a.pool.errors.Add(1)
	f.log.Warn("upstream request failed", "route", a.route.name, "pool", a.pool.name,
		"request_id", a.fr.ID, "attempts", a.n+1, "err", err)
	refuse(w, a.fr, http.StatusBadGateway, 0, "upstream unavailable")
}

// refuse writes a short plain-text answer naming the request id.
func refuse(w http.ResponseWriter, fr *filters.Request, status int, retryAfter time.Duration, msg string) {
	httpkit.WriteRefusal(w, status, retryAfter, "edgeguard: "+msg+" (request id "+fr.ID+")\n")
}

// standalone builds the chain's view of a request that did not pass one.
func standalone(r *http.Request) *filters.Request {
	fr := &filters.Request{HTTP: r, Now: time.Now()}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		fr.Peer = ap
		fr.Client, fr.ClientPort = ap.Addr().Unmap(), ap.Port()
		fr.Key = filters.KeyOf(fr.Client, 64)
		fr.ForwardedFor = fr.Client.String()
	}
	fr.ID = httpkit.NewRequestID()
	return fr
}

// Close stops health checks and the closed-switch subscription and drops
// idle backend connections. In-flight requests finish.
func (f *Forwarder) Close() error {
	f.closeOnce.Do(func() {
		f.cancel()
		if f.fleet != nil {
			f.closeErr = f.fleet.close()
		}
		f.wg.Wait()
		f.transport.CloseIdleConnections()
	})
	return f.closeErr
}

var _ http.Handler = (*Forwarder)(nil)
var _ filters.Closer = (*Forwarder)(nil)
var _ RouteLimiter = (*MemoryRouteLimiter)(nil)
