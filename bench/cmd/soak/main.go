// Command soak watches a running edgeguard under a long load: every
// interval it reads the process's own gauges from the admin listener's
// /metrics (live heap, heap in use, resident memory, goroutines, open file
// descriptors) and the latency of a steady trickle of probe requests it
// sends itself, and at the end writes the series as a TSV file, a Markdown
// table with a verdict on each gauge (flat after warm-up, or growing), and
// a PNG plot. bench/soak.sh starts edgeguard and the load and runs it.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sample is one interval's readings.
type sample struct {
	at         time.Duration // since the start
	live       float64       // bytes the last GC kept: what a leak grows
	heap, rss  float64       // bytes
	goroutines float64
	fds        float64
	p99        time.Duration // of the interval's probes
	probes     int
	failed     int
}

// gauges are the /metrics series a sample reads, by name.
var gauges = map[string]func(*sample, float64){
	"go_gc_heap_live_bytes":         func(s *sample, v float64) { s.live = v },
	"go_memstats_heap_inuse_bytes":  func(s *sample, v float64) { s.heap = v },
	"process_resident_memory_bytes": func(s *sample, v float64) { s.rss = v },
	"go_goroutines":                 func(s *sample, v float64) { s.goroutines = v },
	"process_open_fds":              func(s *sample, v float64) { s.fds = v },
}

func main() {
	admin := flag.String("admin", "", "edgeguard's admin address (host:port)")
	edge := flag.String("edge", "", "edgeguard's edge address the probes go to (host:port)")
	duration := flag.Duration("d", 10*time.Minute, "how long to watch")
	every := flag.Duration("every", 10*time.Second, "sampling interval")
	warmup := flag.Duration("warmup", time.Minute, "samples before this are shown but not judged")
	rate := flag.Int("probes", 20, "probe requests per second")
	out := flag.String("o", ".", "directory for soak.tsv, soak.md and soak.png")
	flag.Parse()
	if *admin == "" || *edge == "" {
		fmt.Fprintln(os.Stderr, "soak: -admin and -edge are required")
		os.Exit(2)
	}
	samples, err := watch(*admin, *edge, *duration, *every, *rate)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
	if err := write(*out, samples, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// watch samples until duration has passed.
func watch(admin, edge string, duration, every time.Duration, rate int) ([]sample, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	var mu sync.Mutex
	var lat []time.Duration
	var failed int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Probes leave at the set rate whether or not earlier ones have been
	// answered (an open-loop trickle, as users arrive), at most 16 in
	// flight, so that a slow target's backlog of probes does not become
	// the load; one that cannot leave for that bound counts as failed.
	inflight := make(chan struct{}, 16)
	wg.Go(func() {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			select {
			case inflight <- struct{}{}:
			default:
				mu.Lock()
				failed++
				mu.Unlock()
				continue
			}
			wg.Go(func() {
				defer func() { <-inflight }()
				d, err := probe(client, edge)
				mu.Lock()
				if err != nil {
					failed++
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			})
		}
	})
	defer func() { close(stop); wg.Wait() }()

	start := time.Now()
	var out []sample
	tick := time.NewTicker(every)
	defer tick.Stop()
	for range tick.C {
		s, err := scrape(client, admin)
		if err != nil {
			return out, err
		}
		s.at = time.Since(start)
		mu.Lock()
		s.p99, s.probes, s.failed = quantile(lat, 0.99), len(lat), failed
		lat, failed = lat[:0], 0
		mu.Unlock()
		out = append(out, s)
		fmt.Fprintf(os.Stderr, "soak: %s\n", s.row())
		if s.at >= duration {
			return out, nil
		}
	}
	return out, nil
}

// probe sends one benign GET and returns how long the answer took.
func probe(c *http.Client, edge string) (time.Duration, error) {
	began := time.Now()
	resp, err := c.Get("http://" + edge + "/soak-probe")
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("probe: %s", resp.Status)
	}
	return time.Since(began), nil
}

// scrape reads the gauges from admin's /metrics.
func scrape(c *http.Client, admin string) (sample, error) {
	var s sample
	resp, err := c.Get("http://" + admin + "/metrics")
	if err != nil {
		return s, fmt.Errorf("reading metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("reading metrics: %s", resp.Status)
	}
	seen := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		set := gauges[name]
		if !ok || set == nil {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return s, fmt.Errorf("metrics: %s %q: %w", name, value, err)
		}
		set(&s, v)
		seen++
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("reading metrics: %w", err)
	}
	if seen != len(gauges) {
		return s, fmt.Errorf("metrics: found %d of the %d gauges soak reads", seen, len(gauges))
	}
	return s, nil
}

// quantile returns the q-quantile of d (nearest rank), 0 for none.
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func (s sample) row() string {
	return fmt.Sprintf("| %s | %.1f | %.1f | %.1f | %.0f | %.0f | %.1f | %d | %d |",
		s.at.Round(time.Second), s.live/(1<<20), s.heap/(1<<20), s.rss/(1<<20), s.goroutines, s.fds,
		float64(s.p99.Microseconds())/1000, s.probes, s.failed)
}

// growth compares the mean of the last third of the samples after warm-up
// with the mean of the first third: 1.0 is flat. Thirds rather than a few
// samples at each end, because a gauge that swings with the GC cycle
// (minutes apart under a WAF's allocation rate) would otherwise be judged
// by where the two ends happened to fall in their swings.
func growth(samples []sample, warmup time.Duration, value func(sample) float64) (float64, bool) {
	var judged []float64
	for _, s := range samples {
		if s.at >= warmup {
			judged = append(judged, value(s))
		}
	}
	if len(judged) < 6 {
		return 0, false
	}
	mean := func(v []float64) float64 {
		t := 0.0
		for _, x := range v {
			t += x
		}
		return t / float64(len(v))
	}
	third := len(judged) / 3
	first, last := mean(judged[:third]), mean(judged[len(judged)-third:])
	if first == 0 {
		return 0, false
	}
	return last / first, true
}

// series are the plotted and judged gauges: name, unit, value, and the
// growth after warm-up that still counts as flat (0: shown, not judged).
var series = []struct {
	name, unit string
	value      func(sample) float64
	flat       float64
}{
	{"live heap", "MiB", func(s sample) float64 { return s.live / (1 << 20) }, 1.10},
	// Heap in use holds the garbage of the current GC cycle too: it swings
	// between the live heap and about twice it, whatever the trend.
	{"heap in use", "MiB", func(s sample) float64 { return s.heap / (1 << 20) }, 0},
	{"resident memory", "MiB", func(s sample) float64 { return s.rss / (1 << 20) }, 1.10},
	{"goroutines", "", func(s sample) float64 { return s.goroutines }, 1.10},
	{"open file descriptors", "", func(s sample) float64 { return s.fds }, 1.10},
	{"probe p99", "ms", func(s sample) float64 { return float64(s.p99.Microseconds()) / 1000 }, 1.50},
}

func write(dir string, samples []sample, warmup time.Duration) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var tsv strings.Builder
	tsv.WriteString("seconds\tlive_heap_bytes\theap_bytes\trss_bytes\tgoroutines\topen_fds\tprobe_p99_us\tprobes\tfailed\n")
	for _, s := range samples {
		fmt.Fprintf(&tsv, "%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%d\t%d\n", s.at.Seconds(), s.live, s.heap, s.rss,
			s.goroutines, s.fds, s.p99.Microseconds(), s.probes, s.failed)
	}
	if err := os.WriteFile(filepath.Join(dir, "soak.tsv"), []byte(tsv.String()), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "Judged after a warm-up of %s: the mean of the last third of the samples over the mean of the first third.\n\n", warmup)
	md.WriteString("| gauge | growth | verdict |\n|---|---:|---|\n")
	for _, g := range series {
		r, ok := growth(samples, warmup, g.value)
		switch {
		case !ok:
			fmt.Fprintf(&md, "| %s | – | too few samples after warm-up |\n", g.name)
		case g.flat == 0:
			fmt.Fprintf(&md, "| %s | %.2f× | not judged: swings with the GC cycle |\n", g.name, r)
		case r <= g.flat:
			fmt.Fprintf(&md, "| %s | %.2f× | flat (≤ %.2f×) |\n", g.name, r, g.flat)
		default:
			fmt.Fprintf(&md, "| %s | %.2f× | **grows** (> %.2f×) |\n", g.name, r, g.flat)
		}
	}
	md.WriteString("\n| time | live heap MiB | heap in use MiB | RSS MiB | goroutines | open fds | probe p99 ms | probes | failed |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range samples {
		md.WriteString(s.row() + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "soak.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	fmt.Print(md.String())
	return plotPNG(filepath.Join(dir, "soak.png"), samples, warmup)
}
