package edgeguard

import (
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/activity"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds edgeguard's Prometheus metrics. One Metrics outlives every
// reload: the Guard in service reports into it and lends it its stages'
// samples, so counters never reset when the config changes.
type Metrics struct {
	Registry *prometheus.Registry

	requests      *prometheus.CounterVec   // stage, verdict
	responses     *prometheus.CounterVec   // method, code (class)
	stageLatency  *prometheus.HistogramVec // stage
	upstream      *prometheus.HistogramVec // pool
	activeConns   prometheus.Gauge
	clientSources *prometheus.CounterVec // source
	reloads       *prometheus.CounterVec // result
	lastReload    prometheus.Gauge

	// The request path's series, each resolved on first use (so /metrics
	// shows what has happened, as before) and then kept: a vector's
	// WithLabelValues hashes the labels and takes a lock on every call.
	allows, denies, shadowDenies children[prometheus.Counter] // requests, by stage
	bySource                     children[prometheus.Counter] // clientSources
	stageDurations               children[prometheus.Observer]
	upstreamByPool               children[prometheus.Observer]
	// answeredBy[method] holds that method's counters by status class.
	answeredBy [len(knownMethods) + 1]children[prometheus.Counter]

	sources atomic.Pointer[[]metricsSource]

	// activity is the console's picture of recent traffic, fed from the
	// same calls as the counters above; conns is activeConns's value,
	// which a Gauge does not give back cheaply.
	activity *activity.Recorder
	conns    atomic.Int64
}

// NewMetrics registers edgeguard's metrics, the Go runtime's and the
// process's in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry(), activity: activity.New(activity.DefaultK)}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgeguard_requests_total",
		Help: "Requests by the stage that decided them (\"forward\" for those that passed every stage) and the verdict: allow, deny, shadow_deny. Allows and denies count when the answer ends, as the access log and the console do; a deny the WAF decides on the response counts as the WAF's.",
	}, []string{"stage", "verdict"})
	m.stageLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "edgeguard_stage_duration_seconds",
		Help:    "Time one stage took to decide one request.",
		Buckets: []float64{1e-6, 5e-6, 25e-6, 100e-6, 500e-6, 1e-3, 5e-3, 25e-3, 100e-3, 500e-3},
	}, []string{"stage"})
	m.upstream = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "edgeguard_upstream_duration_seconds",
		Help:    "Time from handing a request to the forwarder to its response being written, by upstream pool (\"none\": no pool was reached, or the Guard wraps a handler).",
		Buckets: prometheus.DefBuckets,
	}, []string{"pool"})
	m.responses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgeguard_responses_total",
		Help: "Answers to clients by request method (OTHER for methods outside the standard ones) and status class (2xx, 4xx, ...).",
	}, []string{"method", "code"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgeguard_config_reloads_total",
		Help: "Config reloads by result: success, or failure (the previous config kept serving).",
	}, []string{"result"})
	m.lastReload = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "edgeguard_config_last_reload_success_timestamp_seconds",
		Help: "When the config in service was loaded (start or the last successful reload), in Unix seconds.",
	})
	bi := ReadBuildInfo()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "edgeguard_build_info",
		Help:        "Always 1; the labels say what is running.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "commit": bi.Commit, "go_version": bi.GoVersion, "coraza": bi.Coraza, "crs": bi.CRS},
	})
	buildInfo.Set(1)
	m.activeConns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "edgeguard_active_connections",
		Help: "Client connections open on the edge listener.",
	})
	m.clientSources = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgeguard_client_ip_source_total",
		Help: "How the client address of each request was learned: peer, proxy (PROXY protocol) or header.",
	}, []string{"source"})
	m.allows.resolve = func(stage string) prometheus.Counter { return m.requests.WithLabelValues(stage, "allow") }
	m.bySource.resolve = func(src string) prometheus.Counter { return m.clientSources.WithLabelValues(src) }
	m.denies.resolve = func(stage string) prometheus.Counter { return m.requests.WithLabelValues(stage, "deny") }
	m.shadowDenies.resolve = func(stage string) prometheus.Counter { return m.requests.WithLabelValues(stage, "shadow_deny") }
	m.stageDurations.resolve = func(stage string) prometheus.Observer { return m.stageLatency.WithLabelValues(stage) }
	m.upstreamByPool.resolve = func(pool string) prometheus.Observer { return m.upstream.WithLabelValues(pool) }
	for i := range m.answeredBy {
		method := "OTHER"
		if i < len(knownMethods) {
			method = knownMethods[i]
		}
		m.answeredBy[i].resolve = func(class string) prometheus.Counter { return m.responses.WithLabelValues(method, class) }
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	m.Registry.MustRegister(m.requests, m.responses, m.stageLatency, m.upstream, m.activeConns, m.clientSources,
		m.reloads, m.lastReload, buildInfo,
		// The live heap (what the last GC kept) beside the classic memstats:
		// heap in use swings with the GC cycle and cannot tell a leak from
		// garbage not yet collected; the live heap can.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		stageCollector{m})
	return m
}

// observeStage is the chain's StageTimer.
func (m *Metrics) observeStage(stage string, took time.Duration, v filters.Verdict) {
	m.stageDurations.get(stage).Observe(took.Seconds())
}

// knownMethods are the methods that get a label value of their own; any
// other (a client may send any token) counts as OTHER, so that clients
// cannot grow the series without bound.
var knownMethods = [...]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"}

// statusClasses are the code label's values by status/100.
var statusClasses = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// answered is the counter of answers with status to requests of method
// (status 0, nothing written, is a 200 as net/http sends it).
func (m *Metrics) answered(method string, status int) prometheus.Counter {
	i := len(knownMethods)
	for j, k := range knownMethods {
		if method == k {
			i = j
			break
		}
	}
	if status == 0 {
		status = 200
	}
	class := statusClasses[0]
	if c := status / 100; c >= 1 && c <= 5 {
		class = statusClasses[c]
	}
	return m.answeredBy[i].get(class)
}

// upstreamTime is the histogram of upstream time for pool.
func (m *Metrics) upstreamTime(pool string) prometheus.Observer {
	if pool == "" {
		pool = "none"
	}
	return m.upstreamByPool.get(pool)
}

// ReloadSucceeded counts a reload that put a new config in service at
// now; Loaded records the first config's start without counting a reload.
func (m *Metrics) ReloadSucceeded(now time.Time) {
	m.reloads.WithLabelValues("success").Inc()
	m.Loaded(now)
}

// Loaded records that a config went into service at now.
func (m *Metrics) Loaded(now time.Time) { m.lastReload.Set(float64(now.UnixNano()) / 1e9) }

// ReloadFailed counts a reload that was refused.
func (m *Metrics) ReloadFailed() { m.reloads.WithLabelValues("failure").Inc() }

// clientSource is the counter of requests whose client came from src.
func (m *Metrics) clientSource(src filters.Source) prometheus.Counter {
	return m.bySource.get(src.String())
}

// passed is the counter of requests that passed every stage.
func (m *Metrics) passed() prometheus.Counter { return m.allows.get("forward") }

// denied and shadowDenied are the counters of requests stage denied (or
// would have, in shadow mode).
func (m *Metrics) denied(stage string) prometheus.Counter       { return m.denies.get(stage) }
func (m *Metrics) shadowDenied(stage string) prometheus.Counter { return m.shadowDenies.get(stage) }

// children keeps the series of one vector by the one label value that
// varies, resolving each value once. Lookups take no lock: the map is
// replaced, never changed, when a value is added. Values come from a small
// set (stage names), so the map stays small.
type children[T any] struct {
	m       atomic.Pointer[map[string]T]
	mu      sync.Mutex // serialises additions
	resolve func(value string) T
}

func (c *children[T]) get(value string) T {
	if m := c.m.Load(); m != nil {
		if t, ok := (*m)[value]; ok {
			return t
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if t, ok := (*old)[value]; ok {
			return t
		}
	}
	next := make(map[string]T, 1)
	if old != nil {
		next = make(map[string]T, len(*old)+1)
		for k, v := range *old {
			next[k] = v
		}
	}
	t := c.resolve(value)
	next[value] = t
	c.m.Store(&next)
	return t
}

// ConnOpened and ConnClosed track the edge listener's open connections.
func (m *Metrics) ConnOpened() { m.activeConns.Inc(); m.conns.Add(1) }
func (m *Metrics) ConnClosed() { m.activeConns.Dec(); m.conns.Add(-1) }

// ActiveConnections is the number of client connections open on the edge
// listener.
func (m *Metrics) ActiveConnections() int64 { return m.conns.Load() }

// finished counts a request whose answer ended at end: in
// edgeguard_requests_total as the deny of the stage that refused it or as
// forwarded, by method and status class, and in the activity recorder. This
// one call feeds both, so the console's counts by stage and the metrics'
// cannot drift apart. chain is the chain the request went through, read
// only for a refusal.
func (m *Metrics) finished(req *filters.Request, rec *recorder, arrived, end time.Time, chain *filters.Chain) {
	if rec.stage != "" {
		m.denied(rec.stage).Inc()
	} else {
		m.passed().Inc()
	}
	m.answered(req.HTTP.Method, rec.status).Inc()
	status := rec.status
	if status == 0 && rec.stage == "" {
		status = http.StatusOK // nothing written: net/http sends a 200
	}
	e := activity.Entry{
		Arrived: arrived, End: end,
		Client: req.Client, Source: req.Source.String(),
		ID: req.ID, Route: req.Route, Method: req.HTTP.Method, Path: req.HTTP.URL.Path,
		Status: status,
		Stage:  rec.stage, Reason: rec.reason, RuleIDs: rec.rules, RuleMessages: rec.messages,
		Notes: req.Notes,
	}
	if rec.stage != "" {
		e.Chain = chain.Stages()
	}
	m.activity.Record(&e)
}

// rulesFired tells the activity recorder which WAF rules a deny (or a
// shadow deny) names.
func (m *Metrics) rulesFired(e filters.Event) {
	if len(e.Verdict.RuleIDs) > 0 {
		m.activity.RulesFired(e.Request.Now, e.Verdict.RuleIDs, e.Verdict.RuleMessages)
	}
}

// metricsSource is a stage instance's samples and the route it serves.
type metricsSource struct {
	route string
	stage bool
	src   filters.MetricsSource
}

// stageCollector turns the serving Guard's stage samples into metrics at
// scrape time. It is unchecked (it describes nothing up front) because the
// set of samples depends on which stages the config turns on.
type stageCollector struct{ m *Metrics }

func (stageCollector) Describe(chan<- *prometheus.Desc) {}

func (c stageCollector) Collect(ch chan<- prometheus.Metric) {
	srcs := c.m.sources.Load()
	if srcs == nil {
		return
	}
	// The route label tells apart the instances of routes with stage
	// settings of their own; with none, every series is the shared
	// chain's and carries no route label at all. With some, the shared
	// chain's series say route="*" (every route without its own).
	perRoute := false
	for _, src := range *srcs {
		perRoute = perRoute || (src.stage && src.route != "")
	}
	descs := map[string]*prometheus.Desc{}
	for _, src := range *srcs {
		src.src.CollectMetrics(func(s filters.Sample) {
			names, values := splitLabels(s.Labels)
			if src.stage && perRoute {
				route := src.route
				if route == "" {
					route = "*"
				}
				names, values = append(names, "route"), append(values, route)
			}
			key := s.Name + "\x00" + joinNames(names)
			d, ok := descs[key]
			if !ok {
				d = prometheus.NewDesc("edgeguard_"+s.Name, s.Help, names, nil)
				descs[key] = d
			}
			kind := prometheus.CounterValue
			if s.Kind == filters.Gauge {
				kind = prometheus.GaugeValue
			}
			if pm, err := prometheus.NewConstMetric(d, kind, s.Value, values...); err == nil {
				ch <- pm
			}
		})
	}
}

func splitLabels(pairs []string) (names, values []string) {
	for i := 0; i+1 < len(pairs); i += 2 {
		names = append(names, pairs[i])
		values = append(values, pairs[i+1])
	}
	return names, values
}

func joinNames(names []string) string {
	out := ""
	for _, n := range names {
		out += n + ","
	}
	return out
}
