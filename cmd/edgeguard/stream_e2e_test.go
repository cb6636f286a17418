package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestE2EStreamingAndUpgrade: with every stage on, server-sent events reach
// the client as they are flushed, and a connection upgrade (WebSocket's
// handshake) hands the raw connection through in both directions.
func TestE2EStreamingAndUpgrade(t *testing.T) {
	// The upstream sends the first event and then waits until the client has
	// read it: if anything on the way buffered the stream, the client could
	// not read it, and the upstream goes on only at its timeout, which the
	// test sees.
	readFirst := make(chan struct{})
	var buffered atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				fmt.Fprintf(w, "data: tick %d\n\n", i)
				w.(http.Flusher).Flush()
				if i == 0 {
					select {
					case <-readFirst:
					case <-time.After(20 * time.Second):
						buffered.Store(true)
					}
				}
			}
		case "/ws":
			if r.Header.Get("Upgrade") != "websocket" {
				http.Error(w, "want an upgrade", 400)
				return
			}
			conn, buf, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			buf.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			buf.Flush()
			line, _ := buf.ReadString('\n')
			buf.WriteString("echo: " + line)
			buf.Flush()
		}
	}))
	defer up.Close()
	p := start(t, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
stages: [reputation, volumetric, waf, quota]
volumetric: {rate: "100/s"}
waf: {inspect_response: true}
quota: {store: memory, key: [ip], policies: [{name: p, rate: "100/s"}]}
`, up.URL)

	resp, err := http.Get("http://" + p.edge + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || first != "data: tick 0\n" {
		t.Fatalf("first event %q, %v", first, err)
	}
	if buffered.Load() {
		t.Errorf("the first event reached the client only after the upstream had given up waiting: the stream was buffered")
	}
	close(readFirst)
	io.Copy(io.Discard, resp.Body)

	conn, err := net.Dial("tcp", p.edge)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	if !strings.HasPrefix(status, "HTTP/1.1 101") {
		t.Fatalf("upgrade answered %q", status)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil || l == "\r\n" {
			break
		}
	}
	fmt.Fprintf(conn, "hello over the upgraded connection\n")
	echo, err := br.ReadString('\n')
	if err != nil || echo != "echo: hello over the upgraded connection\n" {
		t.Fatalf("after the upgrade: %q, %v", echo, err)
	}
}
