package forward

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// nginx's own example: weights 5, 1, 1 give a a b a c a a, spread out.
func TestSmoothRoundRobinOrder(t *testing.T) {
	p, err := newPool("p", Pool{
		Backends: []string{"http://10.1.0.1:80", "http://10.1.0.2:80", "http://10.1.0.3:80"},
		Weights:  map[string]int{"http://10.1.0.1:80": 5},
	}, discard)
	if err != nil {
		t.Fatal(err)
	}
	name := map[*backend]string{p.backends[0]: "a", p.backends[1]: "b", p.backends[2]: "c"}
	var got []string
	for range 14 {
		got = append(got, name[p.pick(t0.UnixNano(), filters.Key{}, nil)])
	}
	if want := "aabacaaaabacaa"; strings.Join(got, "") != want {
		t.Fatalf("order %s, want %s", strings.Join(got, ""), want)
	}
}

// A backend that is out gives its share to all the others by their
// weights, not to its neighbour in the list.
func TestSmoothRoundRobinSpreadsAnOutBackendsShare(t *testing.T) {
	tests := []struct {
		name    string
		weights []int
		out     int
		want    []int // picks per backend of 600
	}{
		{"equal, first out", []int{1, 1, 1}, 0, []int{0, 300, 300}},
		{"equal, middle out", []int{1, 1, 1}, 1, []int{300, 0, 300}},
		{"weighted, middle out", []int{2, 1, 3}, 1, []int{240, 0, 360}},
		{"weighted, none out", []int{2, 1, 3}, -1, []int{200, 100, 300}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Pool{Weights: map[string]int{}}
			for i, w := range tt.weights {
				u := fmt.Sprintf("http://10.1.0.%d:80", i+1)
				cfg.Backends = append(cfg.Backends, u)
				cfg.Weights[u] = w
			}
			p, err := newPool("p", cfg, discard)
			if err != nil {
				t.Fatal(err)
			}
			p.outlier.panicPercent = 0
			if tt.out >= 0 {
				p.backends[tt.out].ejectedUntil.Store(t0.Add(time.Hour).UnixNano())
			}
			counts := map[*backend]int{}
			for range 600 {
				counts[p.pick(t0.UnixNano(), filters.Key{}, nil)]++
			}
			for i, b := range p.backends {
				if counts[b] != tt.want[i] {
					t.Errorf("backend %d: %d picks, want %d", i, counts[b], tt.want[i])
				}
			}
		})
	}
}

// With three backends, one refusing connections, the two live ones share
// the load evenly (±5 %), both while the dead one is still tried (and every
// request that meets it is retried) and after it has been ejected.
func TestDeadBackendsShareIsSpreadEvenly(t *testing.T) {
	a := startBackend(t, "a", nil)
	c := startBackend(t, "c", nil)
	now := t0
	for _, order := range [][]string{{"dead", "a", "c"}, {"a", "dead", "c"}, {"a", "c", "dead"}} {
		t.Run(strings.Join(order, ","), func(t *testing.T) {
			var urls []string
			for _, n := range order {
				switch n {
				case "a":
					urls = append(urls, a.url())
				case "c":
					urls = append(urls, c.url())
				default:
					urls = append(urls, "http://"+deadAddr(t))
				}
			}
			f := newForwarder(t, Config{Upstreams: map[string]Pool{"web": {
				Backends: urls,
				Outlier:  Outlier{Failures: 1000, Window: filters.Duration(time.Hour), Ejection: filters.Duration(time.Hour), MaxEjection: filters.Duration(time.Hour)},
			}}, Routes: []Route{{Path: "/", Upstream: "web"}}}, Env{Clock: func() time.Time { return now }})
			share := func(phase string) {
				t.Helper()
				a0, c0 := a.hits.Load(), c.hits.Load()
				for range 200 {
					if w := do(f, "GET", "/", nil, clientReq("203.0.113.7")); w.Code != 200 {
						t.Fatalf("%s: status %d", phase, w.Code)
					}
				}
				na, nc := a.hits.Load()-a0, c.hits.Load()-c0
				if na+nc != 200 || math.Abs(float64(na)/200-0.5) > 0.05 {
					t.Fatalf("%s: live backends got %d and %d of 200, want each 50 %% ± 5 %%", phase, na, nc)
				}
			}
			share("before ejection")
			p := f.byPool["web"]
			dead := p.backends[indexOf(order, "dead")]
			if dead.ejections.Load() != 0 || dead.failures.Load() == 0 {
				t.Fatalf("before: the dead backend failed %d times and was ejected %d times, want tried and not ejected", dead.failures.Load(), dead.ejections.Load())
			}
			p.outlier.failures = 1 // the next failure ejects it
			for range 3 {
				do(f, "GET", "/", nil, clientReq("203.0.113.7"))
			}
			if dead.ejections.Load() != 1 {
				t.Fatalf("the dead backend was ejected %d times, want once", dead.ejections.Load())
			}
			share("after ejection")
		})
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// How many backends of a pool passive ejection may take out at once.
func TestEjectionCap(t *testing.T) {
	tests := []struct {
		n, percent int
		want       int
	}{
		{1, 50, 0}, {1, 100, 0}, // the last backend is never ejected
		{2, 50, 1}, {2, 100, 1}, {2, 49, 0},
		{3, 50, 1}, {4, 50, 2}, {10, 50, 5}, {10, 10, 1}, {10, 100, 9}, {10, 0, 0},
	}
	for _, tt := range tests {
		p := testPool(t, RoundRobin, tt.n)
		p.outlier.failures, p.outlier.maxPercent = 1, tt.percent
		ejected := 0
		for _, b := range p.backends {
			if b.fail(t0) {
				ejected++
			}
		}
		if ejected != tt.want {
			t.Errorf("%d backends, max %d %%: %d ejected, want %d", tt.n, tt.percent, ejected, tt.want)
		}
		capped := uint64(0)
		for _, b := range p.backends {
			capped += b.capped.Load()
		}
		if int(capped) != tt.n-tt.want {
			t.Errorf("%d backends, max %d %%: %d ejections refused, want %d", tt.n, tt.percent, capped, tt.n-tt.want)
		}
	}
	// A backend down by active checks counts as out: its neighbour is
	// the last one available and is not ejected.
	p := testPool(t, RoundRobin, 2)
	p.outlier.failures = 1
	p.check.unhealthy = 1
	p.backends[0].recordCheck(false, t0)
	if p.backends[1].fail(t0) {
		t.Fatal("ejected the last available backend")
	}
}

// Panic mode: with too few backends available, a pick ignores passive
// ejection (but not active checks) rather than finding nothing.
func TestPanicThreshold(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		ejected []int
		down    []int
		panicAt int
		want    []int // backends the picks may return; nil: none
	}{
		{"half available is enough", 2, []int{0}, nil, 50, []int{1}},
		{"one of three below half", 3, []int{0}, []int{1}, 50, []int{0, 2}},
		{"none available: the ejected one serves", 2, []int{1}, []int{0}, 50, []int{1}},
		{"panic off", 2, []int{1}, []int{0}, 0, nil},
		{"all down by checks", 2, nil, []int{0, 1}, 50, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, pol := range []string{RoundRobin, LeastOutstanding, ConsistentHash} {
				p := testPool(t, pol, tt.n)
				p.outlier.panicPercent = tt.panicAt
				p.outlier.maxPercent = 100
				p.check.unhealthy = 1
				for _, i := range tt.ejected {
					p.eject(p.backends[i], t0, time.Hour)
				}
				for _, i := range tt.down {
					p.backends[i].recordCheck(false, t0)
				}
				seen := map[int]bool{}
				for k := range 60 {
					b := p.pick(t0.UnixNano(), keyN(k), nil)
					if b == nil {
						seen[-1] = true
						continue
					}
					seen[indexOfBackend(p, b)] = true
				}
				want := map[int]bool{}
				for _, i := range tt.want {
					want[i] = true
				}
				if len(tt.want) == 0 {
					want[-1] = true
				}
				if fmt.Sprint(seen) != fmt.Sprint(want) && !(pol != RoundRobin && subset(seen, want)) {
					t.Errorf("%s: picked %v, want %v", pol, seen, want)
				}
			}
		})
	}
}

func indexOfBackend(p *pool, b *backend) int {
	for i, x := range p.backends {
		if x == b {
			return i
		}
	}
	return -2
}

// subset: consistent hashing and least outstanding need not spread the
// picks over every eligible backend, only stay among them.
func subset(got, want map[int]bool) bool {
	for k := range got {
		if !want[k] {
			return false
		}
	}
	return len(got) > 0
}

// The outlier statuses: by default the gateway failures count and a 500
// does not; a configured list replaces them.
func TestOutlierStatuses(t *testing.T) {
	def := newOutlierSettings(Outlier{})
	own := newOutlierSettings(Outlier{Statuses: []int{500, 599}})
	for _, tt := range []struct {
		status   int
		def, own bool
	}{
		{200, false, false}, {404, false, false}, {499, false, false}, {500, false, true}, {501, false, false},
		{502, true, false}, {503, true, false}, {504, true, false}, {505, false, false}, {599, false, true}, {600, false, false},
	} {
		if got := def.failStatus(tt.status); got != tt.def {
			t.Errorf("default: %d counts = %v, want %v", tt.status, got, tt.def)
		}
		if got := own.failStatus(tt.status); got != tt.own {
			t.Errorf("[500, 599]: %d counts = %v, want %v", tt.status, got, tt.own)
		}
	}
}

// A client that makes the application fail in a loop never turns the
// rest of the site into 503s: a 500 does not count, and a 503 it provokes
// cannot eject the last available backend.
func TestClientProvokedErrorsNeverTakeThePoolDown(t *testing.T) {
	app := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/boom" {
				w.WriteHeader(status)
				return
			}
			w.Write([]byte("ok"))
		}
	}
	for _, tt := range []struct {
		name     string
		status   int
		backends int
	}{
		{"500, one backend", 500, 1},
		{"503, one backend", 503, 1},
		{"503, two backends", 503, 2},
		{"502, three backends", 502, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var urls []string
			for i := range tt.backends {
				urls = append(urls, startBackend(t, fmt.Sprint(i), app(tt.status)).url())
			}
			now := t0
			f := newForwarder(t, Config{Upstreams: map[string]Pool{"web": {Backends: urls}},
				Routes: []Route{{Path: "/", Upstream: "web"}}}, Env{Clock: func() time.Time { return now }})
			// Rounds of ten errors in a row (a run long enough to eject),
			// each followed by a request of another client to /.
			for i := range 50 {
				for j := range 10 {
					now = t0.Add(time.Duration(i*10+j) * 100 * time.Millisecond)
					if w := do(f, "GET", "/boom", nil, clientReq("203.0.113.66")); w.Code != tt.status {
						t.Fatalf("/boom: %d, want %d from the app", w.Code, tt.status)
					}
				}
				if w := do(f, "GET", "/", nil, clientReq("203.0.113.7")); w.Code != 200 {
					t.Fatalf("after %d rounds of provoked errors: / answered %d %q", i+1, w.Code, w.Body.String())
				}
			}
			p := f.byPool["web"]
			var failures, ejections uint64
			for _, b := range p.backends {
				failures += b.failures.Load()
				ejections += b.ejections.Load()
			}
			if tt.status == 500 && failures != 0 {
				t.Fatalf("%d failures counted for 500 answers, want 0", failures)
			}
			if tt.backends == 1 && ejections != 0 {
				t.Fatalf("the only backend was ejected %d times, want never", ejections)
			}
			avail := 0
			for _, b := range p.backends {
				if b.available(now.UnixNano()) {
					avail++
				}
			}
			if min := tt.backends - tt.backends*DefaultMaxEjectionPercent/100; avail < min || (tt.backends == 1 && avail != 1) {
				t.Fatalf("%d of %d backends available, want at least %d", avail, tt.backends, min)
			}
		})
	}
}

// An upload the client breaks off is the client's failure: it never counts
// against the backend.
func TestBrokenRequestBodyIsNotABackendFailure(t *testing.T) {
	be := startBackend(t, "a", nil)
	f := newForwarder(t, Config{Upstreams: map[string]Pool{"web": {Backends: []string{be.url()}}},
		Routes: []Route{{Path: "/", Upstream: "web"}}}, Env{})
	for range 10 {
		r, _ := http.NewRequest("POST", "/upload", &brokenReader{n: 1000})
		r.ContentLength = 1 << 20
		fr := clientReq("203.0.113.66")
		fr.HTTP = r
		r = r.WithContext(filters.WithRequest(r.Context(), fr))
		f.ServeHTTP(nopWriter{}, r)
	}
	if n := f.byPool["web"].backends[0].failures.Load(); n != 0 {
		t.Fatalf("%d failures counted against the backend, want 0", n)
	}
}

// brokenReader yields n bytes, then fails as a client connection that
// went away does.
type brokenReader struct{ n int }

func (b *brokenReader) Read(p []byte) (int, error) {
	if b.n == 0 {
		return 0, fmt.Errorf("client connection reset")
	}
	k := min(len(p), b.n)
	b.n -= k
	for i := range p[:k] {
		p[i] = 'x'
	}
	return k, nil
}

type nopWriter struct{}

func (nopWriter) Header() http.Header         { return http.Header{} }
func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (nopWriter) WriteHeader(int)             {}

var discard = slog.New(slog.DiscardHandler)
