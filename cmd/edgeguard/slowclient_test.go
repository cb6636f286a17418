package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/internal/bodymem"
)

// deadlineWriter records the deadlines set on it, as the connection under
// a real ResponseWriter would take them.
type deadlineWriter struct {
	*httptest.ResponseRecorder
	set, reads []time.Time
}

func (d *deadlineWriter) SetWriteDeadline(t time.Time) error {
	d.set = append(d.set, t)
	return nil
}

func (d *deadlineWriter) SetReadDeadline(t time.Time) error {
	d.reads = append(d.reads, t)
	return nil
}

// fakeClock is a clock a test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

// TestPacedWriterPacesWhatReachesTheClient: a write deadline is pushed out
// before each write of the body and before an interim status (sent at
// once), not before a final status, which is only buffered until the first
// write; a deadline pushed less than 1/paceSlack of the timeout ago is not
// pushed again.
func TestPacedWriterPacesWhatReachesTheClient(t *testing.T) {
	base := time.Date(2026, 12, 3, 4, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		do   func(w http.ResponseWriter, c *fakeClock)
		want []time.Duration // deadlines set, after base
	}{
		{"final status", func(w http.ResponseWriter, _ *fakeClock) { w.WriteHeader(http.StatusNotFound) }, nil},
		{"early hints", func(w http.ResponseWriter, _ *fakeClock) { w.WriteHeader(http.StatusEarlyHints) }, []time.Duration{time.Minute}},
		{"status and two writes at once", func(w http.ResponseWriter, _ *fakeClock) {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("a"))
			_, _ = w.Write([]byte("b"))
		}, []time.Duration{time.Minute}},
		{"writes just under and at the slack apart", func(w http.ResponseWriter, c *fakeClock) {
			_, _ = w.Write([]byte("a"))
			c.advance(time.Minute/paceSlack - 1)
			_, _ = w.Write([]byte("b"))
			c.advance(1)
			_, _ = w.Write([]byte("c"))
		}, []time.Duration{time.Minute, time.Minute + time.Minute/paceSlack}},
		{"flush", func(w http.ResponseWriter, _ *fakeClock) { w.(http.Flusher).Flush() }, []time.Duration{time.Minute}},
		{"a shorter route timeout after a write", func(w http.ResponseWriter, _ *fakeClock) {
			_, _ = w.Write([]byte("a"))
			w.(*pacedWriter).ShortenSendTimeout(10 * time.Second)
			_, _ = w.Write([]byte("b"))
		}, []time.Duration{time.Minute, 10 * time.Second}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
			c := &fakeClock{base}
			w := &pacedWriter{ResponseWriter: d, rc: *http.NewResponseController(d), timeout: time.Minute, now: c.now}
			tt.do(w, c)
			var got []time.Duration
			for _, dl := range d.set {
				got = append(got, dl.Sub(base))
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("write deadlines at base+%v, want %v", got, tt.want)
			}
		})
	}
}

// TestClientPaceDeadlines: through wrap, the body's reads push the read
// deadline (once while they come at the same instant), a body left unread
// or half read gets one more push when the handler returns (net/http reads
// the rest before it answers), a body read to its end none; and the write
// deadline, when one was pushed, is cleared at the end for the
// connection's next request, and left alone when none was.
func TestClientPaceDeadlines(t *testing.T) {
	base := time.Date(2026, 12, 3, 4, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name       string
		handler    http.HandlerFunc
		reads      int  // read deadlines set
		writeReset bool // a write deadline was pushed and then cleared
	}{
		{"body read to its end, answer written", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			_, _ = w.Write([]byte("ok"))
		}, 1, true},
		{"body unread, refused with a status only", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusTooManyRequests)
		}, 1, false},
		{"body half read", func(w http.ResponseWriter, r *http.Request) {
			_, _ = r.Body.Read(make([]byte, 3))
			w.WriteHeader(http.StatusForbidden)
		}, 2, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeClock{base}
			p := &clientPace{bodyTimeout: time.Minute, sendTimeout: time.Minute, pool: bodymem.NewPool(0), now: c.now}
			d := &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Repeat("x", 100)))
			p.wrap(tt.handler)(d, r)
			if len(d.reads) != tt.reads {
				t.Errorf("%d read deadlines set, want %d", len(d.reads), tt.reads)
			}
			for _, dl := range d.reads {
				if !dl.Equal(base.Add(time.Minute)) {
					t.Errorf("read deadline %v, want client_body_timeout after the read", dl)
				}
			}
			want := []time.Time(nil)
			if tt.writeReset {
				want = []time.Time{base.Add(time.Minute), {}}
			}
			if !slices.Equal(d.set, want) {
				t.Errorf("write deadlines %v, want %v", d.set, want)
			}
		})
	}
}
