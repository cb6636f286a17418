package main

import (
	"bufio"
	"net"
	"net/http"
	"sync/atomic"
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
	now                      func() time.Time // nil: time.Now
}

// paceSlack is how much of a timeout may pass before a deadline already
// pushed out is pushed again: a push re-arms a runtime timer under the
// poller's lock, and a body or an answer moving in many small reads or
// writes would pay that on each of them (on a 2 KB POST, half a dozen
// times). So a stall is cut after between 63/64 of its timeout and the
// whole of it, never later.
const paceSlack = 64

// paceEpoch is what the pace's push times count from: a monotonic reading
// kept as one integer, so that a body read on the transport's goroutine
// and the handler's deferred work share it without a lock.
var paceEpoch = time.Now()

// serveHTTP serves r with the pace enforced: each read of the body and
// each write of the response first pushes the connection's deadline out by
// its timeout (unless it was pushed less than 1/paceSlack of the timeout
// ago), so a stall (not a slow but steady transfer) ends the connection;
// the body's bytes count against the pool until the stages have passed
// it.
func (p *clientPace) wrap(next http.HandlerFunc) http.HandlerFunc {
	now := p.now
	if now == nil {
		now = time.Now
	}
	return func(w http.ResponseWriter, r *http.Request) {
		// The controller lives in the writer: one allocation, not two.
		pw := &pacedWriter{ResponseWriter: w, rc: *http.NewResponseController(w), timeout: p.sendTimeout,
			bodyTimeout: p.bodyTimeout, now: now}
		if r.Body != nil && r.Body != http.NoBody {
			ctx, body := p.pool.WrapContext(r.Context(), r.Body, pw.bodyProgress)
			defer body.Release()
			// net/http reads what the handler left of a body (up to 256 KB)
			// before it sends the answer, so that the connection can be
			// reused. A request refused before its body was read (a 429, a
			// 403) would then wait, without a deadline, on a client that
			// declared a body and stalls: the answer never leaves and the
			// connection stays open. Bound that read as any other. A body
			// read to its end needs nothing more: net/http reads no further,
			// and the close it watches for then ends with the handler, so
			// the deadline set while reading cannot reach the connection's
			// later requests.
			defer func() {
				if !body.Drained() {
					_ = pw.rc.SetReadDeadline(now().Add(p.bodyTimeout))
				}
			}()
			r.Body = body
			r = r.WithContext(ctx)
		}
		// A later request on this connection starts without our deadline.
		defer func() {
			if pw.wrote.Load() != 0 {
				_ = pw.rc.SetWriteDeadline(time.Time{})
			}
		}()
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

// pacedWriter pushes the write deadline out before each write, and the
// read deadline before each read of the body. Flush, Hijack and the
// ResponseController reach the writer underneath.
type pacedWriter struct {
	http.ResponseWriter
	rc          http.ResponseController
	timeout     time.Duration // the send timeout
	bodyTimeout time.Duration
	now         func() time.Time
	// When each deadline was last pushed, as nanoseconds after paceEpoch
	// plus one; 0: never. The body is read on the transport's goroutine.
	wrote, read atomic.Int64
}

// pushedLongAgo marks a deadline as pushed but due again at the next
// progress, whatever the timeout.
const pushedLongAgo = -1 << 62

// due says whether a deadline last pushed at *last must be pushed again
// at now to stay timeout ahead, and if so records now as the push.
func due(last *atomic.Int64, now time.Time, timeout time.Duration) bool {
	at := int64(now.Sub(paceEpoch)) + 1
	if prev := last.Load(); prev != 0 && time.Duration(at-prev) < timeout/paceSlack {
		return false
	}
	last.Store(at)
	return true
}

func (w *pacedWriter) progress() {
	if now := w.now(); due(&w.wrote, now, w.timeout) {
		_ = w.rc.SetWriteDeadline(now.Add(w.timeout))
	}
}

func (w *pacedWriter) bodyProgress() {
	if now := w.now(); due(&w.read, now, w.bodyTimeout) {
		_ = w.rc.SetReadDeadline(now.Add(w.bodyTimeout))
	}
}

// ShortenSendTimeout lets a route's send timeout (forward's timeouts.send)
// bound this request's writes when it is shorter than server.send_timeout
// (forward.SendPacer).
func (w *pacedWriter) ShortenSendTimeout(d time.Duration) {
	if d > 0 && d < w.timeout {
		w.timeout = d
		// A deadline pushed with the longer timeout is pushed again at
		// the next write; "never" would also skip the reset at the end.
		if w.wrote.Load() != 0 {
			w.wrote.Store(pushedLongAgo)
		}
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
