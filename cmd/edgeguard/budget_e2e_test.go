package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestE2EWAFBudgetFlood: while 8 clients keep sending benign JSON bodies
// holding one 1 MB string (seconds of CRS time each), small GETs' p99
// latency stays within 3× its unloaded value, because large bodies are
// evaluated in a lane of their own and the rest are refused with 503 and
// Retry-After before their bodies are read.
func TestE2EWAFBudgetFlood(t *testing.T) {
	const floodPause = 50 * time.Millisecond
	if raceDetector {
		t.Skip("latency test: not under -race, which slows CRS several times and unevenly")
	}
	up := echoUpstream(t)
	p := start(t, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
stages: [waf]
waf: {body_limit: 2MiB, large_body_concurrent: 1, large_body_queue: 1}
`, up.URL)
	getURL := "http://" + p.edge + "/catalog/shoes?page=2&sort=price"
	c := &http.Client{Timeout: 10 * time.Second}

	measure := func(n int) time.Duration {
		t.Helper()
		lat := make([]time.Duration, 0, n)
		for range n {
			start := time.Now()
			resp, err := c.Get(getURL)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET: %d, want 200", resp.StatusCode)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		return lat[len(lat)*99/100]
	}
	measure(50) // warm up: connections, CRS's caches
	unloaded := measure(300)

	body := []byte(`{"text":"` + strings.Repeat("The committee will meet on Tuesday to review the quarterly figures. ", 1<<20/68) + `"}`)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	retryAfter := map[string]int{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fc := &http.Client{}
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+p.edge+"/api/notes", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := fc.Do(req)
				if err != nil {
					continue // the edge closed a connection whose body it refused to read
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				codes[resp.StatusCode]++
				if resp.StatusCode == http.StatusServiceUnavailable {
					retryAfter[resp.Header.Get("Retry-After")]++
				}
				mu.Unlock()
				// Back again soon, but not in a spin: the pressure under test
				// is evaluation, a connection flood is volumetric's to stop.
				select {
				case <-ctx.Done():
				case <-time.After(floodPause):
				}
			}
		}()
	}
	// Let the flood fill the large lane and its queue.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		refused := codes[http.StatusServiceUnavailable]
		mu.Unlock()
		if refused >= 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 503 from the flood after 10s: %v", codes)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Up to three windows of 300 GETs under the flood, the first within
	// the bound passes. On a two-core machine the large lane holds one
	// core and the test process shares the other, so one window's p99 (its
	// third-slowest GET) lands above 3× in about one run of five (measured
	// 1.2–4.3× over 35 runs at idle); a GET queued behind the large lane
	// would wait out a whole 1 MB evaluation (~0.5 s, over 100×) in every
	// window.
	var windows []time.Duration
	for range 3 {
		loaded := measure(300)
		windows = append(windows, loaded)
		if loaded <= 3*unloaded {
			break
		}
	}
	stop()
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	loaded := windows[len(windows)-1]
	t.Logf("GET p99 unloaded %v, under the flood %v (%.2f×, windows %v); flood answers %v, Retry-After %v",
		unloaded, loaded, float64(loaded)/float64(unloaded), windows, codes, retryAfter)
	if loaded > 3*unloaded {
		t.Errorf("GET p99 under the flood %v > 3 × unloaded %v in each of %d windows", windows, unloaded, len(windows))
	}
	if retryAfter["1"] == 0 || len(retryAfter) != 1 {
		t.Errorf("503s carry Retry-After %v, want 1 (queue_timeout's default, 1s)", retryAfter)
	}
	metrics := fetchText(t, "http://"+p.admin+"/metrics")
	if !strings.Contains(metrics, `edgeguard_waf_budget_refusals_total{lane="large",reason="queue_full"}`) {
		t.Errorf("metrics lack the large lane's refusals:\n%s", grepLines(metrics, "waf_budget"))
	}
	if !strings.Contains(metrics, `edgeguard_waf_budget_refusals_total{lane="small",reason="queue_full"} 0`) {
		t.Errorf("small lane refused requests:\n%s", grepLines(metrics, "waf_budget"))
	}
}

func fetchText(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
