package edgeguard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/quota"
	"github.com/edgeguard/edgeguard/filters/reputation"
	"github.com/edgeguard/edgeguard/forward"
	"github.com/edgeguard/edgeguard/internal/bodymem"
	"github.com/edgeguard/edgeguard/internal/httpkit"
	"github.com/edgeguard/edgeguard/ipparse"
)

// Guard is one built configuration: the client-IP resolver, the chain of
// stages and the forwarder. It is immutable; a reload builds a new Guard
// (handing it the old one, so stages keep their state) and swaps it in.
type Guard struct {
	cfg      *config.Config
	log      *slog.Logger
	access   *accessLog // nil: no access line
	resolver *ipparse.Resolver
	chain    *filters.Chain
	stages   []routeStage              // every stage instance built; route "" is the shared chain's
	chains   map[string]*filters.Chain // chains of routes with stage settings of their own
	forward  *forward.Forwarder
	metrics  *Metrics

	reputation  *reputation.Filter   // the ban API's
	quota       *quota.Filter        // lends its store to the forward shield
	connFilters []filters.ConnFilter // stages that refuse connections at accept
	untrusted   untrustedPeers       // forward-auth refusals, for a log that cannot be flooded

	// inflight counts requests being served on this Guard. A counter, not a
	// WaitGroup: a request that loaded this Guard just before a reload's
	// swap may still start while Drain waits.
	inflight atomic.Int64
}

// Option adjusts how New builds a Guard.
type Option func(*options)

type options struct {
	logger    *slog.Logger
	metrics   *Metrics
	dir       string
	previous  *Guard
	accessOut io.Writer
}

// WithLogger sets the structured logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithMetrics reports into m, which outlives reloads. Without it the
// Guard has a Metrics of its own and reports into it from the start; with
// it, call Activate when the Guard starts serving (after a reload's swap),
// so that m never shows two Guards' stages at once.
func WithMetrics(m *Metrics) Option { return func(o *options) { o.metrics = m } }

// WithDir resolves relative paths in the config against dir (the config
// file's directory; default the working directory).
func WithDir(dir string) Option { return func(o *options) { o.dir = dir } }

// WithPrevious builds the Guard as the successor of prev: stages take over
// prev's state (buckets, bans, Redis clients). The caller closes prev after
// the swap.
func WithPrevious(prev *Guard) Option { return func(o *options) { o.previous = prev } }

// New builds the chain cfg describes. cfg comes from config.Parse or
// config.Load, from DefaultConfig, or is filled in by hand; it must pass
// cfg.Validate. The keys only the binary reads (listen, tls, admin, log
// level and format) are not needed and not checked here.
func New(cfg *config.Config, opts ...Option) (*Guard, error) {
	o := options{logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	own := o.metrics == nil
	if own {
		o.metrics = NewMetrics()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("edgeguard: invalid config: %w", err)
	}
	g := &Guard{cfg: cfg, log: o.logger, metrics: o.metrics, access: newAccessLog(cfg.Log.Access, o.logger, o.accessOut)}
	resolver, err := ipparse.NewResolver(cfg.ClientIP)
	if err != nil {
		return nil, fmt.Errorf("edgeguard: build client-ip resolver: %w", err)
	}
	g.resolver = resolver

	if err := g.buildChains(cfg, o); err != nil {
		g.Close()
		return nil, err
	}

	if hasUpstream(cfg) {
		fenv := forward.Env{Logger: o.logger, ClientIPHeader: resolver.Header()}
		if g.quota != nil {
			fenv.Limiter = routeCaps{g.quota}
		}
		if o.previous != nil {
			fenv.Previous = o.previous.forward
		}
		g.forward, err = forward.New(cfg.Forward, fenv)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("edgeguard: build forwarder: %w", err)
		}
	}
	if own {
		g.Activate() // no other Guard reports into a Metrics New made
	}
	return g, nil
}

// routeStage is a stage instance and the route it serves ("" for all).
type routeStage struct {
	route string
	filters.Filter
}

// buildChains builds the stages cfg.Stages names, in order, from the stage
// table: the shared chain, and a chain for each route with stage settings
// of its own. What a stage can do beyond Check is found by interface.
// Every stage is built even after one fails, so that the error names every
// problem at once; each is a *filters.FieldError whose Field is the
// block's path in the file ("waf.packs[1]", "route_stages./login.waf"),
// which the binary turns into FILE:LINE. A block that a draft config
// refused (config.Config.Refused) is not built: its problem is reported.
func (g *Guard) buildChains(cfg *config.Config, o options) error {
	env := filters.Env{Logger: o.logger, Dir: o.dir, IPv6Prefix: cfg.ClientIP.WithDefaults().IPv6Prefix}
	var errs []error
	build := func(route string, st config.Stage) filters.Stage {
		field := st.Name()
		if route != "" {
			field = "route_stages." + route + "." + st.Name()
		}
		block, mode := st.Settings(cfg, route)
		if mode == filters.ModeOff || cfg.Refused(field) || cfg.Refused(st.Name()) {
			return filters.Stage{}
		}
		env.Previous = o.previous.stage(route, st.Name())
		f, err := block.Build(env)
		if err != nil {
			errs = append(errs, filters.PrefixFields(field, err))
			return filters.Stage{}
		}
		g.stages = append(g.stages, routeStage{route: route, Filter: f})
		if f.Name() != st.Name() {
			// A reload finds the instance to take over by name.
			errs = append(errs, filters.FieldErrorf(field, "its filter is named %q", f.Name()))
			return filters.Stage{}
		}
		return filters.Stage{Filter: f, Mode: mode}
	}
	table := make([]config.Stage, len(cfg.Stages))
	base := make([]filters.Stage, len(cfg.Stages))
	for i, name := range cfg.Stages {
		st, ok := config.LookupStage(name)
		if !ok {
			if !cfg.Refused(fmt.Sprintf("stages[%d]", i)) { // Validate has checked
				errs = append(errs, filters.FieldErrorf(fmt.Sprintf("stages[%d]", i), "%q is not in the stage table", name))
			}
			continue
		}
		table[i] = st
		base[i] = build("", st)
	}
	// A route with its own settings for some stage gets a chain of its own:
	// those stages are instances of its own, the rest are shared.
	routes := map[string][]filters.Stage{}
	for route, rs := range cfg.RouteStages {
		stages := slices.Clone(base)
		for i, st := range table {
			if st.Name() != "" && st.Overrides(rs) {
				stages[i] = build(route, st)
			}
		}
		routes[route] = stages
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	g.lend(base)
	g.chain = g.newChain(base)
	for route, stages := range routes {
		if g.chains == nil {
			g.chains = map[string]*filters.Chain{}
		}
		g.chains[route] = g.newChain(stages)
	}
	return nil
}

// CheckStages builds every stage instance cfg describes, the shared
// chain's and each route's, as New would, and closes them again: it
// returns every build error at once (a pack that does not compile, a list
// that does not parse, a file that is missing), each a *filters.FieldError
// with the block's path from the top of the file, for config.Config.Locate.
// cfg may be a draft (config.Error.Draft): the blocks it refused are not
// built. It starts no listener and serves nothing; the options that matter
// are WithDir and WithLogger (default: no log).
func CheckStages(cfg *config.Config, opts ...Option) error {
	o := options{logger: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		opt(&o)
	}
	g := &Guard{cfg: cfg, log: o.logger, metrics: NewMetrics()}
	err := g.buildChains(cfg, o)
	_ = g.Close()
	return err
}

// lend keeps what the shared chain's stages offer beyond their checks: a
// refusal at accept time (filters.ConnFilter), the ban API of the
// reputation stage and the quota stage's store for the forward shield.
func (g *Guard) lend(base []filters.Stage) {
	for _, s := range base {
		switch f := s.Filter.(type) {
		case *reputation.Filter:
			g.reputation = f
		case *quota.Filter:
			g.quota = f
		}
		if cf, ok := s.Filter.(filters.ConnFilter); ok {
			g.connFilters = append(g.connFilters, cf)
		}
	}
}

// newChain makes a chain over stages. Its observers are the stages that
// observe (reputation turns denies into strikes), then the deny log.
func (g *Guard) newChain(stages []filters.Stage) *filters.Chain {
	var observers []filters.Observer
	for _, s := range stages {
		if o, ok := s.Filter.(filters.Observer); ok {
			observers = append(observers, o)
		}
	}
	observers = append(observers, filters.ObserverFunc(g.logDeny))
	return filters.NewChain(stages, observers, g.metrics.observeStage).WithClock(time.Now)
}

// stage returns g's instance of the named stage for route, or nil; a
// successor takes its state over.
func (g *Guard) stage(route, name string) filters.Filter {
	if g == nil {
		return nil
	}
	for _, s := range g.stages {
		if s.route == route && s.Name() == name {
			return s.Filter
		}
	}
	return nil
}

func forRoute(route string) string {
	if route == "" {
		return ""
	}
	return " for route " + route
}

// hasUpstream reports whether cfg names anywhere to forward to; a Guard
// used only as middleware needs none.
func hasUpstream(cfg *config.Config) bool {
	return cfg.Forward.Upstream != "" || len(cfg.Forward.Upstreams) > 0
}

// Activate makes g the Guard whose stage metrics the shared Metrics report.
// Call it when g starts serving (after a reload's swap).
func (g *Guard) Activate() {
	var srcs []metricsSource
	for _, s := range g.stages {
		if ms, ok := s.Filter.(filters.MetricsSource); ok {
			srcs = append(srcs, metricsSource{route: s.route, stage: true, src: ms})
		}
	}
	if g.forward != nil {
		srcs = append(srcs, metricsSource{src: g.forward})
	}
	g.metrics.sources.Store(&srcs)
}

// Close stops the stages' background work. Requests still in flight on g
// finish with the state they have.
func (g *Guard) Close() error {
	var errs []error
	for _, s := range g.stages {
		if c, ok := s.Filter.(filters.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	if g.forward != nil {
		errs = append(errs, g.forward.Close())
	}
	return errors.Join(errs...)
}

// Drain waits until the requests being served on g have finished, or
// timeout has passed. A reload calls it on the Guard it replaced before
// closing it.
func (g *Guard) Drain(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for g.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// Config returns the config g was built from.
func (g *Guard) Config() *config.Config { return g.cfg }

// ServeHTTP filters r and forwards it to the configured upstream.
func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.forward == nil {
		http.Error(w, "edgeguard: no upstream configured", http.StatusBadGateway)
		return
	}
	g.serve(w, r, toForwarder{g.forward})
}

// Wrap returns middleware: requests that pass the chain go to next.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	to := &toHandler{g: g, next: next}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.serve(w, r, to) })
}

// passer is where serve hands a request that passed the chain.
type passer interface {
	pass(w http.ResponseWriter, r *http.Request, req *filters.Request)
}

// toForwarder hands requests to the forwarder, which takes the chain's view
// as an argument and writes the client-address headers on the outbound
// request itself.
type toForwarder struct{ f *forward.Forwarder }

func (t toForwarder) pass(w http.ResponseWriter, r *http.Request, req *filters.Request) {
	t.f.Forward(w, r, req)
}

// toHandler hands requests to the handler behind Wrap, with the chain's
// view in the context and the client-address headers rewritten: after the
// chain, so the WAF saw them as the client sent them.
type toHandler struct {
	g    *Guard
	next http.Handler
}

func (t *toHandler) pass(w http.ResponseWriter, r *http.Request, req *filters.Request) {
	t.g.setClientHeaders(r.Header, req)
	r = r.WithContext(filters.WithRequest(r.Context(), req))
	req.HTTP = r
	t.next.ServeHTTP(w, r)
}

// addrs returns the TCP peer and the start address of the client-IP walk.
func (g *Guard) addrs(r *http.Request) (peer, start netip.AddrPort, src filters.Source) {
	// The connection is there when the server installed
	// ipparse.ConnContext; as middleware elsewhere, RemoteAddr is all.
	if c := ipparse.ConnFromContext(r.Context()); c != nil {
		peer, start, viaProxy := ipparse.ConnAddrs(c)
		if viaProxy {
			return peer, start, filters.SourceProxy
		}
		return peer, start, filters.SourcePeer
	}
	ap := remoteAddr(r.RemoteAddr)
	return ap, ap, filters.SourcePeer
}

// remoteAddr reads an http.Request's RemoteAddr: "host:port" as net/http
// sets it, or a bare address as some servers and test harnesses leave it
// (port 0). Anything else is the zero AddrPort, which the resolver refuses
// with ipparse.ErrNoStart.
func remoteAddr(s string) netip.AddrPort {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a.Unmap(), 0)
}

// refusal is a request turned away before the chain: the client address
// could not be resolved, its Connection header would drop what the WAF
// inspected, or the path is ambiguous between routes.
type refusal struct {
	stage  string // client_ip, header or route
	status int
	err    error
}

// intake fills in the chain's view of r: the peer, the resolved client and
// its key, the X-Forwarded-For to send on, the route. It is how serve and
// Explain both learn who sent a request and where it goes. It returns the
// start address of the client-IP walk (whose word on the request id counts)
// and, for a request refused before the chain, why.
func (g *Guard) intake(req *filters.Request, r *http.Request) (netip.AddrPort, *refusal) {
	peer, from, src := g.addrs(r)
	req.Peer, req.Source = peer, src
	res, err := g.resolver.Resolve(from, r.Header)
	if err != nil {
		req.Client = from.Addr()
		status := http.StatusRequestHeaderFieldsTooLarge
		if errors.Is(err, ipparse.ErrNoStart) {
			// No address to start from (a Unix socket, a server without
			// our ConnContext): the deployment's fault, not the client's.
			status = http.StatusInternalServerError
		}
		return from, &refusal{stage: "client_ip", status: status, err: err}
	}
	req.Client, req.ClientPort, req.Key = res.Addr, res.Port, res.Key
	if res.Source == filters.SourceHeader {
		req.Source = filters.SourceHeader
	}
	req.ForwardedFor = g.resolver.ForwardedFor(res, from.Addr(), r.Header)
	if err := httpkit.CheckConnection(r.Header); err != nil {
		return from, &refusal{stage: "header", status: http.StatusBadRequest, err: err}
	}
	if g.forward != nil {
		route, err := g.forward.Route(r)
		if err != nil {
			return from, &refusal{stage: "route", status: http.StatusBadRequest, err: err}
		}
		req.Route = route
	}
	return from, nil
}

// chainFor is the chain of route: its own when it has stage settings of its
// own, the shared one otherwise.
func (g *Guard) chainFor(route string) *filters.Chain {
	if c, ok := g.chains[route]; ok {
		return c
	}
	return g.chain
}

// exchange is one request's bookkeeping, allocated in one piece: the
// chain's view of the request and the writer that records the answer.
type exchange struct {
	req     filters.Request
	rec     recorder
	arrived time.Time // req.Now moves on as the stages run
	id      [1]string // the X-Request-Id header's value slice
}

// serve runs the chain and hands what passes to next.
func (g *Guard) serve(w http.ResponseWriter, r *http.Request, next passer) {
	g.inflight.Add(1)
	defer g.inflight.Add(-1)
	now := time.Now()
	x := &exchange{req: filters.Request{HTTP: r, Now: now}, rec: recorder{ResponseWriter: w}, arrived: now}
	req, rec := &x.req, &x.rec
	defer g.finish(x)

	from, ref := g.intake(req, r)
	req.ID = g.requestID(r, from.Addr())
	x.id[0] = req.ID
	rec.Header()["X-Request-Id"] = x.id[:]
	if ref != nil {
		g.refuse(rec, req, r, ref)
		return
	}
	g.metrics.clientSource(req.Source).Inc()
	v := g.chainFor(req.Route).Run(req)
	addHeaders(rec.Header(), v.Headers)
	if v.Deny {
		rec.stage, rec.reason, rec.rules, rec.messages = v.Stage, v.Reason, v.RuleIDs, v.RuleMessages
		writeDeny(rec, req, v)
		return
	}
	// The chain's clock left req.Now at the last stage's end: the
	// forwarder's route caps meter then, not at arrival, and the upstream
	// time starts there.
	upstart := req.Now
	// Request trailers are dropped: no stage inspects them, so they must
	// not reach the upstream. Whatever arrives after this (a body still
	// being read) lands on r, never on the copies next hands on.
	r.Trailer = nil
	// The rest of the body streams to the upstream: the body memory cap
	// counts only what the stages read and hold.
	bodymem.Stream(r.Context())
	next.pass(req.ResponseWriter(rec), r, req)
	rec.upstream = time.Since(upstart)
	g.metrics.upstreamTime(req.Pool).Observe(rec.upstream.Seconds())
}

// finish releases what the stages held for x's request, counts it and
// logs it. A deny a stage reported after the chain had let the request
// through (a WAF rule on the response) is the request's refusal from here
// on: the counters, the console and the access log all see it as that
// stage's deny, not as a forwarded request.
func (g *Guard) finish(x *exchange) {
	x.req.Finish()
	if v, ok := x.req.LateDeny(); ok && x.rec.stage == "" {
		x.rec.stage, x.rec.reason, x.rec.rules, x.rec.messages = v.Stage, v.Reason, v.RuleIDs, v.RuleMessages
	}
	end := time.Now()
	g.metrics.finished(&x.req, &x.rec, x.arrived, end, g.chainFor(x.req.Route))
	if g.access != nil {
		g.access.write(&x.req, &x.rec, x.arrived, end.Sub(x.arrived))
	}
}

// refuse answers a request refused before the chain.
func (g *Guard) refuse(rec *recorder, req *filters.Request, r *http.Request, ref *refusal) {
	rec.stage, rec.reason = ref.stage, ref.err.Error()
	if ref.status == http.StatusInternalServerError {
		g.log.Error("no client address to start from", "remote_addr", r.RemoteAddr, "error", ref.err.Error())
	}
	writeDeny(rec, req, filters.Verdict{Deny: true, Status: ref.status, Stage: ref.stage, Reason: ref.err.Error()})
}

// addHeaders adds the headers the stages asked for to the response. The
// stages' value slices are shared, capped so that an append to them
// elsewhere copies instead of writing into a stage's array.
func addHeaders(dst, src http.Header) {
	for k, vs := range src {
		if old, ok := dst[k]; ok {
			dst[k] = append(old, vs...)
			continue
		}
		dst[k] = vs[:len(vs):len(vs)]
	}
}

// setClientHeaders replaces, on the request the next handler sees, every
// header through which the client could claim an address: what the app
// behind the Guard reads there is the resolved client, never the client's
// own words. (The forwarder sets them again on the outbound request.)
func (g *Guard) setClientHeaders(h http.Header, req *filters.Request) {
	httpkit.StripClientAddress(h)
	client := req.Client.String()
	h.Set("X-Real-Ip", client)
	h.Set("X-Forwarded-For", req.ForwardedFor)
	h.Del("Forwarded") // the client's words; X-Forwarded-For says it now
	if name := g.resolver.Header(); name != "X-Forwarded-For" && name != "Forwarded" && name != "X-Real-Ip" {
		h.Set(name, client)
	}
}

// requestID keeps an X-Request-Id from a trusted proxy and makes one
// otherwise.
func (g *Guard) requestID(r *http.Request, from netip.Addr) string {
	sent := r.Header.Get("X-Request-Id")
	return httpkit.RequestID(sent, sent != "" && g.resolver.Trusted(from))
}

// writeDeny answers a deny the way every part of edgeguard does
// (httpkit.WriteDeny).
func writeDeny(w http.ResponseWriter, req *filters.Request, v filters.Verdict) {
	httpkit.WriteDeny(w, req.ID, v)
}

// logDeny is the chain observer that logs each deny, shadow ones included.
func (g *Guard) logDeny(e filters.Event) {
	v := e.Verdict
	if v.Shadow {
		g.metrics.shadowDenied(v.Stage).Inc()
	}
	g.metrics.rulesFired(e)
	if !g.log.Enabled(context.Background(), slog.LevelDebug) {
		return // the arguments below cost allocations even when filtered
	}
	g.log.Debug("deny", "request_id", e.Request.ID, "stage", v.Stage, "reason", v.Reason,
		"shadow", v.Shadow, "client", e.Request.Client.String())
}

// RefuseConn reports whether a connection from addr should be closed at
// accept time, before any HTTP or TLS: a stage of the shared chain that
// can refuse connections does (the reputation stage, when it enforces and
// addr is banned or on a deny list).
func (g *Guard) RefuseConn(addr netip.Addr, now time.Time) bool {
	for _, cf := range g.connFilters {
		if cf.RefuseConn(addr, now) {
			return true
		}
	}
	return false
}

// TrustedProxy reports whether addr is one of client_ip.trusted_proxies:
// a connection from it carries other clients' requests and must never be
// refused for one of them.
func (g *Guard) TrustedProxy(addr netip.Addr) bool { return g.resolver.Trusted(addr) }

// routeCaps lends the quota stage's store (Redis when configured) to the
// forward shield, so a route's cap is counted once for the whole fleet.
// Failures come back as errors: the route's own on_error decides.
type routeCaps struct{ q *quota.Filter }

func (rc routeCaps) AllowRoute(_ context.Context, key string, lim filters.Limit, now time.Time) (forward.RouteDecision, error) {
	lim.Burst = max(lim.Burst, 1)
	r, err := rc.q.TakeAt(now, key, lim, 1)
	if err != nil {
		return forward.RouteDecision{}, err
	}
	return forward.RouteDecision{Allowed: r.Allowed, RetryAfter: r.RetryAfter}, nil
}

var _ forward.RouteLimiter = routeCaps{}
