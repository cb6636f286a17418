package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const nginxBin = "/usr/sbin/nginx"

// nginxAuthConf is the nginx side of forward-auth, as README.md shows it:
// every request is first asked of edgeguard's /nginx; a 403 from there is
// answered with the status edgeguard named (429 for a flood), its
// Retry-After and request id.
const nginxAuthConf = `
    location / {
        auth_request /_edgeguard;
        auth_request_set $eg_status    $upstream_http_x_edgeguard_status;
        auth_request_set $eg_retry     $upstream_http_retry_after;
        auth_request_set $eg_ratelimit $upstream_http_ratelimit;
        auth_request_set $eg_id        $upstream_http_x_request_id;
        error_page 403 = @edgeguard_denied;
        add_header RateLimit $eg_ratelimit always;
        proxy_pass http://{{upstream}};
    }
    location = /_edgeguard {
        internal;
        proxy_pass http://{{auth}}/nginx;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Original-Method $request_method;
        proxy_set_header X-Original-URI $request_uri;
        proxy_set_header X-Forwarded-Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Request-Id $request_id;
    }
    location @edgeguard_denied {
        add_header Retry-After $eg_retry always;
        add_header X-Request-Id $eg_id always;
        if ($eg_status = 429) {
            return 429 "too many requests\n";
        }
        return 403 "forbidden\n";
    }
`

// TestE2ENginxAuthRequest: a real nginx asks edgeguard's forward-auth
// listener about every request: a SQLi query string is refused with 403,
// a flood with 429 and edgeguard's Retry-After, and a benign request
// reaches nginx's upstream.
func TestE2ENginxAuthRequest(t *testing.T) {
	if _, err := os.Stat(nginxBin); err != nil {
		t.Skipf("nginx is not installed at %s (apt-get install nginx): %v", nginxBin, err)
	}
	up := echoUpstream(t)
	p := start(t, `
listen: 127.0.0.1:0
admin: {listen: "off"}
auth: {listen: 127.0.0.1:0}
client_ip: {trusted_proxies: [127.0.0.1/32]}
stages: [reputation, volumetric, waf]
volumetric: {rate: 1/m, burst: 3}
waf: {mode: block}
`, "")
	m, _ := p.log.waitFor(t, 0, time.Second, map[string]string{"msg": "serving"})
	nginx := startNginx(t, strings.NewReplacer("{{upstream}}", strings.TrimPrefix(up.URL, "http://"), "{{auth}}", fmt.Sprint(m["auth"])).Replace(nginxAuthConf))

	get := func(uri, client string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+nginx+uri, nil)
		req.Header.Set("X-Forwarded-For", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	resp := get("/items?id=7", "198.51.100.1")
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"method":"GET"`) {
		t.Errorf("benign: %d %q, want 200 from the upstream", resp.StatusCode, body)
	}
	resp = get("/items?id=1%27%20UNION%20SELECT%20password%20FROM%20users--", "198.51.100.2")
	if resp.StatusCode != 403 || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("SQLi: %d, request id %q; want 403 with edgeguard's request id", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	var codes []int
	for range 5 {
		resp = get("/", "198.51.100.3")
		codes = append(codes, resp.StatusCode)
	}
	if fmt.Sprint(codes) != "[200 200 200 429 429]" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("flood: %v, last Retry-After %q; want [200 200 200 429 429] with Retry-After", codes, resp.Header.Get("Retry-After"))
	}
}

// startNginx runs nginx in the foreground with the given locations in one
// server on a loopback port, and returns that host:port. The listening
// socket is the test's, handed to nginx open (nginx's NGINX environment
// variable, its way of inheriting sockets across a binary upgrade): no
// other process can take the port between choosing it and nginx's bind,
// and connections queue on it until nginx accepts them. (nginx 1.22 with
// master_process off crashes on an inherited socket, so a master runs one
// worker.)
func startNginx(t *testing.T, locations string) string {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sock, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	addr := ln.Addr().String()
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen %[2]s;
%[3]s
    }
}
`, dir, addr, locations)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginxBin, "-p", dir, "-c", path, "-e", filepath.Join(dir, "error.log"))
	cmd.ExtraFiles = []*os.File{sock} // descriptor 3 in nginx
	cmd.Env = append(os.Environ(), "NGINX=3;")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error.log:\n%s", log)
		}
	})
	// nginx writes its pid file once its configuration is loaded; one that
	// exits before has refused it.
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := os.Stat(filepath.Join(dir, "nginx.pid")); err == nil {
			return addr
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited at start:\n%s", log)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx wrote no pid file within 20s")
		}
	}
}
