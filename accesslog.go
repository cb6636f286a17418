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
	"time"

	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters"
)

// accessLog writes one line per request: through the structured log
// (format json) or as the combined line web tools read. It is on every
// request's path, so it decides cheaply whether to write at all and
// allocates only for what a request has (a query to redact, rule ids).
type accessLog struct {
	log      *slog.Logger
	combined io.Writer       // set for format combined
	every    bool            // sample 1: no draw
	below    uint64          // sample as a threshold on a uniform uint64
	redact   map[string]bool // query parameters whose values are hidden
}

// WithAccessWriter sends the combined access lines (log.access.format:
// combined) to w; default os.Stderr. JSON access lines go through the
// logger like every other record.
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
	if cfg.Format == "combined" {
		if out == nil {
			out = os.Stderr
		}
		a.combined = out
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
	r := req.HTTP
	attrs := [...]slog.Attr{
		slog.String("request_id", req.ID),
		slog.String("client", req.Client.String()),
		slog.String("client_source", req.Source.String()),
		slog.String("method", r.Method),
		slog.String("host", r.Host),
		slog.String("path", r.URL.Path),
		slog.String("query", a.query(r.URL.RawQuery)),
		slog.String("protocol", r.Proto),
		slog.String("user_agent", r.UserAgent()),
		slog.Int("status", status),
		slog.Int64("bytes_in", max(r.ContentLength, 0)),
		slog.Int64("bytes_out", rec.bytes),
		slog.Float64("duration", took.Seconds()),
		slog.String("route", req.Route),
		slog.String("stage", rec.stage),
		slog.Any("rule_ids", ruleIDs(rec.rules)),
		slog.String("upstream", req.Upstream),
		slog.Float64("upstream_duration", rec.upstream.Seconds()),
	}
	a.log.LogAttrs(context.Background(), slog.LevelInfo, "access", attrs[:]...)
}

// ruleIDs keeps an empty list out of the line's way: null, not [].
func ruleIDs(ids []int) any {
	if len(ids) == 0 {
		return nil
	}
	return ids
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
