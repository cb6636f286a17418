package waf

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// budgetConfig has one slot and one waiting place in each lane, and a
// threshold small enough for a test body.
func budgetConfig() Config {
	return Config{MaxConcurrent: 1, Queue: 1, LargeBodyConcurrent: 1, LargeBodyQueue: 1, LargeBodyThreshold: 1 << 10}
}

// occupy holds every slot of lane l and fills its waiting room; the
// returned function gives them back. Call it inside a synctest bubble.
func occupy(t *testing.T, f *Filter, l lane) (release func()) {
	t.Helper()
	g := f.budget.lanes[l]
	for range g.Limit() {
		if err := g.Acquire(context.Background()); err != nil {
			t.Fatalf("occupying the %s lane: %v", l, err)
		}
	}
	for range g.Room() {
		go func() {
			if g.Acquire(context.Background()) == nil {
				g.Release()
			}
		}()
	}
	synctest.Wait()
	if s := g.State(); s.InFlight != g.Limit() || s.Queued != g.Room() {
		t.Fatalf("occupying the %s lane: %+v", l, s)
	}
	return func() {
		for range g.Limit() {
			g.Release()
		}
	}
}

// chunked makes r's body of unknown length, as a chunked upload is.
func chunked(r *filters.Request) *filters.Request {
	r.HTTP.ContentLength = -1
	r.HTTP.Header.Del("Content-Length")
	r.HTTP.Body = io.NopCloser(r.HTTP.Body)
	return r
}

// A request goes to the lane its body size says, by Content-Length or, when
// there is none, by the bytes read; with that lane full it is refused with
// 503 and Retry-After, and the other lane's requests are untouched.
func TestBudgetLanes(t *testing.T) {
	small := benignJSON(512)
	large := benignJSON(4 << 10)
	tests := []struct {
		name     string
		full     lane
		req      func() *filters.Request
		wantDeny bool
	}{
		{"GET, small lane full", laneSmall, func() *filters.Request { return newRequest("GET", "/", "", browserHeaders) }, true},
		{"GET, large lane full", laneLarge, func() *filters.Request { return newRequest("GET", "/", "", browserHeaders) }, false},
		{"small body, small lane full", laneSmall, func() *filters.Request { return newRequest("POST", "/api", small, jsonHeaders()) }, true},
		{"small body, large lane full", laneLarge, func() *filters.Request { return newRequest("POST", "/api", small, jsonHeaders()) }, false},
		{"large body, large lane full", laneLarge, func() *filters.Request { return newRequest("POST", "/api", large, jsonHeaders()) }, true},
		{"large body, small lane full", laneSmall, func() *filters.Request { return newRequest("POST", "/api", large, jsonHeaders()) }, false},
		{"chunked large body, large lane full", laneLarge, func() *filters.Request { return chunked(newRequest("POST", "/api", large, jsonHeaders())) }, true},
		{"chunked small body, large lane full", laneLarge, func() *filters.Request { return chunked(newRequest("POST", "/api", small, jsonHeaders())) }, false},
	}
	f := newTestFilter(t, budgetConfig())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			counter := "waf_budget_refusals_total{lane," + tc.full.String() + ",reason,queue_full}"
			before := metrics(f)[counter]
			var v filters.Verdict
			synctest.Test(t, func(t *testing.T) {
				release := occupy(t, f, tc.full)
				defer release()
				r := tc.req()
				v = f.Check(r)
				r.Finish()
			})
			if v.Deny != tc.wantDeny {
				t.Fatalf("verdict %+v, want deny=%v", v, tc.wantDeny)
			}
			if !tc.wantDeny {
				return
			}
			if v.Status != http.StatusServiceUnavailable || v.RetryAfter != time.Second || !v.Overload || v.Shadow {
				t.Fatalf("refusal %+v, want an enforced 503, Retry-After 1s, marked Overload", v)
			}
			want := "waf " + tc.full.String() + " lane: queue_full"
			if v.Reason != want {
				t.Fatalf("reason %q, want %q", v.Reason, want)
			}
			if got := metrics(f)[counter]; got != before+1 {
				t.Fatalf("%s went from %v to %v, want one more", counter, before, got)
			}
		})
	}
}

func metrics(f *Filter) map[string]float64 {
	got := map[string]float64{}
	f.CollectMetrics(func(s filters.Sample) { got[s.Name+"{"+strings.Join(s.Labels, ",")+"}"] = s.Value })
	return got
}

// A request waits in the queue, first in first out, and runs as soon as the
// slot is free; one that waits queue_timeout is refused, counted and not
// audited. The clock is synctest's: no real waiting.
func TestBudgetQueue(t *testing.T) {
	dir := t.TempDir()
	cfg := budgetConfig()
	cfg.Queue, cfg.QueueTimeout, cfg.Audit = 1, filters.Duration(3*time.Second), dir+"/audit.log"
	f := newTestFilter(t, cfg)
	synctest.Test(t, func(t *testing.T) {
		g := f.budget.lanes[laneSmall]
		if err := g.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
		done := make(chan filters.Verdict)
		go func() {
			r := newRequest("GET", "/", "", browserHeaders)
			defer r.Finish()
			done <- f.Check(r)
		}()
		synctest.Wait()
		if s := g.State(); s.Queued != 1 {
			t.Fatalf("state %+v, want the request queued", s)
		}
		time.Sleep(2 * time.Second) // fake clock: within the timeout
		g.Release()
		if v := <-done; v.Deny {
			t.Fatalf("queued request, slot freed: %+v, want allowed", v)
		}

		if err := g.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r := newRequest("GET", "/", "", browserHeaders)
		v := f.Check(r)
		r.Finish()
		if waited := time.Since(start); v.Status != http.StatusServiceUnavailable || waited != 3*time.Second {
			t.Fatalf("verdict %+v after %v, want 503 after queue_timeout (3s)", v, waited)
		}
		if v.Reason != "waf small lane: queue_timeout" || v.RetryAfter != 3*time.Second {
			t.Fatalf("reason %q retry after %v", v.Reason, v.RetryAfter)
		}
		g.Release()
	})
	if m := metrics(f); m["waf_budget_refusals_total{lane,small,reason,queue_timeout}"] != 1 || m["waf_budget_in_flight{lane,small}"] != 0 {
		t.Fatalf("metrics %v", m)
	}
	if evs := readAudit(t, dir+"/audit.log"); len(evs) != 0 {
		t.Fatalf("budget refusals audited: %+v", evs)
	}
}

// A client that goes away while queued stops waiting and is counted as
// canceled.
func TestBudgetClientGone(t *testing.T) {
	cfg := budgetConfig()
	cfg.Queue = 1
	f := newTestFilter(t, cfg)
	synctest.Test(t, func(t *testing.T) {
		occupyFirst := f.budget.lanes[laneSmall]
		if err := occupyFirst.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
		defer occupyFirst.Release()
		ctx, cancel := context.WithCancel(context.Background())
		r := newRequest("GET", "/", "", browserHeaders)
		r.HTTP = r.HTTP.WithContext(ctx)
		done := make(chan filters.Verdict)
		go func() { defer r.Finish(); done <- f.Check(r) }()
		synctest.Wait()
		cancel()
		if v := <-done; v.Reason != "waf small lane: canceled" {
			t.Fatalf("verdict %+v, want refused as canceled", v)
		}
	})
	if m := metrics(f); m["waf_budget_refusals_total{lane,small,reason,canceled}"] != 1 {
		t.Fatalf("metrics %v", m)
	}
}

// No slot is held while a body arrives: a client trickling its body must not
// keep others from being evaluated.
func TestBudgetNoSlotWhileReadingBody(t *testing.T) {
	f := newTestFilter(t, budgetConfig())
	synctest.Test(t, func(t *testing.T) {
		pr, pw := io.Pipe()
		slow := newRequest("POST", "/api", "", jsonHeaders())
		slow.HTTP.Body, slow.HTTP.ContentLength = pr, 64
		slow.HTTP.Header.Set("Content-Length", "64")
		done := make(chan filters.Verdict)
		go func() { defer slow.Finish(); done <- f.Check(slow) }()
		io.WriteString(pw, `{"a":`)
		synctest.Wait() // the slow request is reading its body
		if s := f.budget.lanes[laneSmall].State(); s.InFlight != 0 {
			t.Fatalf("a slot is held while the body arrives: %+v", s)
		}
		r := newRequest("GET", "/", "", browserHeaders)
		if v := f.Check(r); v.Deny {
			t.Fatalf("GET while another body arrives: %+v", v)
		}
		r.Finish()
		io.WriteString(pw, `"b"}`)
		pw.Close()
		if v := <-done; v.Deny {
			t.Fatalf("slow body: %+v", v)
		}
	})
}

// In shadow mode a refusal is reported as the deny it would be and the
// request goes on.
func TestBudgetShadow(t *testing.T) {
	cfg := budgetConfig()
	cfg.Mode = filters.ModeShadow
	f := newTestFilter(t, cfg)
	var v filters.Verdict
	synctest.Test(t, func(t *testing.T) {
		defer occupy(t, f, laneSmall)()
		r := newRequest("GET", "/", "", browserHeaders)
		v = f.Check(r)
		r.Finish()
	})
	if !v.Deny || !v.Shadow || v.Status != http.StatusServiceUnavailable {
		t.Fatalf("verdict %+v, want a shadow 503", v)
	}
}

// A reload with the same budget keeps the gates (requests in flight stay
// counted against the new Filter); a changed budget gets new ones.
func TestBudgetReload(t *testing.T) {
	f := newTestFilter(t, budgetConfig())
	same, err := New(budgetConfig(), filters.Env{Previous: f})
	if err != nil {
		t.Fatal(err)
	}
	defer same.Close()
	if same.budget.lanes != f.budget.lanes {
		t.Error("same budget: gates not carried over")
	}
	cfg := budgetConfig()
	cfg.MaxConcurrent = 3
	changed, err := New(cfg, filters.Env{Previous: f})
	if err != nil {
		t.Fatal(err)
	}
	defer changed.Close()
	if changed.budget.lanes[laneSmall] == f.budget.lanes[laneSmall] || changed.budget.lanes[laneSmall].Limit() != 3 {
		t.Error("changed budget: gates not rebuilt")
	}
}

func TestBudgetDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	procs := runtime.GOMAXPROCS(0)
	if c.MaxConcurrent != procs || c.Queue != 64*procs || c.QueueTimeout != filters.Duration(time.Second) ||
		c.LargeBodyThreshold != 64<<10 || c.LargeBodyConcurrent != max(1, procs/4) || c.LargeBodyQueue != 2*c.LargeBodyConcurrent {
		t.Fatalf("defaults %+v", c)
	}
}
