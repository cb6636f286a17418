package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestGrowthJudgesOnlyAfterWarmup(t *testing.T) {
	mk := func(heaps ...float64) []sample {
		var s []sample
		for i, h := range heaps {
			s = append(s, sample{at: time.Duration(i) * 10 * time.Second, heap: h})
		}
		return s
	}
	heap := func(s sample) float64 { return s.heap }
	for _, tc := range []struct {
		name   string
		series []sample
		want   float64
		ok     bool
	}{
		{"flat after a warm-up climb", mk(1, 50, 100, 100, 101, 99, 100, 100, 101, 100), 1.0, true},
		{"steady growth", mk(100, 100, 100, 110, 120, 130, 140, 150, 160, 170), 165.0 / 105, true},
		// A GC sawtooth judged by its ends alone would read 3.0 here.
		{"sawtooth", mk(0, 0, 100, 300, 100, 300, 100, 300, 100, 300, 100, 300, 100, 300), 1.0, true},
		{"too short", mk(100, 100, 100, 100, 100), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := growth(tc.series, 20*time.Second, heap)
			if ok != tc.ok || (ok && (got < tc.want-0.01 || got > tc.want+0.01)) {
				t.Fatalf("growth = %.3f, %v; want %.3f, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestQuantile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if q := quantile(d, 0.99); q != 99*time.Millisecond {
		t.Fatalf("p99 of 1..100 ms = %v", q)
	}
	if q := quantile(nil, 0.99); q != 0 {
		t.Fatalf("p99 of nothing = %v", q)
	}
}

// A short watch against a fake edgeguard: the gauges are read, probes are
// counted, and the three files are written.
func TestWatchAndWrite(t *testing.T) {
	heap := 100.0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" {
			heap += 10
			fmt.Fprintf(w, "# HELP x\ngo_memstats_heap_inuse_bytes %g\ngo_gc_heap_live_bytes %g\nprocess_resident_memory_bytes 2e+08\ngo_goroutines 12\nprocess_open_fds 40\nother_metric 1\n", heap*(1<<20), heap*(1<<19))
			return
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	samples, err := watch(addr, addr, 700*time.Millisecond, 100*time.Millisecond, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) < 7 || samples[0].goroutines != 12 || samples[0].fds != 40 || samples[0].rss != 2e8 {
		t.Fatalf("samples %+v", samples)
	}
	probes := 0
	for _, s := range samples {
		probes += s.probes
	}
	if probes == 0 {
		t.Fatal("no probe was counted")
	}
	dir := t.TempDir()
	if err := write(dir, samples, 0); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "soak.md"))
	if !regexp.MustCompile(`\| live heap \| [0-9.]+× \| \*\*grows\*\*`).Match(md) {
		t.Fatalf("the growing live heap is not called growing:\n%s", md)
	}
	if !strings.Contains(string(md), "| heap in use |") || !strings.Contains(string(md), "not judged") {
		t.Fatalf("heap in use is judged, or missing:\n%s", md)
	}
	for _, f := range []string{"soak.tsv", "soak.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
}

func TestScrapeRefusesMissingGauges(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "go_goroutines 3")
	}))
	defer srv.Close()
	if _, err := scrape(srv.Client(), strings.TrimPrefix(srv.URL, "http://")); err == nil {
		t.Fatal("a /metrics without the gauges was accepted")
	}
}
