package main

// End-to-end tests of what edgeguard lets into a request before the stages
// see it and after they have: trailers, header spellings, Connection lists.

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// trailerUpstream answers with the headers and trailers that reached it.
func trailerUpstream(t *testing.T, hits *atomic.Int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		out := map[string]any{"body": string(body), "trailer": r.Trailer, "header": r.Header}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// rawExchange writes req on a fresh connection and returns the response
// and its body.
func rawExchange(t *testing.T, addr, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response to %q: %v", req, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

const sqli = "1' UNION SELECT password FROM users--"

// TestRequestTrailersDropped: a chunked POST announcing Trailer: X-Search
// and carrying SQLi in it passes (the body is benign), but the upstream
// sees neither the trailer nor its announcement; both when the WAF has
// read the whole body before forwarding and when the body streams through.
func TestRequestTrailersDropped(t *testing.T) {
	var hits atomic.Int64
	up := trailerUpstream(t, &hits)
	for _, stages := range []string{"[waf]", "[]"} {
		t.Run("stages "+stages, func(t *testing.T) {
			p := start(t, "listen: \"127.0.0.1:0\"\nupstream: \"{{upstream}}\"\nadmin: {listen: \"off\"}\nstages: "+stages+"\n", up.URL)
			req := "POST /search HTTP/1.1\r\nHost: example.test\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n" +
				"Trailer: X-Search\r\nConnection: close\r\n\r\n" +
				"5\r\nhello\r\n0\r\nX-Search: " + sqli + "\r\n\r\n"
			resp, body := rawExchange(t, p.edge, req)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
			}
			if !strings.Contains(body, `"body":"hello"`) {
				t.Fatalf("the body did not arrive: %s", body)
			}
			if strings.Contains(body, "UNION") || strings.Contains(strings.ToLower(body), "x-search") {
				t.Errorf("the upstream saw the trailer: %s", body)
			}
		})
	}
}

// TestClientAddressSpellingsStripped: from an untrusted peer, every
// spelling of a client-address header with underscores (which CGI/WSGI
// stacks read as the hyphenated one) is removed; the upstream sees only
// the X-Real-IP and X-Forwarded-For that edgeguard wrote.
func TestClientAddressSpellingsStripped(t *testing.T) {
	up := echoUpstream(t)
	p := start(t, "listen: \"127.0.0.1:0\"\nupstream: \"{{upstream}}\"\nadmin: {listen: \"off\"}\nstages: []\n", up.URL)
	spellings := []string{"X_Real_IP", "X_Forwarded_For", "x_forwarded_for", "X-Forwarded_For", "X_FORWARDED_HOST",
		"X_Client_IP", "CF_Connecting_IP", "True_Client_IP", "Forwarded_For", "X_Forwarded_Proto"}
	var headers strings.Builder
	for _, s := range spellings {
		headers.WriteString(s + ": 6.6.6.6\r\n")
	}
	resp, s, err := rawRequest(t, p.edge, nil, headers.String())
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for name, v := range s.Header {
		if strings.Contains(name, "_") || strings.Contains(v, "6.6.6.6") {
			t.Errorf("upstream got %s: %s", name, v)
		}
	}
	if s.Header["X-Real-Ip"] != "127.0.0.1" {
		t.Errorf("X-Real-IP = %q, want the peer", s.Header["X-Real-Ip"])
	}
}

// TestConnectionListNamingInspectedHeader: a Connection header naming a
// header that frames the body or that the request carries (and the WAF so
// inspected) is refused with 400 before the stages and the upstream; the
// hop-by-hop names and names of absent headers pass.
func TestConnectionListNamingInspectedHeader(t *testing.T) {
	var hits atomic.Int64
	up := trailerUpstream(t, &hits)
	p := start(t, "listen: \"127.0.0.1:0\"\nupstream: \"{{upstream}}\"\nadmin: {listen: \"off\"}\nstages: []\n", up.URL)
	tests := []struct {
		connection, extra string
		want              int
	}{
		{"Content-Type", "", 400},
		{"close, content-type", "", 400},
		{"Content-Length", "", 400},
		{"Transfer-Encoding", "", 400},
		{"Host", "", 400},
		{"X-Api-Key", "X-Api-Key: k\r\n", 400},
		{"close", "", 200},
		{"keep-alive, close", "", 200},
		{"close, TE", "TE: trailers\r\n", 200},
		{"close, X-Absent", "", 200},
	}
	for _, tt := range tests {
		before := hits.Load()
		body := `{"q": "x"}`
		req := "POST /api HTTP/1.1\r\nHost: example.test\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n" + tt.extra + "Connection: " + tt.connection + "\r\n"
		if !strings.Contains(strings.ToLower(tt.connection), "close") {
			req += "Connection: close\r\n"
		}
		resp, got := rawExchange(t, p.edge, req+"\r\n"+body)
		if resp.StatusCode != tt.want {
			t.Errorf("Connection: %s: %d %s, want %d", tt.connection, resp.StatusCode, got, tt.want)
		}
		if reached := hits.Load() > before; reached != (tt.want == 200) {
			t.Errorf("Connection: %s: reached the upstream: %v", tt.connection, reached)
		}
	}
}
