package main

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// TestE2EDemo runs `edgeguard demo` as a new user would and tries what it
// prints: a plain GET reaches the demo upstream, an SQL injection is
// refused by the WAF, a spoofed header changes nothing.
func TestE2EDemo(t *testing.T) {
	bin := binary(t)
	cmd := exec.Command(bin, "demo", "-listen", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := newLogBuffer()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go logs.consume(stderr)
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("demo log:\n%s", logs.String())
		}
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var edge, admin string
	re := regexp.MustCompile(`listening on http://(\S+) \(admin http://(\S+)\)`)
	deadline := time.After(60 * time.Second)
	for edge == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("demo exited before printing its address")
			}
			if m := re.FindStringSubmatch(l); m != nil {
				edge, admin = m[1], m[2]
			}
		case <-deadline:
			t.Fatal("demo printed no address within 60s")
		}
	}
	get := func(path string, h map[string]string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+edge+path, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/", nil); code != 200 || !regexp.MustCompile(`demo upstream`).MatchString(body) {
		t.Fatalf("GET /: %d %s", code, body)
	}
	if code, _ := get("/?id="+url.QueryEscape("1' OR '1'='1"), nil); code != 403 {
		t.Fatalf("SQL injection: %d, want 403", code)
	}
	if code, body := get("/", map[string]string{"X-Forwarded-For": "6.6.6.6"}); code != 200 || regexp.MustCompile(`6\.6\.6\.6`).MatchString(body) {
		t.Fatalf("spoofed X-Forwarded-For: %d %s", code, body)
	}
	// The printed loop, twice, as a curious user runs it: 429s once the
	// burst is spent, and never a ban (a closed connection) for trying.
	for round := 1; round <= 2; round++ {
		codes := map[int]int{}
		for i := 0; i < 30; i++ {
			resp, err := http.Get("http://" + edge + "/")
			if err != nil {
				t.Fatalf("loop round %d, request %d: %v (banned by the demo's own loop?)", round, i+1, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[resp.StatusCode]++
		}
		if round == 1 && codes[429] == 0 {
			t.Errorf("loop round 1 saw no 429: %v", codes)
		}
		if codes[403] > 0 {
			t.Errorf("loop round %d: %d answers 403: %v", round, codes[403], codes)
		}
	}
	if code, _ := get("/", nil); code != 200 && code != 429 {
		t.Errorf("after the loops: %d", code)
	}
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("admin /metrics: %v", err)
	}
	resp.Body.Close()
}
