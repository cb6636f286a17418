package waf

import (
	"bufio"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// stage starts the stage in front of upstream on 127.0.0.1 and returns the
// base URL. Transactions finish through the same path as in production.
func stage(t *testing.T, cfg Config, upstream http.HandlerFunc) (string, *ftwServer) {
	t.Helper()
	f, err := New(cfg, filters.Env{Dir: "."})
	if err != nil {
		t.Fatal(err)
	}
	s, err := startStageServer(f, upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.close(); f.Close() })
	return "http://" + s.Addr(), s
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	req.Header.Set("Accept", "text/html,*/*;q=0.8")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// sqlLeak is an error page CRS's outbound rules (951220) block.
const sqlLeak = "<html><body>You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near ''' at line 1</body></html>"

func TestResponseInspection(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		ctype      string
		header     string
		body       string
		wantStatus int
		mustNotSee string
	}{
		{name: "CRS blocks a SQL error page", cfg: Config{InspectResponse: true}, ctype: "text/html", body: sqlLeak, wantStatus: 403, mustNotSee: "SQL syntax"},
		{name: "phase 4 rule with its own status", cfg: Config{InspectResponse: true}, ctype: "text/html; charset=utf-8", body: "ok TOPSECRET-RESPONSE", wantStatus: 502, mustNotSee: "TOPSECRET"},
		{name: "phase 3 rule on a response header", cfg: Config{InspectResponse: true}, ctype: "application/octet-stream", header: "yes", body: "TOPSECRET-RESPONSE", wantStatus: 502, mustNotSee: "TOPSECRET"},
		{name: "unlisted type is not inspected", cfg: Config{InspectResponse: true}, ctype: "application/json", body: `"TOPSECRET-RESPONSE"`, wantStatus: 200},
		{name: "inspect_response off", cfg: Config{}, ctype: "text/html", body: sqlLeak, wantStatus: 200},
		{name: "past response_body_limit is not inspected", cfg: Config{InspectResponse: true, ResponseBodyLimit: 64}, ctype: "text/plain", body: strings.Repeat("x", 100) + "TOPSECRET-RESPONSE", wantStatus: 200},
		{name: "within response_body_limit is inspected", cfg: Config{InspectResponse: true, ResponseBodyLimit: 64}, ctype: "text/plain", body: "TOPSECRET-RESPONSE" + strings.Repeat("x", 100), wantStatus: 502, mustNotSee: "TOPSECRET"},
		{name: "shadow mode lets it through", cfg: Config{InspectResponse: true, Mode: filters.ModeShadow}, ctype: "text/html", body: sqlLeak, wantStatus: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Packs = []string{"testdata/packs/actions"}
			url, _ := stage(t, tc.cfg, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				if tc.header != "" {
					w.Header().Set("X-Leak", tc.header)
				}
				// Written in pieces, as a proxy copies.
				for i := 0; i < len(tc.body); i += 10 {
					io.WriteString(w, tc.body[i:min(i+10, len(tc.body))])
				}
			})
			status, body := get(t, url+"/page")
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", status, tc.wantStatus, body)
			}
			if tc.mustNotSee != "" && strings.Contains(body, tc.mustNotSee) {
				t.Fatalf("blocked response leaked %q: %q", tc.mustNotSee, body)
			}
			if tc.wantStatus == 200 && body != tc.body {
				t.Fatalf("body %q, want %q", body, tc.body)
			}
		})
	}
}

func TestResponseShadowAudit(t *testing.T) {
	audit := filepath.Join(t.TempDir(), "audit.jsonl")
	url, _ := stage(t, Config{InspectResponse: true, Mode: filters.ModeShadow, Audit: audit, Packs: []string{"testdata/packs/actions"}},
		func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "TOPSECRET-RESPONSE")
		})
	if status, _ := get(t, url+"/"); status != 200 {
		t.Fatalf("status %d", status)
	}
	evs := readAudit(t, audit)
	if len(evs) != 1 || !evs[0].Shadow || evs[0].RuleID != 9590009 || evs[0].Status != 502 {
		t.Fatalf("audit %+v", evs)
	}
}

// TestStreamingThroughInspector: Flush reaches the client for an uninspected
// type while the upstream is still writing. (An inspected type stays held:
// TestFlushKeepsInspectedBodyHeld.)
func TestStreamingThroughInspector(t *testing.T) {
	for _, ctype := range []string{"text/event-stream"} {
		t.Run(ctype, func(t *testing.T) {
			release := make(chan struct{})
			url, _ := stage(t, Config{InspectResponse: true}, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", ctype)
				io.WriteString(w, "data: one\n\n")
				if err := http.NewResponseController(w).Flush(); err != nil {
					t.Errorf("Flush through the wrapper: %v", err)
				}
				<-release
				io.WriteString(w, "data: two\n\n")
			})
			resp, err := http.Get(url + "/events")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			line, err := br.ReadString('\n')
			if err != nil || line != "data: one\n" {
				t.Fatalf("first event %q, %v: not streamed before the upstream finished", line, err)
			}
			close(release)
			rest, _ := io.ReadAll(br)
			if string(rest) != "\ndata: two\n\n" {
				t.Fatalf("rest %q", rest)
			}
		})
	}
}

// TestHijackThroughInspector: a WebSocket-style upgrade takes the
// connection through the wrapper.
func TestHijackThroughInspector(t *testing.T) {
	url, _ := stage(t, Config{InspectResponse: true}, func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Errorf("SetWriteDeadline through Unwrap: %v", err)
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack through the wrapper: %v", err)
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo: " + line)
		brw.Flush()
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\nAccept: */*\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(conn, "hello\n")
	if line, _ := br.ReadString('\n'); line != "echo: hello\n" {
		t.Fatalf("after hijack got %q", line)
	}
}

// flushingUpstream writes body the way httputil.ReverseProxy relays an
// upstream response without Content-Length: WriteHeader, Flush, then a Flush
// after every Write.
func flushingUpstream(w http.ResponseWriter, ctype, body string) {
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(http.StatusOK)
	flush := http.NewResponseController(w).Flush
	flush()
	for i := 0; i < len(body); i += 10 {
		io.WriteString(w, body[i:min(i+10, len(body))])
		flush()
	}
}

// TestFlushKeepsInspectedBodyHeld: a Flush does not release a body of an
// inspected type (nothing reaches the writer below before phase 4 has run),
// while an uninspected streaming type is flushed as it is written.
func TestFlushKeepsInspectedBodyHeld(t *testing.T) {
	f := newTestFilter(t, Config{InspectResponse: true})
	tests := []struct {
		ctype      string
		body       string
		held       bool
		wantStatus int
	}{
		{"text/html", sqlLeak, true, http.StatusForbidden},
		{"text/plain", "a plain page, written in pieces", true, http.StatusOK},
		{"text/event-stream", "data: one\n\ndata: two\n\n", false, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.ctype, func(t *testing.T) {
			r := newRequest("GET", "/page", "", browserHeaders)
			if v := f.Check(r); v.Deny {
				t.Fatalf("request denied: %v", v.RuleIDs)
			}
			rec := httptest.NewRecorder()
			flushingUpstream(r.ResponseWriter(rec), tc.ctype, tc.body)
			if tc.held && (rec.Flushed || rec.Body.Len() > 0) {
				t.Fatalf("held body released by Flush: flushed %v, %q sent before inspection", rec.Flushed, rec.Body.String())
			}
			if !tc.held && (!rec.Flushed || rec.Body.String() != tc.body) {
				t.Fatalf("streaming type not flushed as written: flushed %v, body %q", rec.Flushed, rec.Body.String())
			}
			r.Finish()
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d (body %q)", rec.Code, tc.wantStatus, rec.Body.String())
			}
			if tc.wantStatus == http.StatusOK && rec.Body.String() != tc.body {
				t.Fatalf("body %q, want %q", rec.Body.String(), tc.body)
			}
			if tc.wantStatus != http.StatusOK && strings.Contains(rec.Body.String(), "SQL syntax") {
				t.Fatalf("blocked response leaked: %q", rec.Body.String())
			}
		})
	}
}

// TestResponseInspectionThroughReverseProxy: with a real httputil.ReverseProxy
// as the upstream handler, an error page is blocked whether the backend sends
// it chunked (the proxy then flushes after every write) or with a
// Content-Length, and server-sent events still stream.
func TestResponseInspectionThroughReverseProxy(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			flushingUpstream(w, "text/html", sqlLeak)
		case "/length":
			w.Header().Set("Content-Type", "text/html")
			w.Header().Set("Content-Length", strconv.Itoa(len(sqlLeak)))
			io.WriteString(w, sqlLeak)
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: one\n\n")
			http.NewResponseController(w).Flush()
			<-release
			io.WriteString(w, "data: two\n\n")
		}
	}))
	defer backend.Close()
	defer close(release)
	target, _ := url.Parse(backend.URL)
	proxy := &httputil.ReverseProxy{
		Rewrite:  func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		ErrorLog: log.New(io.Discard, "", 0),
	}
	base, _ := stage(t, Config{InspectResponse: true}, proxy.ServeHTTP)
	for _, p := range []string{"/chunked", "/length"} {
		status, body := get(t, base+p)
		if status != http.StatusForbidden || strings.Contains(body, "SQL syntax") {
			t.Errorf("%s: status %d, body %q; want 403 without the error page", p, status, body)
		}
	}
	resp, err := http.Get(base + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event %q, %v: not streamed before the backend finished", line, err)
	}
}
