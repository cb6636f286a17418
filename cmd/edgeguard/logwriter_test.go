package main

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// gatedWriter records each Write as one call; the first call blocks until
// release is closed, so a test can queue lines behind it.
type gatedWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once

	mu    sync.Mutex
	calls []string
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	first := false
	g.once.Do(func() { first = true })
	if first {
		close(g.entered)
		<-g.release
	}
	g.mu.Lock()
	g.calls = append(g.calls, string(p))
	g.mu.Unlock()
	return len(p), nil
}

func TestBatchWriterCoalescesQueuedLinesInOrder(t *testing.T) {
	out := &gatedWriter{entered: make(chan struct{}), release: make(chan struct{})}
	w := newBatchWriter(out)
	fmt.Fprintf(w, "line 0\n")
	<-out.entered // the goroutine is writing line 0 and blocks there
	var want strings.Builder
	want.WriteString("line 0\n")
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(w, "line %d\n", i)
		fmt.Fprintf(&want, "line %d\n", i)
	}
	close(out.release)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(w, "after close\n") // straight through
	want.WriteString("after close\n")

	out.mu.Lock()
	defer out.mu.Unlock()
	if got := strings.Join(out.calls, ""); got != want.String() {
		t.Fatalf("written:\n%s\nwant:\n%s", got, want.String())
	}
	// line 0; lines 1-100 queued behind it in one write; the direct line.
	if len(out.calls) != 3 {
		t.Fatalf("%d writes for 102 lines queued behind a slow one, want 3: %q", len(out.calls), out.calls)
	}
}

// TestBatchWriterWaitsToShareWrites: lines that arrive within
// logFlushDelay of the first go out in one write, none of them before the
// delay; Close writes a queued line at once.
func TestBatchWriterWaitsToShareWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out recordingWriter
		w := newBatchWriter(&out)
		start := time.Now()
		for i := range 3 {
			fmt.Fprintf(w, "line %d\n", i)
			time.Sleep(logFlushDelay / 4)
			synctest.Wait()
			if n := out.count(); n != 0 {
				t.Fatalf("%d writes %v after the first line, want none before %v", n, time.Since(start), logFlushDelay)
			}
		}
		time.Sleep(logFlushDelay / 4)
		synctest.Wait()
		if got := out.all(); len(got) != 1 || got[0] != "line 0\nline 1\nline 2\n" {
			t.Fatalf("after %v: writes %q, want the three lines in one", time.Since(start), got)
		}

		fmt.Fprintf(w, "last\n")
		closing := time.Now()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(closing); waited != 0 {
			t.Errorf("Close waited %v for the delay", waited)
		}
		if got := out.all(); len(got) != 2 || got[1] != "last\n" {
			t.Fatalf("after Close: writes %q, want the last line written", got)
		}
	})
}

func TestBatchWriterConcurrentLinesStayWhole(t *testing.T) {
	var out lockedBuffer
	w := newBatchWriter(&out)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				fmt.Fprintf(w, "g%d i%03d %s\n", g, i, strings.Repeat("x", 40))
			}
		}()
	}
	wg.Wait()
	_ = w.Close()
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 8*200 {
		t.Fatalf("%d lines, want %d", len(lines), 8*200)
	}
	last := map[string]int{}
	for _, l := range lines {
		var g, i int
		var tail string
		if _, err := fmt.Sscanf(l, "g%d i%d %s", &g, &i, &tail); err != nil || len(tail) != 40 {
			t.Fatalf("torn line %q", l)
		}
		k := fmt.Sprint(g)
		if prev, ok := last[k]; ok && i != prev+1 {
			t.Fatalf("goroutine %d: line %d after %d", g, i, prev)
		}
		last[k] = i
	}
}

func TestBatchWriterBoundsWhatIsQueued(t *testing.T) {
	// No goroutine: nothing drains the queue but the bound itself.
	var out recordingWriter
	w := &batchWriter{out: &out, limit: 64, wake: make(chan struct{}, 1)}
	for i := range 20 {
		fmt.Fprintf(w, "line %02d\n", i) // 8 bytes
	}
	if out.count() == 0 {
		t.Fatal("160 bytes queued against a bound of 64 and nothing written")
	}
	for _, c := range out.all() {
		if len(c) > 64 {
			t.Fatalf("a batch of %d bytes, bound 64", len(c))
		}
	}
	if len(w.pending) >= 64 {
		t.Fatalf("%d bytes left queued, bound 64", len(w.pending))
	}
}

// recordingWriter records each Write as one call; the writer goroutine
// and the test read it under its lock.
type recordingWriter struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordingWriter) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, string(p))
	return len(p), nil
}

func (r *recordingWriter) count() int { return len(r.all()) }

func (r *recordingWriter) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
