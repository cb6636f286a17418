package edgeguard

import (
	"context"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/bodymem"
)

// accessLog writes one line per request: through the structured log
// (format json) or as the combined line web tools read. It is on every
// request's path, so it decides cheaply whether to write at all and
// allocates only for what a request has (a query to redact, rule ids).
type accessLog struct {
	log      *slog.Logger
	combined io.Writer       // set for format combined
	direct   io.Writer       // set for format json with an access writer: lines encoded here
	every    bool            // sample 1: no draw
	below    uint64          // sample as a threshold on a uniform uint64
	redact   map[string]bool // query parameters whose values are hidden
}

// WithAccessWriter writes the access lines to w: the combined lines
// (log.access.format: combined; default os.Stderr), and the JSON lines,
// which then skip the logger's handler and are encoded in the shape of
// slog's JSON records (time, level, msg "access", the fields). Pass the
// JSON logger's own output: the handler costs more than the line on a
// cheap request. Without it, JSON access lines go through the logger.
func WithAccessWriter(w io.Writer) Option { return func(o *options) { o.accessOut = w } }

// newAccessLog returns nil when cfg turns the access line off.
func newAccessLog(cfg config.AccessLog, l *slog.Logger, out io.Writer) *accessLog {
	if !cfg.On() {
		return nil
	}
	a := &accessLog{log: l, every: cfg.Sample <= 0 || cfg.Sample >= 1}
	if !a.every {
		a.below = uint64(cfg.Sample * math.MaxUint64)
	}
	switch {
	case cfg.Format == "combined" && out == nil:
		a.combined = os.Stderr
	case cfg.Format == "combined":
		a.combined = out
	default:
		a.direct = out
	}
	if len(cfg.Redact) > 0 {
		a.redact = make(map[string]bool, len(cfg.Redact))
		for _, n := range cfg.Redact {
			a.redact[n] = true
		}
	}
	return a
}

// write logs req's line, or skips it when sampling says so. Refusals and
// 5xx answers are never sampled away.
func (a *accessLog) write(req *filters.Request, rec *recorder, arrived time.Time, took time.Duration) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	if !a.every && rec.stage == "" && status < 500 && rand.Uint64() >= a.below {
		return
	}
	if a.combined != nil {
		a.writeCombined(req, rec, arrived, status)
		return
	}
	if !a.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	if a.direct != nil {
		a.writeJSON(req, rec, status, arrived, took)
		return
	}
	r := req.HTTP
	// Fields a request does not have (no query, no refusal, no upstream)
	// are left out rather than written empty: each field costs the
	// handler time on every request.
	var buf [18]slog.Attr
	attrs := append(buf[:0],
		slog.String("request_id", req.ID),
		slog.String("client", req.Client.String()),
		slog.String("client_source", req.Source.String()),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
	)
	if r.URL.RawQuery != "" {
		attrs = append(attrs, slog.String("query", a.query(r.URL.RawQuery)))
	}
	attrs = append(attrs,
		slog.String("protocol", r.Proto),
		slog.String("user_agent", r.UserAgent()),
		slog.Int("status", status),
		slog.Int64("bytes_in", bytesIn(r)),
		slog.Int64("bytes_out", rec.bytes),
		slog.Float64("duration", took.Seconds()),
	)
	if req.Route != "" {
		attrs = append(attrs, slog.String("route", req.Route))
	}
	if rec.stage != "" {
		attrs = append(attrs, slog.String("stage", rec.stage))
		if len(rec.rules) > 0 {
			attrs = append(attrs, slog.Any("rule_ids", rec.rules))
		}
	}
	if req.Upstream != "" {
		attrs = append(attrs, slog.String("upstream", req.Upstream))
	}
	if rec.upstream > 0 {
		attrs = append(attrs, slog.Float64("upstream_duration", rec.upstream.Seconds()))
	}
	a.log.LogAttrs(context.Background(), slog.LevelInfo, "access", attrs...)
}

// bytesIn is the number of body bytes read from the client for r. The
// binary's server counts them as they are read (bodymem), so a chunked
// upload is counted, and a body refused unread counts 0, not what its
// Content-Length claimed. A handler used as middleware has no such count
// and logs the declared Content-Length (0 for a chunked body).
func bytesIn(r *http.Request) int64 {
	if n, ok := bodymem.BytesRead(r.Context()); ok {
		return n
	}
	return max(r.ContentLength, 0)
}

// query returns raw with the values of redacted parameters replaced. A
// query naming none of them is returned as it came, without allocating.
func (a *accessLog) query(raw string) string {
	if raw == "" || len(a.redact) == 0 || !a.mentions(raw) {
		return raw
	}
	var b strings.Builder
	b.Grow(len(raw))
	for i, part := range strings.Split(raw, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		name, _, hasValue := strings.Cut(part, "=")
		if hasValue && a.redacted(name) {
			b.WriteString(name)
			b.WriteString("=REDACTED")
			continue
		}
		b.WriteString(part)
	}
	return b.String()
}

// mentions reports whether some parameter of raw may be redacted; a
// percent-encoded name is decoded before it is compared.
func (a *accessLog) mentions(raw string) bool {
	for part := range strings.SplitSeq(raw, "&") {
		name, _, _ := strings.Cut(part, "=")
		if a.redacted(name) {
			return true
		}
	}
	return false
}

func (a *accessLog) redacted(name string) bool {
	if a.redact[name] {
		return true
	}
	if strings.ContainsAny(name, "%+") {
		if n, err := url.QueryUnescape(name); err == nil {
			return a.redact[n]
		}
	}
	return false
}

// writeCombined writes the combined log format line:
// client - - [time] "request line" status bytes "referer" "user agent".
func (a *accessLog) writeCombined(req *filters.Request, rec *recorder, arrived time.Time, status int) {
	r := req.HTTP
	target := r.URL.Path
	if q := a.query(r.URL.RawQuery); q != "" {
		target += "?" + q
	}
	b := make([]byte, 0, 256)
	b = append(b, req.Client.String()...)
	b = append(b, " - - ["...)
	b = arrived.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] "...)
	b = strconv.AppendQuote(b, r.Method+" "+target+" "+r.Proto)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if rec.bytes == 0 {
		b = append(b, '-')
	} else {
		b = strconv.AppendInt(b, rec.bytes, 10)
	}
	b = append(b, ' ')
	b = strconv.AppendQuote(b, orDash(r.Referer()))
	b = append(b, ' ')
	b = strconv.AppendQuote(b, orDash(r.UserAgent()))
	b = append(b, '\n')
	_, _ = a.combined.Write(b)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// lineBufs lends writeJSON the buffers it encodes lines in. A writer may
// not keep what it is given past Write (io.Writer's contract; the binary's
// batch writer copies it), so each buffer serves line after line.
var lineBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// maxPooledLine is the largest buffer given back to lineBufs: a line with
// an outsized user agent or query should not pin its buffer for good.
const maxPooledLine = 4 << 10

// writeJSON encodes the JSON line itself, with the fields and the
// omissions of the slog path, in a pooled buffer.
func (a *accessLog) writeJSON(req *filters.Request, rec *recorder, status int, arrived time.Time, took time.Duration) {
	r := req.HTTP
	bp := lineBufs.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"time":"`...)
	// The answer's end, as the caller read it: no second clock read.
	b = arrived.Add(took).AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"INFO","msg":"access"`...)
	str := func(k, v string) {
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		b = appendJSONString(b, v)
	}
	num := func(k string, v int64) {
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		b = strconv.AppendInt(b, v, 10)
	}
	secs := func(k string, d time.Duration) {
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		b = strconv.AppendFloat(b, d.Seconds(), 'g', -1, 64)
	}
	str("request_id", req.ID)
	b = append(b, `,"client":"`...)
	b = req.Client.AppendTo(b)
	b = append(b, '"')
	str("client_source", req.Source.String())
	str("method", r.Method)
	str("host", r.Host)
	str("path", r.URL.Path)
	if r.URL.RawQuery != "" {
		str("query", a.query(r.URL.RawQuery))
	}
	str("protocol", r.Proto)
	str("user_agent", r.UserAgent())
	num("status", int64(status))
	num("bytes_in", bytesIn(r))
	num("bytes_out", rec.bytes)
	secs("duration", took)
	if req.Route != "" {
		str("route", req.Route)
	}
	if rec.stage != "" {
		str("stage", rec.stage)
		if len(rec.rules) > 0 {
			b = append(b, `,"rule_ids":[`...)
			for i, id := range rec.rules {
				if i > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendInt(b, int64(id), 10)
			}
			b = append(b, ']')
		}
	}
	if req.Upstream != "" {
		str("upstream", req.Upstream)
	}
	if rec.upstream > 0 {
		secs("upstream_duration", rec.upstream)
	}
	b = append(b, '}', '\n')
	_, _ = a.direct.Write(b)
	if cap(b) <= maxPooledLine {
		*bp = b
		lineBufs.Put(bp)
	}
}

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD (as
// encoding/json and slog do), everything else as it is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
