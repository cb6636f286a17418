package edgeguardcaddy

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// caddyfileE2E guards three sites, one per kind of terminal handler: the
// guard must run before respond, file_server and reverse_proxy alike.
// Caddy resolves the client from X-Forwarded-For sent by the loopback
// test client (trusted_proxies), so the test can speak for many clients.
const caddyfileE2E = `{
	admin {{admin}}
	auto_https off
	servers {
		trusted_proxies static 127.0.0.1/32
		client_ip_headers X-Forwarded-For
	}
}
http://127.0.0.1:{{proxyPort}} {
	reverse_proxy {{upstream}}
	edgeguard api {
		volumetric {
			rate 1/m
			burst 3
		}
		waf {
			mode block
		}
		quota {
			store memory
			key ip
			policies {
				name default
				rate 600/m
				burst {{quotaBurst}}
			}
		}
	}
}
http://127.0.0.1:{{respondPort}} {
	respond "hello"
	edgeguard respond {
		waf {
			mode block
		}
	}
}
http://127.0.0.1:{{filePort}} {
	root * {{root}}
	file_server
	edgeguard files {
		waf {
			mode block
		}
	}
}
`

// TestE2ECaddy builds Caddy with the module, runs it, and checks a SQLi
// (403 on every site), a flood (429 with Retry-After), a benign request
// (200 with RateLimit headers), and a reload with a changed quota that
// takes effect while the volumetric buckets of every client carry over.
func TestE2ECaddy(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds Caddy")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "caddy-edgeguard") // not "caddy": that is its config directory under XDG_CONFIG_HOME
	build := exec.Command("go", "build", "-o", bin, "./cmd/caddy")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/caddy: %v\n%s", err, out)
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "upstream") }))
	defer up.Close()
	root := filepath.Join(dir, "www")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(root, "index.html"), []byte("file"), 0o644)
	ports := map[string]string{"admin": freeAddr(t), "proxyPort": freePort(t), "respondPort": freePort(t), "filePort": freePort(t)}
	caddyfile := filepath.Join(dir, "Caddyfile")
	write := func(quotaBurst int) {
		r := strings.NewReplacer("{{admin}}", ports["admin"], "{{proxyPort}}", ports["proxyPort"], "{{respondPort}}", ports["respondPort"],
			"{{filePort}}", ports["filePort"], "{{upstream}}", strings.TrimPrefix(up.URL, "http://"), "{{root}}", root,
			"{{quotaBurst}}", fmt.Sprint(quotaBurst))
		if err := os.WriteFile(caddyfile, []byte(r.Replace(caddyfileE2E)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(50)
	cmd := exec.Command(bin, "run", "--config", caddyfile, "--adapter", "caddyfile")
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("caddy log:\n%s", log.String())
		}
	}()
	proxy := "http://127.0.0.1:" + ports["proxyPort"]
	waitListening(t, "127.0.0.1:"+ports["proxyPort"])

	get := func(url, client string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Forwarded-For", client)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	const sqli = "/?id=1%27%20UNION%20SELECT%20password%20FROM%20users--"
	for _, site := range []string{"proxyPort", "respondPort", "filePort"} {
		base := "http://127.0.0.1:" + ports[site]
		if resp, body := get(base+sqli, "198.51.100.10"); resp.StatusCode != 403 {
			t.Errorf("%s: SQLi answered %d %q, want 403 from edgeguard", site, resp.StatusCode, body)
		}
		if resp, body := get(base+"/", "198.51.100.11"); resp.StatusCode != 200 {
			t.Errorf("%s: benign answered %d %q, want 200", site, resp.StatusCode, body)
		}
	}

	resp, body := get(proxy+"/items", "198.51.100.1")
	if resp.StatusCode != 200 || body != "upstream" || resp.Header.Get("RateLimit") == "" || !strings.Contains(resp.Header.Get("RateLimit-Policy"), "q=50") {
		t.Errorf("benign: %d %q RateLimit %q Policy %q; want 200 from the upstream with RateLimit headers", resp.StatusCode, body,
			resp.Header.Get("RateLimit"), resp.Header.Get("RateLimit-Policy"))
	}
	var codes []int
	for range 4 {
		resp, _ = get(proxy+"/", "198.51.100.2")
		codes = append(codes, resp.StatusCode)
	}
	if fmt.Sprint(codes) != "[200 200 200 429]" || resp.Header.Get("Retry-After") == "" {
		t.Errorf("flood: %v, Retry-After %q; want [200 200 200 429] with Retry-After", codes, resp.Header.Get("Retry-After"))
	}

	// Reload with another quota burst: the quota takes it, the volumetric
	// buckets (unchanged settings) carry over: the flooder stays refused,
	// 198.51.100.1 has two of its three requests left.
	write(9)
	if out, err := exec.Command(bin, "reload", "--config", caddyfile, "--adapter", "caddyfile", "--address", ports["admin"]).CombinedOutput(); err != nil {
		t.Fatalf("caddy reload: %v\n%s", err, out)
	}
	if resp, _ := get(proxy+"/", "198.51.100.2"); resp.StatusCode != 429 {
		t.Errorf("flooder after reload: %d, want 429 (its bucket kept)", resp.StatusCode)
	}
	codes = nil
	var policy string
	for range 3 {
		resp, _ = get(proxy+"/", "198.51.100.1")
		codes = append(codes, resp.StatusCode)
		if policy == "" {
			policy = resp.Header.Get("RateLimit-Policy")
		}
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("earlier client after reload: %v, want [200 200 429] (one of its 3 spent before)", codes)
	}
	if !strings.Contains(policy, "q=9") {
		t.Errorf("RateLimit-Policy after reload %q, want the new burst q=9", policy)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func freePort(t *testing.T) string {
	_, port, _ := net.SplitHostPort(freeAddr(t))
	return port
}

// waitListening waits until Caddy accepts on addr (it starts in the
// background; nothing else tells when).
func waitListening(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not listen on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
