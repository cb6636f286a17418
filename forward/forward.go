package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeguard/edgeguard/filters"
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
