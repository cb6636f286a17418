package waf

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"

	"github.com/corazawaf/coraza/v3/types"
	"github.com/edgeguard/edgeguard/filters"
)

// responseInspector runs CRS's response phases over what the upstream
// writes. Headers go through phase 3 when the upstream sends them; a body of
// an inspected type is held (up to response_body_limit) and goes through
// phase 4 before anything is sent, so a blocked response never leaks; a
// Flush does not release it. Other bodies (streaming types such as
// text/event-stream are not on the inspected list), the part of a body past
// response_body_limit and everything after a Hijack stream through untouched.
type responseInspector struct {
	w  http.ResponseWriter
	st *txState

	status      int
	wroteHeader bool
	holding     bool // body is being held for phase 4
	done        bool // inspection is over: pass everything through
	blocked     bool // a response phase interrupted: discard the upstream's bytes
	buf         bytes.Buffer
}

func (ri *responseInspector) Header() http.Header { return ri.w.Header() }

// Unwrap lets http.ResponseController reach the writer below.
func (ri *responseInspector) Unwrap() http.ResponseWriter { return ri.w }

func (ri *responseInspector) WriteHeader(code int) {
	if ri.wroteHeader || ri.blocked {
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// 100 Continue, 103 Early Hints: informational, the real header follows.
		ri.w.WriteHeader(code)
		return
	}
	ri.wroteHeader = true
	ri.status = code
	tx := ri.st.tx
	if ri.done || tx.IsInterrupted() {
		ri.w.WriteHeader(code)
		return
	}
	for k, vs := range ri.w.Header() {
		for _, v := range vs {
			tx.AddResponseHeader(k, v)
		}
	}
	if it := tx.ProcessResponseHeaders(code, ri.st.r.HTTP.Proto); it != nil {
		ri.block(it)
		return
	}
	if code != http.StatusSwitchingProtocols && tx.IsResponseBodyAccessible() && tx.IsResponseBodyProcessable() {
		ri.holding = true
		return
	}
	ri.done = true
	ri.w.WriteHeader(code)
}

func (ri *responseInspector) Write(p []byte) (int, error) {
	if !ri.wroteHeader {
		ri.WriteHeader(http.StatusOK)
	}
	switch {
	case ri.blocked:
		// The client already has the deny; the upstream's bytes go nowhere.
		return len(p), nil
	case !ri.holding:
		return ri.w.Write(p)
	}
	limit := int(ri.st.f.cfg.ResponseBodyLimit)
	if room := limit - ri.buf.Len(); len(p) > room {
		ri.buf.Write(p[:room])
		if !ri.inspectHeld() {
			return len(p), nil
		}
		if _, err := ri.w.Write(p[room:]); err != nil {
			return room, err
		}
		return len(p), nil
	}
	return ri.buf.Write(p)
}

// inspectHeld runs phase 4 over the held body and then either sends the
// header and body on or answers with the interruption. It reports whether
// the response may continue.
func (ri *responseInspector) inspectHeld() bool {
	ri.holding = false
	ri.done = true
	tx := ri.st.tx
	if _, _, err := tx.WriteResponseBody(ri.buf.Bytes()); err != nil {
		ri.st.f.log.Warn("buffering response body for inspection", "request_id", ri.st.r.ID, "err", err)
	}
	it, err := tx.ProcessResponseBody()
	if err != nil {
		ri.st.f.log.Warn("inspecting response body", "request_id", ri.st.r.ID, "err", err)
	}
	if it != nil {
		ri.block(it)
		return false
	}
	ri.w.WriteHeader(ri.status)
	if ri.buf.Len() > 0 {
		if _, err := ri.w.Write(ri.buf.Bytes()); err != nil {
			ri.buf.Reset()
			return false
		}
	}
	ri.buf.Reset()
	return true
}

// block answers the client according to a response-phase interruption,
// instead of the upstream's response.
func (ri *responseInspector) block(it *types.Interruption) {
	ri.blocked, ri.holding, ri.done = true, false, true
	// The chain let the request through before this; report the deny so
	// that it is a strike like a request-phase one.
	ri.st.r.ReportLate(Name, filters.Verdict{Status: it.Status, Reason: fmt.Sprintf("response rule %d", it.RuleID), RuleIDs: []int{it.RuleID}})
	ri.buf.Reset()
	h := ri.w.Header()
	// The upstream's headers must not reach the client with the deny; the
	// request id the owner set stays, for correlation.
	id := h.Get("X-Request-Id")
	clear(h)
	if id != "" {
		h.Set("X-Request-Id", id)
	}
	switch it.Action {
	case "drop":
		if conn, _, err := http.NewResponseController(ri.w).Hijack(); err == nil {
			conn.Close()
			return
		}
	case "redirect":
		status := it.Status
		if status < 300 || status > 399 {
			status = http.StatusFound
		}
		h.Set("Location", it.Data)
		ri.w.WriteHeader(status)
		return
	}
	status := it.Status
	if status == 0 || it.Action == "drop" {
		status = http.StatusForbidden
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	ri.w.WriteHeader(status)
	fmt.Fprintf(ri.w, "blocked by edgeguard (waf), request id %s\n", ri.st.r.ID)
}

// Flush flushes what has been let through. A held body stays held:
// httputil.ReverseProxy flushes after every write of an upstream response
// without Content-Length, and ending inspection there would let everything
// after the first flush through uninspected. The hold is bounded by
// response_body_limit, and streaming types are not held.
func (ri *responseInspector) Flush() {
	if !ri.wroteHeader {
		ri.WriteHeader(http.StatusOK)
	}
	if ri.holding || ri.blocked {
		return
	}
	_ = http.NewResponseController(ri.w).Flush()
}

// Hijack hands the connection over (WebSocket); inspection stops.
func (ri *responseInspector) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if ri.blocked {
		return nil, nil, errBlocked
	}
	ri.done, ri.holding = true, false
	return http.NewResponseController(ri.w).Hijack()
}

// finish inspects a body still held when the handler returns.
func (ri *responseInspector) finish() {
	if ri.holding {
		ri.inspectHeld()
	}
}

var (
	_ http.ResponseWriter = (*responseInspector)(nil)
	_ http.Flusher        = (*responseInspector)(nil)
	_ http.Hijacker       = (*responseInspector)(nil)
)
