package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// appUpstream answers 200 everywhere but /boom, where it answers status:
// the page a client can make fail at will.
func appUpstream(t *testing.T, status int) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			w.WriteHeader(status)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestE2EProvokedErrorsNeverEjectTheOnlyBackend: a client that makes the
// application fail in a loop, with a 500 or with a gateway status, never
// turns the rest of the site into 503s (issue #11, item 1). Before the
// fix five 5xx in a row ejected the only backend for 5 s, and / answered
// 503 to everyone.
func TestE2EProvokedErrorsNeverEjectTheOnlyBackend(t *testing.T) {
	for _, status := range []int{500, 503} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			up := appUpstream(t, status)
			p := start(t, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
stages: []
`+trustLoopback, up.URL)
			c := &http.Client{}
			for round := range 20 {
				for range 10 {
					if got := get(t, c, p.edge, "203.0.113.66", "/boom"); got != status {
						t.Fatalf("/boom: %d, want the app's %d", got, status)
					}
				}
				if got := get(t, c, p.edge, "203.0.113.7", "/"); got != 200 {
					t.Fatalf("after %d rounds of ten provoked errors, / answered %d", round+1, got)
				}
			}
			resp, err := http.Get("http://" + p.admin + "/v1/upstreams")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var st struct {
				Upstreams []struct {
					Backends []struct {
						Ejections int `json:"ejections"`
						Failures  int `json:"failures"`
					} `json:"backends"`
				} `json:"upstreams"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || len(st.Upstreams) != 1 || len(st.Upstreams[0].Backends) != 1 {
				t.Fatalf("GET /v1/upstreams: %+v, %v", st, err)
			}
			b := st.Upstreams[0].Backends[0]
			if b.Ejections != 0 {
				t.Fatalf("the only backend was ejected %d times, want never", b.Ejections)
			}
			if status == 500 && b.Failures != 0 {
				t.Fatalf("%d failures counted for 500 answers, want 0", b.Failures)
			}
		})
	}
}

// TestE2EPathSpellingsReachTheRoutesProtections: a route's closed switch
// and its own stage settings hold for the spellings of its path that
// common backends serve as the same resource (issue #11, item 5), and a
// strict route keeps to its spelling.
func TestE2EPathSpellingsReachTheRoutesProtections(t *testing.T) {
	up := appUpstream(t, 500)
	p := start(t, `listen: "127.0.0.1:0"
admin: {listen: "127.0.0.1:0"}
stages: [volumetric]
volumetric: {rate: "1000/s", burst: 1000}
upstreams:
  app: {backends: ["{{upstream}}"]}
routes:
  - {name: checkout, path: /checkout, upstream: app}
  - {name: login, path: /login, upstream: app}
  - {name: exact, path: /exact, upstream: app, strict_path: true}
  - {name: site, path: /, upstream: app}
route_stages:
  login: {volumetric: {rate: "1/h", burst: 1}}
`+trustLoopback, up.URL)
	c := &http.Client{}
	// The login route's own limit: one request, whatever the spelling.
	if got := get(t, c, p.edge, "203.0.113.7", "/login"); got != 200 {
		t.Fatalf("first /login: %d", got)
	}
	for _, path := range []string{"/login", "/LOGIN", "/Login", "/login.json", "/login%20", "/Login/x"} {
		if got := get(t, c, p.edge, "203.0.113.7", path); got != 429 {
			t.Errorf("login limit spent, %s: %d, want 429", path, got)
		}
	}
	for _, route := range []string{"checkout", "exact"} {
		req, _ := http.NewRequest("POST", "http://"+p.admin+"/v1/routes/"+route+"/closed", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("closing %s: %d", route, resp.StatusCode)
		}
	}
	for _, path := range []string{"/checkout", "/CHECKOUT", "/Checkout/x", "/checkout.json", "/checkout%20", "/checkout%09", "/Checkout.JSON"} {
		if got := get(t, c, p.edge, "203.0.113.8", path); got != 503 {
			t.Errorf("checkout closed, %s: %d, want 503", path, got)
		}
	}
	// A strict route is matched as written; other spellings go to the
	// site route, which is open.
	for path, want := range map[string]int{"/exact": 503, "/exact/x": 503, "/EXACT": 200, "/exact.json": 200, "/checkouts": 200} {
		if got := get(t, c, p.edge, "203.0.113.8", path); got != want {
			t.Errorf("%s: %d, want %d", path, got, want)
		}
	}
}

// TestE2EStalledReadersLoseTheirSlots: two clients that request a 50 MB
// response and never read it hold a max_in_flight: 2 route only until
// timeouts.send (issue #11, item 4); before, they held it for as long as
// they kept their connections open.
func TestE2EStalledReadersLoseTheirSlots(t *testing.T) {
	chunk := []byte(strings.Repeat("x", 64<<10))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/big" {
			io.WriteString(w, "small")
			return
		}
		w.Header().Set("Content-Length", "52428800")
		for range 50 << 20 / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	p := start(t, `listen: "127.0.0.1:0"
admin: {listen: "127.0.0.1:0"}
stages: []
upstreams:
  app: {backends: ["{{upstream}}"]}
routes:
  - {name: dl, path: /, upstream: app, shield: {max_in_flight: 2}}
timeouts: {send: 500ms}
`+trustLoopback, up.URL)
	for range 2 {
		c, err := net.Dial("tcp", p.edge)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte("GET /big HTTP/1.1\r\nHost: shop.example\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
			t.Fatalf("stalled client: %q %v", line, err)
		}
	}
	c := &http.Client{}
	start := time.Now()
	refused := 0
	for {
		got := get(t, c, p.edge, "", "/small")
		if got == 200 {
			break
		}
		refused++
		if time.Since(start) > 15*time.Second {
			t.Fatalf("the route still answers %d %v after two clients stopped reading", got, time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("served after %v (%d refusals before)", time.Since(start), refused)
}
