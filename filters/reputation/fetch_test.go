package reputation

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// listServer publishes a list the way Spamhaus and FireHOL's mirrors do:
// with an ETag and a Last-Modified, answering 304 to a request that
// carries the current validator. The test changes what it serves.
type listServer struct {
	*httptest.Server
	mu       sync.Mutex
	body     string
	etag     string // "" sends none
	lastMod  string // "" sends none
	status   int    // non-zero: answer this instead
	requests []http.Header
}

func newListServer(t *testing.T, body, etag string) *listServer {
	t.Helper()
	s := &listServer{body: body, etag: etag}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.requests = append(s.requests, r.Header.Clone())
		if s.status != 0 {
			w.WriteHeader(s.status)
			return
		}
		if s.etag != "" {
			w.Header().Set("ETag", s.etag)
		}
		if s.lastMod != "" {
			w.Header().Set("Last-Modified", s.lastMod)
		}
		if (s.etag != "" && r.Header.Get("If-None-Match") == s.etag) ||
			(s.etag == "" && s.lastMod != "" && r.Header.Get("If-Modified-Since") == s.lastMod) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		_, _ = w.Write([]byte(s.body))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *listServer) set(fn func(s *listServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(s)
}

// lastRequest returns the headers of the last request and how many came.
func (s *listServer) lastRequest() (http.Header, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return nil, 0
	}
	return s.requests[len(s.requests)-1], len(s.requests)
}

// fakeClock is a settable clock for the fetch schedule.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// buildURLFilter builds a Filter following srv's list from dir, whose
// background loop never runs during the test (the watch interval is a
// day): the test drives refreshRemote itself, on the fake clock.
func buildURLFilter(t *testing.T, dir string, srv *listServer, clock *fakeClock) (*Filter, error) {
	t.Helper()
	f, err := build(Config{
		Lists:         []List{{URL: srv.URL + "/drop.txt", Action: ActionDeny, Every: filters.Duration(time.Hour)}},
		WatchInterval: filters.Duration(24 * time.Hour),
	}, filters.Env{Dir: dir, IPv6Prefix: 64}, clock.Now)
	if err == nil {
		t.Cleanup(func() { f.Close() })
	}
	return f, err
}

const dropList = "; Spamhaus DROP List 2026/12/01\n1.10.16.0/20 ; SBL256894\n1.19.0.0/16 ; SBL434604\n"

// TestListURLFollowed walks a followed list through its life on a fake
// clock: fetched at start and kept beside the config, not fetched again
// before it is due, revalidated with If-None-Match (304 keeps it), replaced
// when the server has a new one, and kept whole when a fetch fails or
// brings something that is not a list.
func TestListURLFollowed(t *testing.T) {
	srv := newListServer(t, dropList, `"v1"`)
	clock := &fakeClock{now: t0}
	dir := t.TempDir()
	f, err := buildURLFilter(t, dir, srv, clock)
	if err != nil {
		t.Fatal(err)
	}
	if f.decide(netipAddr("1.10.16.5"), t0) != denyListed {
		t.Fatal("list fetched at start not in force")
	}
	cached, _ := filepath.Glob(filepath.Join(dir, DefaultCacheDir, "127.0.0.1-*.txt"))
	if len(cached) != 1 {
		t.Fatalf("copy kept on disk: %v", cached)
	}
	ctx := context.Background()
	refresh := func(d time.Duration) {
		clock.Advance(d)
		f.refreshRemote(ctx, clock.Now())
	}

	steps := []struct {
		name      string
		advance   time.Duration
		serve     func(s *listServer)
		requests  int    // total so far
		header    string // header the last request must carry, "Name: value"
		inForce   string // an address that must be deny-listed after the step
		notListed string // and one that must not
		errors    float64
	}{
		{name: "not due yet", advance: 59 * time.Minute, requests: 1, inForce: "1.10.16.5", notListed: "203.0.113.1"},
		{name: "due: 304", advance: time.Minute, requests: 2, header: `If-None-Match: "v1"`, inForce: "1.10.16.5"},
		{name: "304 restarts the hour", advance: 30 * time.Minute, requests: 2, inForce: "1.10.16.5"},
		{name: "new version", advance: 30 * time.Minute, serve: func(s *listServer) { s.body, s.etag = "203.0.113.0/24 ; SBL1\n", `"v2"` },
			requests: 3, header: `If-None-Match: "v1"`, inForce: "203.0.113.1", notListed: "1.10.16.5"},
		{name: "server error keeps the last good copy", advance: time.Hour, serve: func(s *listServer) { s.status = 503 },
			requests: 4, header: `If-None-Match: "v2"`, inForce: "203.0.113.1", errors: 1},
		{name: "failure retried after 5m, not an hour", advance: 5 * time.Minute, requests: 5, inForce: "203.0.113.1", errors: 2},
		{name: "an HTML page is not a list", advance: 5 * time.Minute, serve: func(s *listServer) {
			s.status, s.body, s.etag = 0, "<html><body>Service Unavailable</body></html>\n", `"v3"`
		},
			requests: 6, inForce: "203.0.113.1", errors: 3},
		{name: "an empty list is refused", advance: 5 * time.Minute, serve: func(s *listServer) { s.body, s.etag = "; nothing today\n", `"v4"` },
			requests: 7, inForce: "203.0.113.1", errors: 4},
		{name: "recovers", advance: 5 * time.Minute, serve: func(s *listServer) { s.body, s.etag = "198.51.100.0/24\n", `"v5"` },
			requests: 8, header: `If-None-Match: "v2"`, inForce: "198.51.100.7", notListed: "203.0.113.1", errors: 4},
	}
	for _, st := range steps {
		if st.serve != nil {
			srv.set(st.serve)
		}
		refresh(st.advance)
		h, n := srv.lastRequest()
		if n != st.requests {
			t.Fatalf("%s: %d requests, want %d", st.name, n, st.requests)
		}
		if st.header != "" {
			k, v, _ := strings.Cut(st.header, ": ")
			if h.Get(k) != v {
				t.Errorf("%s: request had %s %q, want %q", st.name, k, h.Get(k), v)
			}
		}
		if f.decide(netipAddr(st.inForce), t0) != denyListed {
			t.Errorf("%s: %s not deny-listed", st.name, st.inForce)
		}
		if st.notListed != "" && f.decide(netipAddr(st.notListed), t0) != clean {
			t.Errorf("%s: %s still deny-listed", st.name, st.notListed)
		}
		if got := collect(f)["reputation_list_errors_total"]; got != st.errors {
			t.Errorf("%s: list errors %v, want %v", st.name, got, st.errors)
		}
	}
}

// TestListURLIfModifiedSince: a server that sends only Last-Modified is
// asked with If-Modified-Since.
func TestListURLIfModifiedSince(t *testing.T) {
	srv := newListServer(t, dropList, "")
	srv.lastMod = "Tue, 01 Dec 2026 10:00:00 GMT"
	clock := &fakeClock{now: t0}
	f, err := buildURLFilter(t, t.TempDir(), srv, clock)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	f.refreshRemote(context.Background(), clock.Now())
	h, n := srv.lastRequest()
	if n != 2 || h.Get("If-Modified-Since") != srv.lastMod || h.Get("If-None-Match") != "" {
		t.Fatalf("request %d had If-Modified-Since %q, If-None-Match %q", n, h.Get("If-Modified-Since"), h.Get("If-None-Match"))
	}
	if f.decide(netipAddr("1.19.2.3"), t0) != denyListed {
		t.Error("304 lost the list")
	}
}

// TestListURLRestart: a restart uses the copy kept on disk without
// fetching before it is due, also while the server is down; with no copy
// and the server down the stage does not build rather than run with an
// empty list.
func TestListURLRestart(t *testing.T) {
	srv := newListServer(t, dropList, `"v1"`)
	clock := &fakeClock{now: t0}
	dir := t.TempDir()
	if _, err := buildURLFilter(t, dir, srv, clock); err != nil {
		t.Fatal(err)
	}
	srv.set(func(s *listServer) { s.status = 500 })

	clock.Advance(10 * time.Minute)
	f, err := buildURLFilter(t, dir, srv, clock)
	if err != nil {
		t.Fatalf("restart with a copy on disk and the server down: %v", err)
	}
	f.refreshRemote(context.Background(), clock.Now())
	if _, n := srv.lastRequest(); n != 1 {
		t.Errorf("restart fetched before the list was due: %d requests", n)
	}
	if f.decide(netipAddr("1.10.16.5"), t0) != denyListed {
		t.Error("copy on disk not in force after restart")
	}
	clock.Advance(time.Hour)
	f.refreshRemote(context.Background(), clock.Now())
	if _, n := srv.lastRequest(); n != 2 {
		t.Errorf("due after restart, yet %d requests", n)
	}

	_, err = buildURLFilter(t, t.TempDir(), srv, clock)
	if err == nil || !strings.Contains(err.Error(), srv.URL+"/drop.txt") || !strings.Contains(err.Error(), "500") {
		t.Fatalf("no copy and the server down: want an error naming the URL and the status, got %v", err)
	}
}

// TestListURLCorruptCacheRefetched: a copy on disk that does not parse
// (edited by hand) is fetched again at start instead of refusing to start.
func TestListURLCorruptCacheRefetched(t *testing.T) {
	srv := newListServer(t, dropList, `"v1"`)
	clock := &fakeClock{now: t0}
	dir := t.TempDir()
	if _, err := buildURLFilter(t, dir, srv, clock); err != nil {
		t.Fatal(err)
	}
	cached, _ := filepath.Glob(filepath.Join(dir, DefaultCacheDir, "*.txt"))
	if err := os.WriteFile(cached[0], []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := buildURLFilter(t, dir, srv, clock)
	if err != nil {
		t.Fatal(err)
	}
	if h, n := srv.lastRequest(); n != 2 || h.Get("If-None-Match") != "" {
		t.Errorf("corrupt copy: %d requests, If-None-Match %q (want an unconditional refetch)", n, h.Get("If-None-Match"))
	}
	if f.decide(netipAddr("1.10.16.5"), t0) != denyListed {
		t.Error("refetched list not in force")
	}
}

func TestListSourceValidation(t *testing.T) {
	tests := []struct {
		l    List
		want string // "" for valid
	}{
		{List{URL: "https://www.spamhaus.org/drop/drop.txt", Action: ActionDeny}, ""},
		{List{URL: "https://x.test/l", Every: filters.Duration(time.Minute), Action: ActionDeny}, ""},
		{List{Action: ActionDeny}, "lists[0].file: is required"},
		{List{File: "a", URL: "https://x.test/l", Action: ActionDeny}, "lists[0]: file and url are two sources"},
		{List{File: "a", Every: filters.Duration(time.Hour), Action: ActionDeny}, "lists[0].every: applies to url lists"},
		{List{URL: "ftp://x.test/l", Action: ActionDeny}, `lists[0].url: "ftp://x.test/l": want an http(s) URL`},
		{List{URL: "https:///l", Action: ActionDeny}, "lists[0].url:"},
		{List{URL: "https://x.test/l", Every: filters.Duration(-time.Second), Action: ActionDeny}, "lists[0].every: must not be negative"},
	}
	for _, tt := range tests {
		err := Config{Lists: []List{tt.l}}.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.l, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: got %v, want %q", tt.l, err, tt.want)
		}
	}
}
