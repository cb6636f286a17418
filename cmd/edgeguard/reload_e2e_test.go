package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EReloadKeepsGatesAndWaitsForRequests: across a SIGHUP, a route's
// max_in_flight still counts the request admitted before it (a fresh gate
// let a second one in), and the old configuration is closed only when that
// request has finished, not at shutdown_timeout.
func TestE2EReloadKeepsGatesAndWaitsForRequests(t *testing.T) {
	arrived := make(chan struct{}, 4)
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "done")
	}))
	defer up.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	cfg := `listen: "127.0.0.1:0"
upstreams: {app: {backends: ["{{upstream}}"]}}
routes:
  - {path: /slow, upstream: app, shield: {max_in_flight: 1}}
admin: {listen: "off"}
server: {shutdown_timeout: 1s}
stages: []
log: {level: LEVEL}
`
	p := start(t, strings.Replace(cfg, "LEVEL", "info", 1), up.URL)
	client := &http.Client{Timeout: 30 * time.Second}
	first := make(chan string, 1)
	go func() {
		resp, err := client.Get("http://" + p.edge + "/slow")
		if err != nil {
			first <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		first <- resp.Status + " " + string(b)
	}()
	<-arrived

	p.writeConfig(t, strings.Replace(cfg, "LEVEL", "debug", 1), up.URL) // a real change, same route
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	_, next := p.log.waitFor(t, 0, 20*time.Second, map[string]string{"msg": "reloaded"})

	quick := &http.Client{Timeout: 10 * time.Second}
	resp, err := quick.Get("http://" + p.edge + "/slow")
	if err != nil {
		t.Fatalf("second request after the reload: %v (did it reach the blocked upstream past the cap?)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second request after the reload: %d, want 503: the reload doubled max_in_flight", resp.StatusCode)
	}

	// shutdown_timeout passes with the first request still running: the
	// old configuration says it waits, and is not closed.
	_, next = p.log.waitFor(t, next, 20*time.Second, map[string]string{"level": "WARN", "in_flight": "1"})
	if strings.Contains(p.log.String(), "previous config closed") {
		t.Fatal("the old config was closed while a request still used it")
	}
	close(release)
	if got := <-first; got != "200 OK done" {
		t.Fatalf("the request across the reload: %q", got)
	}
	p.log.waitFor(t, next, 20*time.Second, map[string]string{"msg": "previous config closed"})
}
