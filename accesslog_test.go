package edgeguard

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/edgeguard/edgeguard/internal/bodymem"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// syncBuffer is a log output the handler and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

// accessGuard builds a Guard from yaml whose log (JSON) and combined
// access lines both go to the returned buffer, in front of a handler that
// writes "hello".
func accessGuard(t *testing.T, yaml string) (http.Handler, *syncBuffer, *Guard) {
	t.Helper()
	out := &syncBuffer{}
	g, err := New(mustConfig(t, yaml), WithLogger(slog.New(slog.NewJSONHandler(out, nil))), WithAccessWriter(out))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })), out, g
}

func send(h http.Handler, method, target string) int {
	r := httptest.NewRequest(method, target, strings.NewReader("12345678"))
	r.RemoteAddr = "192.0.2.9:4000"
	r.Header.Set("User-Agent", "probe/1.0")
	r.Header.Set("Referer", "http://example.test/from")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

func TestAccessLogJSONFields(t *testing.T) {
	h, out, _ := accessGuard(t, "stages: [volumetric]\nvolumetric: {rate: 1/m, burst: 1}\n")
	send(h, "POST", "http://shop.example.test/cart?token=s3cret&item=7")
	send(h, "POST", "http://shop.example.test/cart")
	var recs []map[string]any
	for _, l := range out.lines() {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "access" {
			recs = append(recs, m)
		}
	}
	if len(recs) != 2 {
		t.Fatalf("%d access records, want 2:\n%s", len(recs), strings.Join(out.lines(), "\n"))
	}
	ok, refused := recs[0], recs[1]
	for k, want := range map[string]any{
		"method": "POST", "host": "shop.example.test", "path": "/cart", "query": "token=REDACTED&item=7",
		"protocol": "HTTP/1.1", "user_agent": "probe/1.0", "status": 200.0, "bytes_in": 8.0, "bytes_out": 5.0,
		"stage": nil, "client": "192.0.2.9", "rule_ids": nil, // what a request lacks is left out
	} {
		if ok[k] != want {
			t.Errorf("allowed request: %s = %#v, want %#v", k, ok[k], want)
		}
	}
	for _, k := range []string{"duration", "upstream_duration"} {
		if d, isFloat := ok[k].(float64); !isFloat || d <= 0 || d > 10 {
			t.Errorf("%s = %#v, want seconds as a float", k, ok[k])
		}
	}
	if refused["stage"] != "volumetric" || refused["status"] != 429.0 || refused["upstream_duration"] != nil {
		t.Errorf("refused request: stage %v status %v upstream %v", refused["stage"], refused["status"], refused["upstream_duration"])
	}
}

func TestAccessLogQueryRedaction(t *testing.T) {
	for _, tc := range []struct {
		name, redact, query, want string
	}{
		{"defaults hide credentials", "", "api_key=abc&page=2", "api_key=REDACTED&page=2"},
		{"a percent-encoded name is still a name", "", "p%61ssword=hunter2", "p%61ssword=REDACTED"},
		{"every occurrence", "", "token=a&token=b", "token=REDACTED&token=REDACTED"},
		{"named parameters only", "redact: [session]", "session=x&token=y", "session=REDACTED&token=y"},
		{"none", "redact: []", "token=y", "token=y"},
		{"a name without a value stays", "", "token&x=1", "token&x=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, out, _ := accessGuard(t, "stages: []\nlog: {access: {"+tc.redact+"}}\n")
			send(h, "GET", "http://example.test/?"+tc.query)
			var m map[string]any
			json.Unmarshal([]byte(out.lines()[0]), &m)
			if m["query"] != tc.want {
				t.Errorf("query %q, want %q", m["query"], tc.want)
			}
		})
	}
}

func TestAccessLogCombined(t *testing.T) {
	h, out, _ := accessGuard(t, "stages: []\nlog: {access: {format: combined}}\n")
	send(h, "GET", "http://example.test/a?token=x&b=1")
	re := regexp.MustCompile(`^192\.0\.2\.9 - - \[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET /a\?token=REDACTED&b=1 HTTP/1\.1" 200 5 "http://example\.test/from" "probe/1\.0"$`)
	if l := out.lines(); len(l) != 1 || !re.MatchString(l[0]) {
		t.Errorf("combined line:\n%s\nwant it to match %s", strings.Join(l, "\n"), re)
	}
}

// TestAccessLogSampling: a tiny sample drops allowed requests, never
// refusals; access: false drops everything.
func TestAccessLogSampling(t *testing.T) {
	h, out, _ := accessGuard(t, "stages: [volumetric]\nvolumetric: {rate: 1/m, burst: 50}\nlog: {access: {sample: 0.000000001}}\n")
	for range 60 {
		send(h, "GET", "http://example.test/")
	}
	n := 0
	for _, l := range out.lines() {
		if strings.Contains(l, `"msg":"access"`) {
			n++
			if !strings.Contains(l, `"status":429`) {
				t.Errorf("a sampled-away allowed request was logged: %s", l)
			}
		}
	}
	if n != 10 {
		t.Errorf("%d lines, want the 10 refusals", n)
	}
	h, out, _ = accessGuard(t, "stages: []\nlog: {access: false}\n")
	send(h, "GET", "http://example.test/")
	if l := out.lines(); l[0] != "" {
		t.Errorf("access: false wrote %q", l)
	}
}

// TestMetricsAnswerQuestions: answers by method and class, OTHER for odd
// methods, build info, no route label on a single chain's stage series.
func TestMetricsAnswerQuestions(t *testing.T) {
	h, _, g := accessGuard(t, "stages: [volumetric]\nvolumetric: {rate: 1/m, burst: 2}\nlog: {access: false}\n")
	for _, m := range []string{"GET", "GET", "GET", "BREW"} {
		send(h, m, "http://example.test/")
	}
	reg := g.metrics.Registry
	for _, tc := range []struct {
		name, text string
	}{
		{"responses", `
# HELP edgeguard_responses_total Answers to clients by request method (OTHER for methods outside the standard ones) and status class (2xx, 4xx, ...).
# TYPE edgeguard_responses_total counter
edgeguard_responses_total{code="2xx",method="GET"} 2
edgeguard_responses_total{code="4xx",method="GET"} 1
edgeguard_responses_total{code="4xx",method="OTHER"} 1
`},
		{"reloads", `
# HELP edgeguard_config_reloads_total Config reloads by result: success, or failure (the previous config kept serving).
# TYPE edgeguard_config_reloads_total counter
edgeguard_config_reloads_total{result="failure"} 0
edgeguard_config_reloads_total{result="success"} 0
`},
	} {
		if err := testutil.GatherAndCompare(reg, strings.NewReader(tc.text), strings.Fields(tc.text)[2]); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sawBuild, sawUpstream := false, false
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" {
					t.Errorf("%s carries a route label (%q) with one chain", mf.GetName(), l.GetValue())
				}
				if mf.GetName() == "edgeguard_build_info" && l.GetName() == "crs" && m.GetGauge().GetValue() == 1 {
					// The value is "unknown" in a test binary, which lists
					// no modules; TestE2ECommandLine checks a real build.
					sawBuild = true
				}
				if mf.GetName() == "edgeguard_upstream_duration_seconds" && l.GetName() == "pool" && l.GetValue() == "none" {
					sawUpstream = true
				}
			}
		}
	}
	if !sawBuild || !sawUpstream {
		t.Errorf("build_info with a crs label: %v; upstream time with pool=none: %v", sawBuild, sawUpstream)
	}
}

// TestAccessLogDirectMatchesSlog: the line encoded straight to the access
// writer has the fields and values of the one the logger's JSON handler
// writes, for an allowed request, one the WAF refuses (with its rule ids)
// and one the volumetric stage refuses.
func TestAccessLogDirectMatchesSlog(t *testing.T) {
	// send gives every request a body, which CRS refuses on a GET and
	// without a Content-Type (920170, 920180, 920640): those rules are
	// off, so the first request passes and the second is refused for
	// its SQL injection alone.
	const cfg = "stages: [volumetric, waf]\nvolumetric: {rate: 1/m, burst: 2}\n" +
		"waf: {exclusions: [{path: /, rule_ids: [920170, 920180, 920640]}]}\n"
	records := func(direct bool) []map[string]any {
		out := &syncBuffer{}
		opts := []Option{WithLogger(slog.New(slog.NewJSONHandler(out, nil)))}
		if direct {
			opts = append(opts, WithAccessWriter(out))
		}
		g, err := New(mustConfig(t, cfg), opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) }))
		send(h, "GET", "http://example.test/caf%C3%A9?q=%22x%22&token=t")
		send(h, "GET", "http://example.test/?id=1%27%20OR%20%271%27%3D%271")
		send(h, "GET", "http://example.test/%01%FF")
		var recs []map[string]any
		for _, l := range out.lines() {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("not JSON: %q", l)
			}
			if m["msg"] != "access" {
				continue // the WAF's own line about what it matched
			}
			delete(m, "time")
			for _, k := range []string{"request_id", "duration", "upstream_duration"} {
				if _, ok := m[k]; ok {
					m[k] = "present"
				}
			}
			recs = append(recs, m)
		}
		return recs
	}
	viaSlog, direct := records(false), records(true)
	if len(viaSlog) != 3 || len(direct) != 3 {
		t.Fatalf("records: %d through slog, %d direct", len(viaSlog), len(direct))
	}
	for i, want := range []float64{200, 403, 429} {
		if viaSlog[i]["status"] != want {
			t.Fatalf("record %d: status %v, want %v: %v", i, viaSlog[i]["status"], want, viaSlog[i])
		}
	}
	if ids, _ := viaSlog[1]["rule_ids"].([]any); viaSlog[1]["stage"] != "waf" || len(ids) < 2 {
		t.Fatalf("record 1 is not a WAF refusal with its rule ids: %v", viaSlog[1])
	}
	for i := range viaSlog {
		a, _ := json.Marshal(viaSlog[i])
		b, _ := json.Marshal(direct[i])
		if string(a) != string(b) {
			t.Errorf("record %d:\nslog   %s\ndirect %s", i, a, b)
		}
	}
}

// FuzzAppendJSONString: any string encodes to a valid JSON string that
// decodes to what encoding/json makes of it.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "quote\" back\\slash", "ctl\x00\x01\x1f\n\r\t", "café", "bad\xff\xfeutf8", "\u2028<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendJSONString(nil, s)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON for %q: %s", s, out)
		}
		var got, want string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		ref, _ := json.Marshal(s)
		json.Unmarshal(ref, &want)
		if got != want {
			t.Fatalf("%q: decodes to %q, encoding/json's to %q", s, got, want)
		}
	})
}

// TestAccessLogBytesInCountsWhatWasRead: behind the binary's server (a
// bodymem count in the request's context) bytes_in is what the handler
// read, so a chunked upload, whose Content-Length is unknown, is counted;
// as plain middleware it is the declared Content-Length, 0 when chunked.
// Both JSON encoders say the same.
func TestAccessLogBytesInCountsWhatWasRead(t *testing.T) {
	const body = "0123456789abcdefghij" // 20 bytes
	for _, tc := range []struct {
		name             string
		counted, chunked bool
		want             float64
	}{
		{"counted, chunked", true, true, 20},
		{"counted, with a length", true, false, 20},
		{"middleware, chunked", false, true, 0},
		{"middleware, with a length", false, false, 20},
	} {
		for _, direct := range []bool{false, true} {
			out := &syncBuffer{}
			opts := []Option{WithLogger(slog.New(slog.NewJSONHandler(out, nil)))}
			if direct {
				opts = append(opts, WithAccessWriter(out))
			}
			g, err := New(mustConfig(t, "stages: []\n"), opts...)
			if err != nil {
				t.Fatal(err)
			}
			h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
			r := httptest.NewRequest("POST", "http://example.test/upload", strings.NewReader(body))
			if tc.chunked {
				r.ContentLength = -1 // as net/http has it for Transfer-Encoding: chunked
			}
			if tc.counted {
				ctx, b := bodymem.NewPool(0).WrapContext(r.Context(), r.Body, nil)
				r.Body = b
				r = r.WithContext(ctx)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			g.Close()
			var m map[string]any
			if err := json.Unmarshal([]byte(out.lines()[0]), &m); err != nil {
				t.Fatal(err)
			}
			if m["bytes_in"] != tc.want {
				t.Errorf("%s (direct %v): bytes_in %v, want %v", tc.name, direct, m["bytes_in"], tc.want)
			}
		}
	}
}
