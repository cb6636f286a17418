package waf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corazawaf/coraza/v3/types"

	"github.com/edgeguard/edgeguard/filters"
)

var testNow = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func newTestFilter(t testing.TB, cfg Config) *Filter {
	t.Helper()
	f, err := New(cfg, filters.Env{Dir: "."})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// browserHeaders are what a current Firefox sends for a page load.
var browserHeaders = map[string]string{
	"User-Agent":      "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
	"Accept":          "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
	"Accept-Language": "en-US,en;q=0.5",
	"Accept-Encoding": "gzip, deflate, br",
	"Referer":         "https://shop.example.com/catalog",
	"Cookie":          "session=4f6b2c9a1e; theme=dark",
}

// newRequest builds the filters.Request the root package would, with the
// socket peer 127.0.0.1 and the resolved client 198.51.100.20.
func newRequest(method, target, body string, hdr map[string]string) *filters.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	h := httptest.NewRequest(method, target, rd)
	h.Host = "shop.example.com"
	if body != "" {
		// net/http's server keeps Content-Length in the header map.
		h.Header.Set("Content-Length", jsonNumber(len(body)))
	}
	for k, v := range hdr {
		h.Header.Set(k, v)
	}
	client := netip.MustParseAddr("198.51.100.20")
	return &filters.Request{
		HTTP: h, Peer: netip.MustParseAddrPort("127.0.0.1:40000"),
		Client: client, ClientPort: 51000, Key: filters.KeyOf(client, 64),
		Now: testNow, ID: "req-1",
	}
}

func jsonHeaders() map[string]string {
	return map[string]string{"Content-Type": "application/json", "User-Agent": "api-client/1.0", "Accept": "application/json"}
}

func TestCheckDecisions(t *testing.T) {
	f := newTestFilter(t, Config{})
	tests := []struct {
		name      string
		method    string
		target    string
		body      string
		hdr       map[string]string
		deny      bool
		wantRules []int
	}{
		{name: "benign browser GET", method: "GET", target: "/catalog/shoes?page=2&sort=price", hdr: browserHeaders},
		{name: "benign JSON POST", method: "POST", target: "/api/orders", body: `{"sku":"A-100","qty":2,"note":"leave at the door"}`, hdr: jsonHeaders()},
		{name: "SQLi in the query", method: "GET", target: "/search?q=1'+OR+'1'='1'--", hdr: browserHeaders, deny: true, wantRules: []int{942100, 949110}},
		{name: "XSS in a JSON body", method: "POST", target: "/api/comments", body: `{"text":"<script>alert(document.cookie)</script>"}`, hdr: jsonHeaders(), deny: true, wantRules: []int{941100, 949110}},
		{name: "path traversal", method: "GET", target: "/static/..%2f..%2f..%2fetc%2fpasswd", hdr: browserHeaders, deny: true, wantRules: []int{930100, 949110}},
		{name: "urlencoded body", method: "POST", target: "/login", body: "user=admin'--&pass=x", hdr: map[string]string{"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "curl/8", "Accept": "*/*"}, deny: true, wantRules: []int{942100}},
		{name: "XML body", method: "POST", target: "/soap", body: `<?xml version="1.0"?><q><v>1 UNION SELECT password FROM users</v></q>`, hdr: map[string]string{"Content-Type": "text/xml", "User-Agent": "curl/8", "Accept": "*/*"}, deny: true, wantRules: []int{949110}},
		{name: "multipart body", method: "POST", target: "/form", body: "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n<script>alert(1)</script>\r\n--XyZ--\r\n", hdr: map[string]string{"Content-Type": "multipart/form-data; boundary=XyZ", "User-Agent": "curl/8", "Accept": "*/*"}, deny: true, wantRules: []int{941100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRequest(tc.method, tc.target, tc.body, tc.hdr)
			v := f.Check(r)
			defer r.Finish()
			if v.Deny != tc.deny {
				t.Fatalf("Deny = %v, want %v (rules %v, reason %q)", v.Deny, tc.deny, v.RuleIDs, v.Reason)
			}
			if !tc.deny {
				return
			}
			if v.Shadow || v.StatusCode() != http.StatusForbidden {
				t.Errorf("Shadow = %v, status %d; want an enforced 403", v.Shadow, v.StatusCode())
			}
			for _, id := range tc.wantRules {
				if !slices.Contains(v.RuleIDs, id) {
					t.Errorf("RuleIDs %v lack %d", v.RuleIDs, id)
				}
			}
			if v.Score < DefaultInboundThreshold || v.Reason != "anomaly score "+itoa(v.Score) {
				t.Errorf("Score %d, Reason %q", v.Score, v.Reason)
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func jsonNumber(n int) string { return strconv.Itoa(n) }

// TestBodyReplayedByteForByte: what the upstream reads after Check is what
// the client sent, for bodies under, at and over the limit.
func TestBodyReplayedByteForByte(t *testing.T) {
	const limit = 4096
	f := newTestFilter(t, Config{BodyLimit: limit, BodyLimitAction: BodyLimitPartial})
	for _, size := range []int{1, 2000, limit - 1, limit, limit + 1, 3 * limit} {
		// A form body: its prefix parses, so partial inspection passes it
		// (a JSON body cut at the limit does not parse: see TestBodyLimit).
		body := benignForm(size)
		r := newRequest("POST", "/api/orders", body, formHeaders())
		v := f.Check(r)
		got, err := io.ReadAll(r.HTTP.Body)
		r.Finish()
		if err != nil || v.Deny {
			t.Fatalf("size %d: deny %v (%v), read err %v", size, v.Deny, v.RuleIDs, err)
		}
		if !bytes.Equal(got, []byte(body)) {
			t.Fatalf("size %d: upstream got %d bytes, client sent %d (or different bytes)", size, len(got), len(body))
		}
	}
}

// benignJSON returns a JSON object of exactly size bytes (size >= 1 gives
// at least "{}"-shaped text; tiny sizes are padded strings).
func benignJSON(size int) string {
	if size < 12 {
		return strings.Repeat("7", size)
	}
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < size-40; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"sku":"A-` + jsonNumber(100+i) + `","qty":2}`)
	}
	b.WriteString(`],"note":"`)
	for b.Len() < size-2 {
		b.WriteByte('x')
	}
	b.WriteString(`"}`)
	return b.String()[:size]
}

func formHeaders() map[string]string {
	return map[string]string{"Content-Type": "application/x-www-form-urlencoded", "User-Agent": "api-client/1.0", "Accept": "*/*"}
}

// benignForm returns an urlencoded body of exactly size bytes.
func benignForm(size int) string {
	var b strings.Builder
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString("field" + jsonNumber(i) + "=value")
	}
	return b.String()[:size]
}

func TestBodyLimit(t *testing.T) {
	const limit = 1024
	sqli := "q=1'+UNION+SELECT+password+FROM+users--"
	pad := "pad=" + strings.Repeat("a", 2*limit)
	tests := []struct {
		name       string
		action     string
		body       string
		hdr        map[string]string
		wantStatus int // 0: allowed
	}{
		{"reject: exactly the limit passes", BodyLimitReject, benignJSON(limit), jsonHeaders(), 0},
		{"reject: one byte over is 413", BodyLimitReject, benignJSON(limit + 1), jsonHeaders(), http.StatusRequestEntityTooLarge},
		{"partial: attack past the limit is not seen", BodyLimitPartial, pad + "&" + sqli, formHeaders(), 0},
		{"partial: attack within the limit is denied", BodyLimitPartial, sqli + "&" + pad, formHeaders(), http.StatusForbidden},
		// Coraza's JSON parser is all or nothing: a JSON body cut at the
		// limit fails to parse and Coraza's base rule 200002 refuses it.
		{"partial: JSON cut at the limit is refused by 200002", BodyLimitPartial, benignJSON(limit + 1), jsonHeaders(), http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFilter(t, Config{BodyLimit: limit, BodyLimitAction: tc.action})
			for _, chunked := range []bool{false, true} {
				r := newRequest("POST", "/api/orders", tc.body, tc.hdr)
				if chunked {
					// Unknown length: the limit is found by reading.
					r.HTTP.Header.Del("Content-Length")
					r.HTTP.ContentLength = -1
					r.HTTP.TransferEncoding = []string{"chunked"}
				}
				v := f.Check(r)
				got, _ := io.ReadAll(r.HTTP.Body)
				r.Finish()
				status := 0
				if v.Deny {
					status = v.StatusCode()
				}
				if status != tc.wantStatus {
					t.Fatalf("chunked=%v: status %d, want %d (rules %v)", chunked, status, tc.wantStatus, v.RuleIDs)
				}
				if status == 0 && string(got) != tc.body {
					t.Fatalf("chunked=%v: body not replayed intact", chunked)
				}
			}
		})
	}
}

func TestSkipBodyPaths(t *testing.T) {
	f := newTestFilter(t, Config{SkipBodyPaths: []string{"/upload"}})
	attack := `{"q":"<script>alert(1)</script>"}`
	r := newRequest("POST", "/upload/avatar", attack, jsonHeaders())
	orig := r.HTTP.Body
	v := f.Check(r)
	r.Finish()
	if v.Deny {
		t.Fatalf("body on a skip path was inspected: %v", v.RuleIDs)
	}
	if r.HTTP.Body != orig {
		t.Fatal("body on a skip path was replaced; it must stream untouched")
	}
	r = newRequest("POST", "/upload/avatar?q=<script>alert(1)</script>", "", jsonHeaders())
	if v := f.Check(r); !v.Deny {
		t.Fatal("query on a skip path must still be inspected")
	}
	r.Finish()
	r = newRequest("POST", "/api/other", attack, jsonHeaders())
	if v := f.Check(r); !v.Deny {
		t.Fatal("body on another path must be inspected")
	}
	r.Finish()
}

func TestShadowModeAuditsAndMarksShadow(t *testing.T) {
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	f := newTestFilter(t, Config{Mode: filters.ModeShadow, Audit: audit})
	r := newRequest("GET", "/search?q=1'+OR+'1'='1'--", "", browserHeaders)
	v := f.Check(r)
	r.Finish()
	if !v.Deny || !v.Shadow {
		t.Fatalf("shadow mode: Deny %v Shadow %v, want both (the chain allows and logs it)", v.Deny, v.Shadow)
	}
	evs := readAudit(t, audit)
	if len(evs) != 1 || !evs[0].Shadow || evs[0].Action != "deny" || evs[0].RuleID != 949110 {
		t.Fatalf("audit events %+v, want one shadow deny by 949110", evs)
	}
}

func readAudit(t *testing.T, file string) []auditEvent {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditEvent
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if line == "" {
			continue
		}
		var ev auditEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		out = append(out, ev)
	}
	return out
}

// TestAuditEventContent: one JSON line with the documented fields, and
// never a body, an Authorization value or a cookie value.
func TestAuditEventContent(t *testing.T) {
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	f := newTestFilter(t, Config{Audit: audit})
	hdr := jsonHeaders()
	hdr["Authorization"] = "Bearer TOKEN-SECRET-123"
	hdr["Cookie"] = "session=COOKIE-SECRET-456' OR 1=1--"
	r := newRequest("POST", "/api/comments?id=7", `{"text":"<script>alert('BODY-SECRET-789')</script>"}`, hdr)
	v := f.Check(r)
	r.Finish()
	benign := newRequest("GET", "/", "", browserHeaders)
	f.Check(benign)
	benign.Finish()
	if !v.Deny {
		t.Fatal("attack not denied")
	}
	raw, _ := os.ReadFile(audit)
	for _, secret := range []string{"TOKEN-SECRET", "COOKIE-SECRET", "BODY-SECRET"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("audit log contains %s: %s", secret, raw)
		}
	}
	evs := readAudit(t, audit)
	if len(evs) != 1 {
		t.Fatalf("%d audit events, want 1 (benign requests are not audited)", len(evs))
	}
	ev := evs[0]
	if ev.RequestID != "req-1" || ev.Client != "198.51.100.20" || ev.Method != "POST" || ev.URI != "/api/comments?id=7" ||
		ev.Action != "deny" || ev.Status != 403 || ev.Inbound < 5 || len(ev.Rules) == 0 || ev.Rules[0].Message == "" {
		t.Fatalf("audit event %+v", ev)
	}
}

func TestAuditToMainLog(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	f, err := New(Config{}, filters.Env{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := newRequest("GET", "/search?q=1'+OR+'1'='1'--", "", browserHeaders)
	f.Check(r)
	r.Finish()
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	if line["msg"] != "waf audit" || line["stage"] != "waf" || line["request_id"] != "req-1" || line["rules"] == nil {
		t.Fatalf("log line %v", line)
	}
}

func TestExclusions(t *testing.T) {
	sqli := "/search?q=1'+OR+'1'='1'--"
	tests := []struct {
		name string
		ex   Exclusion
		path string
		deny bool
	}{
		{"by tag on the path", Exclusion{Path: "/search", Tags: []string{"attack-sqli"}}, sqli, false},
		{"by tag, other path", Exclusion{Path: "/other", Tags: []string{"attack-sqli"}}, sqli, true},
		{"by the blocking rule id", Exclusion{Path: "/", RuleIDs: []int{949110}}, sqli, false},
		{"by an unrelated id", Exclusion{Path: "/search", RuleIDs: []int{941100}}, sqli, true},
		{"a sibling path does not borrow it", Exclusion{Path: "/search", Tags: []string{"attack-sqli"}}, "/searchx?q=1'+OR+'1'='1'--", true},
		{"dot-dot does not borrow it", Exclusion{Path: "/search", Tags: []string{"attack-sqli"}}, "/search/../admin?q=1'+OR+'1'='1'--", true},
		{"a sub-path is covered", Exclusion{Path: "/search", Tags: []string{"attack-sqli"}}, "/search/all?q=1'+OR+'1'='1'--", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFilter(t, Config{Exclusions: []Exclusion{tc.ex}})
			r := newRequest("GET", tc.path, "", browserHeaders)
			v := f.Check(r)
			r.Finish()
			if v.Deny != tc.deny {
				t.Fatalf("Deny %v, want %v (rules %v)", v.Deny, tc.deny, v.RuleIDs)
			}
		})
	}
}

// TestInterruptionActions: every disruptive action, and the values edgeguard
// feeds Coraza (resolved client, Host, Transfer-Encoding).
func TestInterruptionActions(t *testing.T) {
	f := newTestFilter(t, Config{Packs: []string{"testdata/packs/actions"}})
	tests := []struct {
		name     string
		target   string
		mutate   func(*filters.Request)
		status   int
		drop     bool
		location string
	}{
		{name: "drop", target: "/?act=drop", status: 403, drop: true},
		{name: "redirect", target: "/?act=redirect", status: 302, location: "https://example.com/blocked"},
		{name: "redirect with a non-3xx status falls back to 302", target: "/redirect-default", status: 302, location: "/elsewhere"},
		{name: "deny with status", target: "/?act=deny451", status: 451},
		{name: "REMOTE_ADDR is the resolved client, not the peer", target: "/", status: 418, mutate: func(r *filters.Request) {
			r.Client = netip.MustParseAddr("203.0.113.7")
		}},
		{name: "the socket peer is not REMOTE_ADDR", target: "/", status: 0, mutate: func(r *filters.Request) {
			r.Peer = netip.MustParseAddrPort("203.0.113.7:1234")
		}},
		{name: "Host reaches Coraza", target: "/", status: 421, mutate: func(r *filters.Request) { r.HTTP.Host = "probe-host.example" }},
		{name: "Transfer-Encoding reaches Coraza", target: "/", status: 422, mutate: func(r *filters.Request) {
			r.HTTP.TransferEncoding = []string{"chunked"}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRequest("GET", tc.target, "", browserHeaders)
			if tc.mutate != nil {
				tc.mutate(r)
			}
			v := f.Check(r)
			r.Finish()
			status := 0
			if v.Deny {
				status = v.StatusCode()
			}
			if status != tc.status || v.Drop != tc.drop || v.Headers.Get("Location") != tc.location {
				t.Fatalf("verdict %+v; want status %d drop %v location %q", v, tc.status, tc.drop, tc.location)
			}
			if v.Deny && (v.Shadow || !strings.HasPrefix(v.Reason, "rule 959000")) {
				t.Fatalf("Reason %q, Shadow %v", v.Reason, v.Shadow)
			}
		})
	}
}

// TestTransactionClosedOnEveryPath: phase 5 and Close run through
// r.Finish whether the request was allowed, denied or refused for size.
func TestTransactionClosedOnEveryPath(t *testing.T) {
	f := newTestFilter(t, Config{BodyLimit: 100})
	var finished []string
	f.onFinish = func(r *filters.Request, _ []types.MatchedRule) { finished = append(finished, r.ID) }
	for i, req := range []*filters.Request{
		newRequest("GET", "/", "", browserHeaders),
		newRequest("GET", "/?q=<script>alert(1)</script>", "", browserHeaders),
		newRequest("POST", "/api", benignJSON(500), jsonHeaders()),
	} {
		req.ID = "r" + jsonNumber(i)
		f.Check(req)
		if len(finished) != i {
			t.Fatalf("transaction %d finished before r.Finish", i)
		}
		req.Finish()
	}
	if !slices.Equal(finished, []string{"r0", "r1", "r2"}) {
		t.Fatalf("finished %v", finished)
	}
}

func TestMetricsAndReload(t *testing.T) {
	f := newTestFilter(t, Config{})
	for _, target := range []string{"/", "/?q=<script>alert(1)</script>", "/?q=<script>alert(2)</script>"} {
		r := newRequest("GET", target, "", browserHeaders)
		f.Check(r)
		r.Finish()
	}
	g, err := New(Config{}, filters.Env{Previous: f})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	r := newRequest("GET", "/", "", browserHeaders)
	g.Check(r)
	r.Finish()
	got := map[string]float64{}
	g.CollectMetrics(func(s filters.Sample) {
		key := s.Name + "{" + strings.Join(s.Labels, ",") + "}"
		got[key] = s.Value
		for i := 0; i+1 < len(s.Labels); i += 2 {
			if s.Labels[i] == "rule_id" && strings.TrimLeft(s.Labels[i+1], "0123456789") != "" {
				t.Errorf("label %v is not a rule id", s.Labels)
			}
		}
	})
	want := map[string]float64{
		"waf_evaluations_total{}": 4,
		"waf_interruptions_total{rule_id,949110,action,deny,shadow,false}": 2,
		"waf_rule_matches_total{rule_id,941100}":                           2,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		fields []string
	}{
		{"zero value is valid", Config{}, nil},
		{"full valid", Config{Mode: filters.ModeShadow, Paranoia: 4, InboundThreshold: 10, BodyLimit: 1 << 20, BodyLimitAction: BodyLimitPartial,
			ResponseMIMETypes: []string{"text/html"}, Exclusions: []Exclusion{{Path: "/api/", RuleIDs: []int{942100}}}, SkipBodyPaths: []string{"/upload"}}, nil},
		{"bad mode", Config{Mode: "enforce"}, []string{"mode"}},
		{"paranoia 5", Config{Paranoia: 5}, []string{"paranoia"}},
		{"negative thresholds", Config{InboundThreshold: -1, OutboundThreshold: -1}, []string{"inbound_threshold", "outbound_threshold"}},
		{"negative limits", Config{BodyLimit: -1, ResponseBodyLimit: -1, MaxArguments: -1}, []string{"max_arguments", "body_limit", "response_body_limit"}},
		{"bad action", Config{BodyLimitAction: "drop"}, []string{"body_limit_action"}},
		{"negative budget", Config{MaxConcurrent: -1, Queue: -1, LargeBodyConcurrent: -1, LargeBodyQueue: -1, QueueTimeout: -1, LargeBodyThreshold: -1},
			[]string{"max_concurrent", "queue", "large_body_concurrent", "large_body_queue", "queue_timeout", "large_body_threshold"}},
		{"mime with params", Config{ResponseMIMETypes: []string{"text/html", "text/html; charset=utf-8"}}, []string{"response_mime_types[1]"}},
		{"empty pack", Config{Packs: []string{"rules/x", " "}}, []string{"packs[1]"}},
		{"exclusion problems", Config{Exclusions: []Exclusion{{Path: "api"}, {Path: "/a", RuleIDs: []int{0}, Tags: []string{"a b"}}}},
			[]string{"exclusions[0].path", "exclusions[0]", "exclusions[1].rule_ids[0]", "exclusions[1].tags[0]"}},
		{"injection through a path", Config{SkipBodyPaths: []string{`/a" "id:1,deny`}}, []string{"skip_body_paths[0]"}},
		{"unclean path", Config{SkipBodyPaths: []string{"/a/../b"}}, []string{"skip_body_paths[0]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var got []string
			for _, e := range unjoin(err) {
				var fe *filters.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("error %v is not a *filters.FieldError", e)
				}
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, tc.fields) {
				t.Fatalf("fields %v, want %v (%v)", got, tc.fields, err)
			}
		})
	}
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestPackErrors(t *testing.T) {
	abs, _ := filepath.Abs("../../testdata/packs/bad/rules.conf")
	_, err := New(Config{Packs: []string{"../../testdata/packs/bad"}}, filters.Env{Dir: "."})
	var fe *filters.FieldError // under the key that names the pack, for FILE:LINE of the config
	if !errors.As(err, &fe) || fe.Field != "packs[0]" || !strings.HasPrefix(fe.Err.Error(), abs+":5: ") || !strings.Contains(err.Error(), `invalid action "denyy"`) {
		t.Fatalf("New: %v; want packs[0]: %s:5: and Coraza's message", err, abs)
	}
	if _, err := New(Config{Packs: []string{"testdata/packs/nometa"}}, filters.Env{Dir: "."}); !errors.Is(err, ErrPack) {
		t.Fatalf("pack without pack.yaml: %v, want ErrPack", err)
	}
	if _, err := New(Config{Packs: []string{"testdata/packs/missing"}}, filters.Env{Dir: "."}); !errors.Is(err, ErrPack) {
		t.Fatalf("missing pack: %v, want ErrPack", err)
	}
}

func TestPathPrefixes(t *testing.T) {
	tests := []struct {
		path, prefix string
		want         bool
	}{
		{"/upload", "/upload", true},
		{"/upload/a", "/upload", true},
		{"/uploads", "/upload", false},
		{"/upload/../api/x", "/upload", false},
		{"/x/../upload/a", "/upload", true},
		{"//upload//a", "/upload", true},
		{"/api/x", "/api/", true},
		{"/api", "/api/", true},
		{"/anything", "/", true},
	}
	for _, tc := range tests {
		if got := underPrefix(tc.path, tc.prefix); got != tc.want {
			t.Errorf("underPrefix(%q, %q) = %v, want %v", tc.path, tc.prefix, got, tc.want)
		}
	}
}

// TestArgumentsLimitIsNotABypass: Coraza stops parsing at 1000 arguments;
// an attack placed after them must not pass uninspected.
func TestArgumentsLimitIsNotABypass(t *testing.T) {
	f := newTestFilter(t, Config{})
	pad := strings.Repeat("1,", 1200)
	form := strings.Repeat("a=1&", 1200)
	raised := newTestFilter(t, Config{MaxArguments: 2000})
	r := newRequest("POST", "/api", `{"a":[`+pad+`"<script>alert(1)</script>"]}`, jsonHeaders())
	if v := raised.Check(r); !v.Deny || v.StatusCode() != http.StatusForbidden || !slices.Contains(v.RuleIDs, 941100) {
		t.Errorf("max_arguments 2000: verdict %+v, want the XSS past argument 1000 found", v)
	}
	r.Finish()
	for _, tc := range []struct {
		name, method, target, body string
		hdr                        map[string]string
	}{
		{"JSON body", "POST", "/api", `{"a":[` + pad + `"<script>alert(1)</script>"]}`, jsonHeaders()},
		{"form body", "POST", "/api", form + "x=<script>alert(1)</script>", formHeaders()},
		{"query", "GET", "/api?" + form + "x=<script>alert(1)</script>", "", browserHeaders},
	} {
		r := newRequest(tc.method, tc.target, tc.body, tc.hdr)
		v := f.Check(r)
		r.Finish()
		if !v.Deny || v.StatusCode() != http.StatusBadRequest {
			t.Errorf("%s: verdict %+v, want 400 from the arguments limit", tc.name, v)
		}
	}
}

// TestEarlyBlocking: with early blocking (the default) a request over the
// threshold on its headers alone is refused before its body is read.
func TestEarlyBlocking(t *testing.T) {
	off := false
	hdr := map[string]string{"Content-Type": "application/json", "Accept": "*/*", "User-Agent": "sqlmap/1.7.2#stable (https://sqlmap.org)"}
	body := `{"q":"<script>alert(1)</script>"}`
	for _, tc := range []struct {
		name     string
		cfg      Config
		bodyRead bool
	}{
		{"default: on", Config{}, false},
		{"off", Config{EarlyBlocking: &off}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFilter(t, tc.cfg)
			r := newRequest("POST", "/api", body, hdr)
			orig := r.HTTP.Body
			v := f.Check(r)
			r.Finish()
			if !v.Deny || !slices.Contains(v.RuleIDs, 913100) || v.Reason != "anomaly score "+itoa(v.Score) {
				t.Fatalf("verdict %+v, want a deny by the scanner rule", v)
			}
			if read := r.HTTP.Body != orig; read != tc.bodyRead || slices.Contains(v.RuleIDs, 941100) != tc.bodyRead {
				t.Fatalf("body read %v, XSS in body seen %v; want %v", read, slices.Contains(v.RuleIDs, 941100), tc.bodyRead)
			}
		})
	}
}

// TestDeclaredLengthDoesNotPreallocate: a Content-Length is a claim, not
// bytes. A request declaring 32 MiB that sends a few bytes must not cost
// 32 MiB of buffer (10,000 such connections would pin 320 GiB).
func TestDeclaredLengthDoesNotPreallocate(t *testing.T) {
	const declared = 32 << 20
	for _, cl := range []int64{declared, 60_000} {
		// Before any byte arrives: one read's worth, however much is declared.
		if n := bodyBufferSize(cl, declared); n > 2*bytes.MinRead {
			t.Fatalf("bodyBufferSize(%d) = %d, want at most 2*MinRead", cl, n)
		}
	}
	f := newTestFilter(t, Config{BodyLimit: declared})
	allocated := func(contentLength int64) uint64 {
		least := uint64(math.MaxUint64)
		for range 3 {
			r := newRequest("POST", "/api/orders", `{"sku":"A-100"}`, jsonHeaders())
			r.HTTP.ContentLength = contentLength
			r.HTTP.Header.Set("Content-Length", strconv.FormatInt(contentLength, 10))
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			f.Check(r)
			runtime.ReadMemStats(&after)
			r.Finish()
			least = min(least, after.TotalAlloc-before.TotalAlloc)
		}
		return least
	}
	// The margin is wide because under -race the same Check allocates a few
	// MiB more or less from one run to the next; without it the two differ
	// by the 64 KiB the declared length may reserve.
	honest, inflated := allocated(15), allocated(declared)
	if inflated > honest+8<<20 {
		t.Fatalf("Check allocated %d bytes for a 15-byte body declared as 32 MiB, %d when declared honestly", inflated, honest)
	}
}

// TestPathScopedSettingsNeedCanonicalPath: skip_body_paths and path-scoped
// exclusions are matched on the decoded, cleaned path, while the upstream
// routes on the raw one; a path whose two forms differ gets the full
// inspection. Exclusions for "/" cover every path however it is spelled.
func TestPathScopedSettingsNeedCanonicalPath(t *testing.T) {
	const (
		sqliQuery = "?q=1'+OR+'1'='1'--"
		xssBody   = `{"q":"<script>alert(1)</script>"}`
	)
	tests := []struct {
		name     string
		target   string
		excluded bool // the exclusion applies (942100 does not run) and the body is not read
	}{
		{"canonical sub-path", "/upload/file", true},
		{"canonical, trailing slash", "/upload/", true},
		{"encoded traversal", "/api/users/..%2F..%2Fupload", false},
		{"double slash", "//upload", false},
		{"dot segment", "/upload/./file", false},
		{"dot-dot into the prefix", "/api/../upload/file", false},
		{"needless escape", "/upload/%66ile", false},
		{"another path", "/api/orders", false},
	}
	// A threshold nothing reaches: every rule runs and none interrupts, so
	// what matched shows what was inspected.
	cfg := Config{
		InboundThreshold: 10000,
		SkipBodyPaths:    []string{"/upload"},
		Exclusions:       []Exclusion{{Path: "/upload", Tags: []string{"attack-sqli"}}},
	}
	f := newTestFilter(t, cfg)
	var matched []int
	f.onFinish = func(_ *filters.Request, mrs []types.MatchedRule) {
		matched = matched[:0]
		for _, mr := range mrs {
			matched = append(matched, mr.Rule().ID())
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRequest("POST", tc.target+sqliQuery, xssBody, jsonHeaders())
			orig := r.HTTP.Body
			f.Check(r)
			r.Finish()
			if bodyRead := r.HTTP.Body != orig; bodyRead == tc.excluded {
				t.Errorf("body read = %v, want %v", bodyRead, !tc.excluded)
			}
			if xss := slices.Contains(matched, 941100); xss == tc.excluded {
				t.Errorf("941100 (XSS in the body) matched = %v, want %v (matched %v)", xss, !tc.excluded, matched)
			}
			if sqli := slices.Contains(matched, 942100); sqli == tc.excluded {
				t.Errorf("942100 (SQLi in the query) matched = %v, want %v (matched %v)", sqli, !tc.excluded, matched)
			}
		})
	}
	t.Run("exclusion for /", func(t *testing.T) {
		f := newTestFilter(t, Config{InboundThreshold: 10000, Exclusions: []Exclusion{{Path: "/", Tags: []string{"attack-sqli"}}}})
		f.onFinish = func(_ *filters.Request, mrs []types.MatchedRule) {
			matched = matched[:0]
			for _, mr := range mrs {
				matched = append(matched, mr.Rule().ID())
			}
		}
		for _, target := range []string{"/search", "//search", "/a/..%2Fsearch"} {
			r := newRequest("GET", target+sqliQuery, "", browserHeaders)
			f.Check(r)
			r.Finish()
			if len(matched) == 0 || slices.Contains(matched, 942100) {
				t.Errorf("%s: matched %v; want 942100 excluded by the exclusion for /", target, matched)
			}
		}
	})
}

// TestManyExclusionsCompile: exclusion ids never collide with the early
// blocking rule, however many exclusions there are.
func TestManyExclusionsCompile(t *testing.T) {
	var ex []Exclusion
	for i := range 150 {
		ex = append(ex, Exclusion{Path: fmt.Sprintf("/p%d/", i), RuleIDs: []int{942100}})
	}
	f, err := New(Config{Exclusions: ex}, filters.Env{})
	if err != nil {
		t.Fatalf("150 exclusions: %v", err)
	}
	f.Close()
}
