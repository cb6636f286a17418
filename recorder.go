package edgeguard

import (
	"bufio"
	"net"
	"net/http"
	"time"
)

// recorder remembers what the access log and the metrics report about the
// answer (status, bytes, who decided, how long the upstream took), while
// passing Flush and Hijack through so that streaming responses and
// WebSocket upgrades keep working behind the Guard.
type recorder struct {
	http.ResponseWriter
	status   int
	bytes    int64         // body bytes written to the client
	stage    string        // the stage that refused the request, if one did
	reason   string        // why it did
	rules    []int         // the WAF rules behind the refusal
	messages []string      // their messages, by index
	upstream time.Duration // time in the forwarder (or the wrapped handler)
}

func (r *recorder) WriteHeader(code int) {
	// 1xx are interim (103 Early Hints): the final status comes later.
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err == nil && r.status == 0 {
		r.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the connection's own writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
