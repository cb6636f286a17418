package main

import (
	"bufio"
	"net"
	"net/http"
	"time"

	"github.com/edgeguard/edgeguard/forward"
	"github.com/edgeguard/edgeguard/internal/bodymem"
	"github.com/prometheus/client_golang/prometheus"
)

// clientPace holds what the edge asks of a client's pace: the longest
// stall in sending the body or in taking the response, and the pool of
// memory that bodies being inspected may hold.
type clientPace struct {
	bodyTimeout, sendTimeout time.Duration
	pool                     *bodymem.Pool
}

// serveHTTP serves r with the pace enforced: each read of the body and
// each write of the response first pushes the connection's deadline out by
// its timeout, so a stall (not a slow but steady transfer) ends the
// connection; the body's bytes count against the pool until the stages
// have passed it.
func (p *clientPace) wrap(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// The controller lives in the writer: one allocation, not two.
		pw := &pacedWriter{ResponseWriter: w, rc: *http.NewResponseController(w), timeout: p.sendTimeout}
		if r.Body != nil && r.Body != http.NoBody {
			ctx, body := p.pool.WrapContext(r.Context(), r.Body, func() { _ = pw.rc.SetReadDeadline(time.Now().Add(p.bodyTimeout)) })
			defer body.Release()
			// net/http reads what the handler left of a body (up to 256 KB)
			// before it sends the answer, so that the connection can be
			// reused. A request refused before its body was read (a 429, a
			// 403) would then wait, without a deadline, on a client that
			// declared a body and stalls: the answer never leaves and the
			// connection stays open. Bound that read as any other. (A body
			// read to its end leaves net/http watching the connection for a
			// close; it ends that watch itself when the handler returns, so
			// the deadline cannot reach the connection's later requests.)
			defer func() { _ = pw.rc.SetReadDeadline(time.Now().Add(p.bodyTimeout)) }()
			r.Body = body
			r = r.WithContext(ctx)
		}
		// A later request on this connection starts without our deadline.
		defer func() { _ = pw.rc.SetWriteDeadline(time.Time{}) }()
		next(pw, r)
	}
}

// register exposes the pool on reg.
func (p *clientPace) register(reg *prometheus.Registry) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgeguard_body_memory_bytes",
			Help: "Bytes of request bodies read by the stages and held in memory now."},
			func() float64 { return float64(p.pool.Held()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "edgeguard_body_memory_refused_total",
			Help: "Requests answered 503 because request bodies in memory were at server.max_body_memory."},
			func() float64 { return float64(p.pool.Refused()) }),
	)
}

// pacedWriter pushes the write deadline out before each write. Flush,
// Hijack and the ResponseController reach the writer underneath.
type pacedWriter struct {
	http.ResponseWriter
	rc      http.ResponseController
	timeout time.Duration
}

func (w *pacedWriter) progress() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout)) }

// ShortenSendTimeout lets a route's send timeout (forward's timeouts.send)
// bound this request's writes when it is shorter than server.send_timeout
// (forward.SendPacer).
func (w *pacedWriter) ShortenSendTimeout(d time.Duration) {
	if d > 0 && d < w.timeout {
		w.timeout = d
	}
}

func (w *pacedWriter) WriteHeader(code int) {
	// A final status is only buffered: it reaches the client with the
	// first Write or Flush, each pacing itself, or after the handler has
	// returned. An interim one (103 Early Hints) is sent at once.
	if code < 200 {
		w.progress()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *pacedWriter) Write(b []byte) (int, error) {
	w.progress()
	return w.ResponseWriter.Write(b)
}

func (w *pacedWriter) Flush() {
	w.progress()
	_ = w.rc.Flush()
}

func (w *pacedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	_ = w.rc.SetWriteDeadline(time.Time{}) // the tunnel keeps its own pace
	return w.rc.Hijack()
}

func (w *pacedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var _ forward.SendPacer = (*pacedWriter)(nil)
