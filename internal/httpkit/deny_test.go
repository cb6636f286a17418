package httpkit

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// TestWriteDeny: a deny is a refusal naming the status, the stage and the
// request id; a status that would let the request look served becomes
// 403; a redirect is one only with somewhere to go.
func TestWriteDeny(t *testing.T) {
	for _, tt := range []struct {
		name      string
		v         filters.Verdict
		location  string
		wantCode  int
		wantBody  string
		wantRetry string
	}{
		{"default status", filters.Verdict{Deny: true, Stage: "waf"}, "", 403, "403 Forbidden\nrequest r1 refused by waf\n", ""},
		{"429 with a wait", filters.Verdict{Deny: true, Status: 429, Stage: "quota", RetryAfter: 1500 * time.Millisecond}, "", 429, "429 Too Many Requests\nrequest r1 refused by quota\n", "2"},
		{"a rule's 200", filters.Verdict{Deny: true, Status: 200, Stage: "waf"}, "", 403, "403 Forbidden\nrequest r1 refused by waf\n", ""},
		{"out of range", filters.Verdict{Deny: true, Status: 1000, Stage: "waf"}, "", 403, "403 Forbidden\nrequest r1 refused by waf\n", ""},
		{"redirect", filters.Verdict{Deny: true, Status: 302, Stage: "waf"}, "https://example.com/", 302, "", ""},
		{"redirect to nowhere", filters.Verdict{Deny: true, Status: 302, Stage: "waf"}, "", 403, "403 Forbidden\nrequest r1 refused by waf\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			if tt.location != "" {
				w.Header().Set("Location", tt.location)
			}
			WriteDeny(w, "r1", tt.v)
			if w.Code != tt.wantCode || w.Body.String() != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", w.Code, w.Body.String(), tt.wantCode, tt.wantBody)
			}
			if got := w.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After %q, want %q", got, tt.wantRetry)
			}
			if tt.wantBody != "" && w.Header().Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("refusal without nosniff: %v", w.Header())
			}
		})
	}
}

// hijacker is a ResponseWriter whose connection can be taken over.
type hijacker struct {
	*httptest.ResponseRecorder
	conn net.Conn
}

func (h hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) { return h.conn, nil, nil }

// TestWriteDenyDrops: a drop closes the connection without a response;
// where the connection cannot be taken over, the client is refused.
func TestWriteDenyDrops(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	w := hijacker{httptest.NewRecorder(), server}
	WriteDeny(w, "r1", filters.Verdict{Deny: true, Drop: true, Stage: "waf"})
	if w.Body.Len() != 0 || w.Code != http.StatusOK || len(w.Header()) != 0 {
		t.Fatalf("a dropped request got a response: %d %q %v", w.Code, w.Body.String(), w.Header())
	}
	if _, err := client.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after a drop")
	}

	rec := httptest.NewRecorder() // no Hijack
	WriteDeny(rec, "r1", filters.Verdict{Deny: true, Drop: true, Stage: "waf"})
	if rec.Code != http.StatusForbidden {
		t.Fatalf("drop without a connection to close: %d, want 403", rec.Code)
	}
}
