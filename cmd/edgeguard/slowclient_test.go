package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// deadlineWriter records the write deadlines set on it, as the connection
// under a real ResponseWriter would take them.
type deadlineWriter struct {
	*httptest.ResponseRecorder
	set []time.Time
}

func (d *deadlineWriter) SetWriteDeadline(t time.Time) error {
	d.set = append(d.set, t)
	return nil
}

// TestPacedWriterPacesWhatReachesTheClient: a write deadline is pushed out
// before each write of the body and before an interim status (sent at
// once), not before a final status, which is only buffered until the first
// write.
func TestPacedWriterPacesWhatReachesTheClient(t *testing.T) {
	for _, tt := range []struct {
		name string
		do   func(w http.ResponseWriter)
		want int // deadlines set
	}{
		{"final status", func(w http.ResponseWriter) { w.WriteHeader(http.StatusNotFound) }, 0},
		{"early hints", func(w http.ResponseWriter) { w.WriteHeader(http.StatusEarlyHints) }, 1},
		{"status and two writes", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("a"))
			_, _ = w.Write([]byte("b"))
		}, 2},
		{"flush", func(w http.ResponseWriter) { w.(http.Flusher).Flush() }, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
			w := &pacedWriter{ResponseWriter: d, rc: *http.NewResponseController(d), timeout: time.Minute}
			before := time.Now()
			tt.do(w)
			if len(d.set) != tt.want {
				t.Fatalf("%d write deadlines set, want %d", len(d.set), tt.want)
			}
			for _, dl := range d.set {
				if dl.Before(before.Add(time.Minute)) {
					t.Errorf("deadline %v is not send_timeout after the write", dl)
				}
			}
		})
	}
}
