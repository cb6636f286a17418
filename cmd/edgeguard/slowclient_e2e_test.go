package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// metricValue reads one sample from the admin listener's /metrics.
func metricValue(t *testing.T, admin, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestE2ESlowBodyClosed: connections that declare a 60 KB body and send 3
// bytes are closed within client_body_timeout (they stayed open forever),
// and while they stall they hold only what they sent.
func TestE2ESlowBodyClosed(t *testing.T) {
	up := echoUpstream(t)
	p := start(t, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
server: {client_body_timeout: 1s}
stages: [waf]
`, up.URL)
	const conns = 40
	req := "POST /form HTTP/1.1\r\nHost: example.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\na=b"
	var wg sync.WaitGroup
	ended := make(chan time.Duration, conns)
	began := time.Now()
	for range conns {
		c, err := net.Dial("tcp", p.edge)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, _ = io.Copy(io.Discard, c) // until edgeguard closes it
			ended <- time.Since(began)
		}()
	}
	if held := metricValue(t, p.admin, "edgeguard_body_memory_bytes"); held > conns*3 {
		t.Errorf("stalled bodies hold %v bytes, want at most the %d they sent", held, conns*3)
	}
	wg.Wait()
	close(ended)
	for d := range ended {
		if d > 15*time.Second {
			t.Fatalf("a stalled connection lasted %v with client_body_timeout 1s", d)
		}
	}
	if held := metricValue(t, p.admin, "edgeguard_body_memory_bytes"); held != 0 {
		t.Errorf("after the connections ended, %v bytes are still accounted", held)
	}
}

// TestE2EBodyMemoryCap: a body the stages would have to hold past
// server.max_body_memory is answered 503 and counted; one within it passes.
func TestE2EBodyMemoryCap(t *testing.T) {
	up := echoUpstream(t)
	p := start(t, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
server: {max_body_memory: 4KiB}
stages: [waf]
`, up.URL)
	post := func(size int) int {
		body := "a=" + strings.Repeat("b", size-2)
		resp, err := http.Post("http://"+p.edge+"/form", "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post(1000); s != 200 {
		t.Fatalf("1 KB body: %d, want 200", s)
	}
	if s := post(10_000); s != http.StatusServiceUnavailable {
		t.Fatalf("10 KB body over a 4 KiB cap: %d, want 503", s)
	}
	if n := metricValue(t, p.admin, "edgeguard_body_memory_refused_total"); n != 1 {
		t.Errorf("edgeguard_body_memory_refused_total = %v, want 1", n)
	}
	if s := post(1000); s != 200 {
		t.Fatalf("1 KB body after the refusal: %d, want 200 (the refused bytes were given back)", s)
	}

	// No stage reads the body: it streams to the upstream, holds nothing
	// and is not refused, however large.
	p = start(t, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
server: {max_body_memory: 4KiB}
stages: []
`, up.URL)
	if s := post(100_000); s != 200 {
		t.Fatalf("100 KB streamed body with a 4 KiB cap: %d, want 200", s)
	}
}

// TestE2EStalledReaderCut: a client that stops reading a large response
// loses its connection within send_timeout (it held it, and the handler,
// forever): the request ends, its access line is written, and the client
// never gets the whole body.
func TestE2EStalledReaderCut(t *testing.T) {
	const size = 50 << 20
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		chunk := make([]byte, 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	defer up.Close()
	p := start(t, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "off"}
server: {send_timeout: 1s}
stages: []
`, up.URL)
	c, err := net.Dial("tcp", p.edge)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(64 << 10)
	if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: example.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// Read nothing until edgeguard has given up on this response.
	p.log.waitFor(t, 0, 30*time.Second, map[string]string{"msg": "access", "path": "/big"})
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, _ := io.Copy(io.Discard, c)
	if got >= size {
		t.Fatalf("the stalled client got all %d bytes", got)
	}
}

// TestE2ESlowBodyAfterEarlyRefusal: a request refused before any stage
// reads its body (here volumetric's 429) gets its answer, and its
// connection is closed within client_body_timeout, when the client
// declared a body and stalls. net/http reads the unread rest before it
// answers; that read had no deadline, so the 429 never left and the
// connection stayed open until the client gave up.
func TestE2ESlowBodyAfterEarlyRefusal(t *testing.T) {
	up := echoUpstream(t)
	p := start(t, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
server: {client_body_timeout: 1s}
stages: [volumetric]
volumetric: {rate: "1/h", burst: 2}
`, up.URL)
	// First, the burst of two on one kept-alive connection, the second
	// request after client_body_timeout has passed: a body read to its end
	// leaves no deadline behind to cut the connection's later requests.
	kept, err := net.Dial("tcp", p.edge)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	br := bufio.NewReader(kept)
	for i, req := range []string{
		"POST /form HTTP/1.1\r\nHost: example.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b",
		"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n",
	} {
		if i == 1 {
			time.Sleep(1500 * time.Millisecond) // past client_body_timeout: the time is what is tested
		}
		_ = kept.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(kept, req); err != nil {
			t.Fatalf("request %d on the kept-alive connection: %v", i+1, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d on the kept-alive connection: %v", i+1, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d on the kept-alive connection: %d, want 200", i+1, resp.StatusCode)
		}
	}
	c, err := net.Dial("tcp", p.edge)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	began := time.Now()
	if _, err := io.WriteString(c, "POST /form HTTP/1.1\r\nHost: example.test\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 60000\r\n\r\na=b"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	answer, _ := io.ReadAll(c) // until edgeguard closes it
	took := time.Since(began)
	if !strings.HasPrefix(string(answer), "HTTP/1.1 429 ") {
		t.Errorf("the stalled, refused request got %.60q after %v, want a 429", answer, took)
	}
	if took > 15*time.Second {
		t.Fatalf("the connection of a refused request with a stalled body lasted %v with client_body_timeout 1s", took)
	}
}
