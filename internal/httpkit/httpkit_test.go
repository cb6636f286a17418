package httpkit

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestRetryAfterRoundsUpToWholeSeconds(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{time.Nanosecond, "1"},
		{999 * time.Millisecond, "1"},
		{time.Second, "1"},
		{time.Second + time.Nanosecond, "2"},
		{59500 * time.Millisecond, "60"},
		{time.Hour, "3600"},
		{0, "1"}, // never "0": a client told to wait must not come back at once
	} {
		if got := RetryAfter(tt.d); got != tt.want {
			t.Errorf("RetryAfter(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

var idForm = regexp.MustCompile(`^[0-9a-f]{24}$`)

func TestRequestIDKeepsOnlyTrustedSaneIDs(t *testing.T) {
	long := strings.Repeat("a", MaxRequestIDLen)
	for _, tt := range []struct {
		name    string
		sent    string
		trusted bool
		kept    bool
	}{
		{"trusted", "lb-7", true, true},
		{"trusted, longest kept", long, true, true},
		{"untrusted", "chosen-by-client", false, false},
		{"trusted, empty", "", true, false},
		{"trusted, too long", long + "a", true, false},
		{"trusted, space", "a b", true, false},
		{"trusted, control", "a\x01", true, false},
		{"trusted, DEL", "a\x7f", true, false},
		{"trusted, not ASCII", "ünï", true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := RequestID(tt.sent, tt.trusted)
			if tt.kept {
				if got != tt.sent {
					t.Fatalf("RequestID(%q, trusted) = %q, want it kept", tt.sent, got)
				}
				return
			}
			if got == tt.sent || !idForm.MatchString(got) {
				t.Fatalf("RequestID(%q, %v) = %q, want a new 24-hex-digit id", tt.sent, tt.trusted, got)
			}
		})
	}
}

func TestNewRequestIDIsNewEachTime(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewRequestID()
		if !idForm.MatchString(id) {
			t.Fatalf("NewRequestID() = %q, want 24 lower-case hex digits", id)
		}
		if seen[id] {
			t.Fatalf("NewRequestID() made %q twice", id)
		}
		seen[id] = true
	}
}

func TestWriteRefusal(t *testing.T) {
	for _, tt := range []struct {
		name       string
		retryAfter time.Duration
		wantRetry  string
	}{
		{"no wait", 0, ""},
		{"wait", 1500 * time.Millisecond, "2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			w.Header().Set("X-Request-Id", "r1") // set earlier; kept
			WriteRefusal(w, http.StatusTooManyRequests, tt.retryAfter, "slow down (request id r1)\n")
			if w.Code != http.StatusTooManyRequests || w.Body.String() != "slow down (request id r1)\n" {
				t.Fatalf("got %d %q", w.Code, w.Body.String())
			}
			for k, want := range map[string]string{
				"Content-Type":           "text/plain; charset=utf-8",
				"X-Content-Type-Options": "nosniff",
				"Cache-Control":          "no-store",
				"Retry-After":            tt.wantRetry,
				"X-Request-Id":           "r1",
			} {
				if got := w.Header().Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestStripClientAddress(t *testing.T) {
	h := http.Header{"Accept": {"*/*"}, "X-Real-Ip": {"203.0.113.7"}}
	for _, name := range ClientAddressHeaders {
		h[name] = []string{"6.6.6.6"}
		if name != http.CanonicalHeaderKey(name) {
			t.Errorf("%q is not in canonical form: deleting it would miss the header", name)
		}
	}
	StripClientAddress(h)
	if len(h) != 2 || h.Get("Accept") != "*/*" || h.Get("X-Real-Ip") != "203.0.113.7" {
		t.Fatalf("after StripClientAddress: %v", h)
	}
}
