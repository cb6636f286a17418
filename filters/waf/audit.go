package waf

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/corazawaf/coraza/v3/types"
)

// auditEvent is one denied or shadow-denied transaction. By default it
// holds no body and no header values: rule messages, the variables they
// matched and the request line are what is needed to tune rules, and none
// carries credentials or cookies. With audit_requests on (a tuning run),
// Request holds the request itself, credential headers removed, so that
// `edgeguard tune` can turn it into a pack test.
type auditEvent struct {
	Time      time.Time   `json:"time"`
	RequestID string      `json:"request_id"`
	Client    string      `json:"client_ip"`
	Method    string      `json:"method"`
	URI       string      `json:"uri"`
	Action    string      `json:"action"`
	Status    int         `json:"status"`
	Shadow    bool        `json:"shadow"`
	RuleID    int         `json:"rule_id,omitempty"`
	Inbound   int         `json:"anomaly_score"`
	Outbound  int         `json:"outbound_anomaly_score,omitempty"`
	Rules     []auditRule `json:"rules"`
	// Request is the request as received (request line, headers except
	// credentials, the inspected body), only with audit_requests.
	Request []byte `json:"request,omitempty"`
}

type auditRule struct {
	ID       int    `json:"id"`
	Message  string `json:"msg"`
	Severity string `json:"severity,omitempty"`
	// Vars are the variables the rule matched, as SecLang names them
	// (ARGS:json.query, REQUEST_HEADERS:User-Agent), never their values.
	Vars []string `json:"vars,omitempty"`
}

// matchedVars names the variables of a match, each once, in match order.
func matchedVars(mds []types.MatchData) []string {
	var out []string
	for _, md := range mds {
		v := md.Variable().Name()
		if k := md.Key(); k != "" {
			v += ":" + k
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// credentialHeaders are left out of a recorded request.
var credentialHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie"}

// sampleRequest is r as received, for a tuning run's audit event: the
// request line, the headers except credentials, and the inspected body.
func sampleRequest(r *http.Request, body []byte) []byte {
	var b bytes.Buffer
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	fmt.Fprintf(&b, "%s %s %s\r\n", r.Method, uri, r.Proto)
	if r.Host != "" {
		fmt.Fprintf(&b, "Host: %s\r\n", r.Host)
	}
	h := r.Header.Clone()
	for _, k := range credentialHeaders {
		h.Del(k)
	}
	h.Del("Content-Length")
	h.Del("Transfer-Encoding")
	_ = h.Write(&b)
	if len(body) > 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// auditSink writes audit events to the main log or to a file of JSON lines.
type auditSink struct {
	log  *slog.Logger
	mu   sync.Mutex
	file *os.File
}

func newAuditSink(dest, base string, log *slog.Logger) (*auditSink, error) {
	s := &auditSink{log: log}
	if dest == "" {
		return s, nil
	}
	if !filepath.IsAbs(dest) {
		dest = filepath.Join(base, dest)
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("opening the audit file: %w", err)
	}
	s.file = f
	return s, nil
}

func (s *auditSink) write(ev auditEvent) {
	ev.Time = time.Now().UTC()
	if s.file == nil {
		s.log.LogAttrs(context.Background(), slog.LevelWarn, "waf audit",
			slog.String("request_id", ev.RequestID), slog.String("client_ip", ev.Client),
			slog.String("method", ev.Method), slog.String("uri", ev.URI),
			slog.String("action", ev.Action), slog.Int("status", ev.Status), slog.Bool("shadow", ev.Shadow),
			slog.Int("rule_id", ev.RuleID), slog.Int("anomaly_score", ev.Inbound),
			slog.Int("outbound_anomaly_score", ev.Outbound), slog.Any("rules", ev.Rules))
		return
	}
	line, err := json.Marshal(ev)
	if err != nil {
		s.log.Error("encoding waf audit event", "request_id", ev.RequestID, "err", err)
		return
	}
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.file.Write(line); err != nil {
		s.log.Error("writing waf audit event", "file", s.file.Name(), "err", err)
	}
}

func (s *auditSink) close() error {
	if s.file == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.file.Close()
}
