package filters

import (
	"context"
	"net/http"
	"net/netip"
	"time"
)

// Source says how the client address of a request was learned.
type Source uint8

const (
	// SourcePeer: the TCP peer itself is the client.
	SourcePeer Source = iota
	// SourceProxy: a PROXY protocol header from a trusted load balancer.
	SourceProxy
	// SourceHeader: a forwarding header sent by a trusted proxy.
	SourceHeader
)

func (s Source) String() string {
	switch s {
	case SourceProxy:
		return "proxy"
	case SourceHeader:
		return "header"
	default:
		return "peer"
	}
}

// Key identifies a client for limits and bans: an IPv4 address in its
// IPv4-mapped 16-byte form, or an IPv6 address masked to the configured
// prefix. It is a pointer-free value, so maps and caches holding millions of
// keys give the garbage collector nothing to scan.
type Key [16]byte

// KeyOf returns the key of addr, collapsing IPv6 addresses to their first
// v6Bits bits (0 or out of range means 64). IPv4-mapped IPv6 is unmapped first
// so that 1.2.3.4 and ::ffff:1.2.3.4 share a key.
func KeyOf(addr netip.Addr, v6Bits int) Key {
	addr = addr.Unmap()
	if addr.Is6() {
		if v6Bits <= 0 || v6Bits > 128 {
			v6Bits = 64
		}
		if p, err := addr.Prefix(v6Bits); err == nil {
			addr = p.Addr()
		}
	}
	return Key(addr.As16())
}

// Addr returns the address the key stands for: the IPv4 address, or the
// first address of the IPv6 prefix.
func (k Key) Addr() netip.Addr {
	return netip.AddrFrom16(k).Unmap()
}

func (k Key) String() string { return k.Addr().String() }

// Request is one HTTP request as the chain sees it. The root package builds it
// once per request; stages read it and may annotate it.
type Request struct {
	// HTTP is the inbound request. A stage that reads the body must leave an
	// equivalent body in place for the stages after it and the upstream.
	HTTP *http.Request
	// Peer is the TCP peer of the connection (after nothing: the socket address).
	Peer netip.AddrPort
	// Client is the resolved client address (ipparse's answer) and ClientPort
	// its port where one is known (PROXY protocol or a forwarding header with a port).
	Client     netip.Addr
	ClientPort uint16
	// Key is the client key for limits and bans (see KeyOf).
	Key Key
	// Source says how Client was learned.
	Source Source
	// Now is the instant the current stage decides at: the arrival time
	// for the first stage, and for the later ones too unless the chain has
	// a clock (Chain.WithClock; the Guard's chains have the wall clock),
	// which moves it at the end of each stage; after such a chain it is
	// the instant the last stage ended. Limiters take their time from
	// here and never from the clock, so tests walk fixed instants.
	Now time.Time
	// ID is the request id sent to the upstream and returned to the client.
	ID string
	// Route names the route the request matched ("" for the default).
	Route string
	// ForwardedFor is the X-Forwarded-For to send upstream: the resolved
	// client first, then the trusted hops and the peer (entries left of the
	// client are the client's own inventions and are dropped).
	ForwardedFor string
	// Pool and Upstream are the upstream pool and the backend (host:port)
	// the forwarder chose, for the access log and the metrics; empty when
	// the request was not forwarded.
	Pool, Upstream string

	// Notes are per-stage annotations for logs and explain (matched rule ids,
	// quota results). Stages append; nobody removes.
	Notes []Note
	// Explaining marks a request that explain runs through the chain:
	// stages may then note their reasons in detail (each matched WAF rule),
	// which would cost too much on every request.
	Explaining bool

	deferred []func()
	wrappers []func(http.ResponseWriter) http.ResponseWriter
	chain    *Chain   // the chain that ran r, for ReportLate
	late     *Verdict // the first deny reported by ReportLate (rare: a pointer keeps Request small)
}

// ReportLate reports a deny that stage decided after the chain had let r
// through, while the response was under way (a WAF rule on the response).
// The chain's observers see it like any other deny, so it counts as a
// strike and in metrics; the stage itself answers the client.
func (r *Request) ReportLate(stage string, v Verdict) {
	if r.chain == nil {
		return
	}
	v.Deny, v.Stage = true, stage
	if r.late == nil {
		r.late = &v
	}
	r.chain.report(r, v)
}

// LateDeny returns the first deny reported by ReportLate, if one was: the
// request's owner counts and logs the request as refused by that stage.
func (r *Request) LateDeny() (Verdict, bool) {
	if r.late == nil {
		return Verdict{}, false
	}
	return *r.late, true
}

// Note is one stage's remark about a request, for the access log and explain.
type Note struct {
	Stage string
	Text  string
}

// Annotate adds a note from stage.
func (r *Request) Annotate(stage, text string) {
	r.Notes = append(r.Notes, Note{Stage: stage, Text: text})
}

// Defer registers fn to run once the response has been written or the
// request abandoned, in reverse order of registration. Stages that hold
// per-request resources (a WAF transaction) release them here, so they are
// released on every path: deny, upstream error, client abort.
func (r *Request) Defer(fn func()) { r.deferred = append(r.deferred, fn) }

// Finish runs the deferred functions. The owner of the request calls it
// exactly once; it is safe to call on a request with nothing deferred.
func (r *Request) Finish() {
	for i := len(r.deferred) - 1; i >= 0; i-- {
		r.deferred[i]()
	}
	r.deferred = nil
}

// WrapResponse registers a wrapper for the response writer the upstream's
// answer is written to (response inspection). Wrappers are applied in
// registration order, so the first stage's wrapper is outermost.
func (r *Request) WrapResponse(wrap func(http.ResponseWriter) http.ResponseWriter) {
	r.wrappers = append(r.wrappers, wrap)
}

// ResponseWriter applies the registered wrappers to w.
func (r *Request) ResponseWriter(w http.ResponseWriter) http.ResponseWriter {
	for i := len(r.wrappers) - 1; i >= 0; i-- {
		w = r.wrappers[i](w)
	}
	return w
}

type ctxKey struct{}

// WithRequest returns a context carrying r, so the forwarder and the
// response path can reach the chain's view of the request.
func WithRequest(ctx context.Context, r *Request) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

// FromContext returns the Request stored by WithRequest, or nil.
func FromContext(ctx context.Context) *Request {
	r, _ := ctx.Value(ctxKey{}).(*Request)
	return r
}
