package waf

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// auditEvent is one denied or shadow-denied transaction. It holds no body
// and no header values: rule messages and the request line are all that is
// needed to tune rules, and neither carries credentials or cookies.
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
}

type auditRule struct {
	ID       int    `json:"id"`
	Message  string `json:"msg"`
	Severity string `json:"severity,omitempty"`
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
		return nil, fmt.Errorf("opening waf audit file: %w", err)
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
