package forward

import (
	"net/http"
	"sync"
	"time"
)

// copyBufferSize is the size of the buffers response bodies are copied
// through: ReverseProxy's own default.
const copyBufferSize = 32 << 10

// copyBuffers lends ReverseProxy the buffers it copies response bodies
// through. Without a pool it allocates 32 KiB for every response, which on a
// small request is most of the bytes the whole process allocates and so sets
// how often the garbage collector runs.
//
// The pool holds array pointers, so Put files a buffer back without
// allocating (a []byte put into a sync.Pool would be boxed on every Put).
type copyBuffers struct{ pool sync.Pool }

func newCopyBuffers() *copyBuffers {
	return &copyBuffers{pool: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

func (c *copyBuffers) Get() []byte { return c.pool.Get().(*[copyBufferSize]byte)[:] }

// Put takes back a buffer Get lent; anything else (a slice of another size)
// is left to the garbage collector.
func (c *copyBuffers) Put(b []byte) {
	if len(b) != copyBufferSize {
		return
	}
	c.pool.Put((*[copyBufferSize]byte)(b))
}

// sendWriter bounds each write of a response to the client by the send
// timeout (Timeouts.Send), so that a client that stops reading makes the
// write fail, ReverseProxy abort the response, and the request give back
// its route slot, instead of holding them for as long as it keeps the
// connection open.
type sendWriter struct {
	http.ResponseWriter
	rc      http.ResponseController
	timeout time.Duration
	off     bool // the writer takes no deadlines (a test recorder), or a SendPacer sets them
}

// SendPacer is a ResponseWriter further out that itself pushes the write
// deadline out before each write (the binary's server.send_timeout). Two
// layers each setting the deadline would leave the outer one's, set last,
// in force; so where a pacer is found, the route's send timeout shortens
// the pacer's instead of setting deadlines of its own.
type SendPacer interface {
	// ShortenSendTimeout makes the pace for the rest of the request at most d.
	ShortenSendTimeout(d time.Duration)
}

// newSendWriter bounds the writes to w by timeout, through a SendPacer
// among w and the writers it wraps when there is one.
func newSendWriter(w http.ResponseWriter, timeout time.Duration) sendWriter {
	s := sendWriter{ResponseWriter: w, rc: *http.NewResponseController(w), timeout: timeout}
	for u := w; u != nil; {
		if p, ok := u.(SendPacer); ok {
			p.ShortenSendTimeout(timeout)
			s.off = true
			break
		}
		uw, ok := u.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		u = uw.Unwrap()
	}
	return s
}

func (s *sendWriter) Write(p []byte) (int, error) {
	if !s.off && s.rc.SetWriteDeadline(time.Now().Add(s.timeout)) != nil {
		s.off = true
	}
	return s.ResponseWriter.Write(p)
}

// Unwrap lets ReverseProxy's flushes and upgrades reach the connection.
func (s *sendWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
