package edgeguard

import (
	"bufio"
	"net"
	"net/http"
)

// recorder remembers the status written to the client for the access log,
// while passing Flush and Hijack through so that streaming responses and
// WebSocket upgrades keep working behind the Guard.
type recorder struct {
	http.ResponseWriter
	status int
	stage  string
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
	return r.ResponseWriter.Write(b)
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
