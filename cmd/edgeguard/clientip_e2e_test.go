package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"

	"github.com/edgeguard/edgeguard/internal/refused"
)

const ipConfig = `
listen: "127.0.0.1:0"
upstream: "{{upstream}}"
stages: []
admin: {listen: "127.0.0.1:0"}
log: {level: info, format: json}
client_ip:
  proxy_protocol: {trusted: [%PP%], required: %REQ%, header_timeout: 300ms}
  trusted_proxies: [%TP%]
`

func ipCfg(pp, tp string, required bool) string {
	req := "false"
	if required {
		req = "true"
	}
	return strings.NewReplacer("%PP%", pp, "%TP%", tp, "%REQ%", req).Replace(ipConfig)
}

func proxyV2(t *testing.T, src, dst string) []byte {
	t.Helper()
	s, d := netip.MustParseAddrPort(src), netip.MustParseAddrPort(dst)
	proto := proxyproto.TCPv4
	if s.Addr().Is6() {
		proto = proxyproto.TCPv6
	}
	h := proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proto,
		SourceAddr: net.TCPAddrFromAddrPort(s), DestinationAddr: net.TCPAddrFromAddrPort(d)}
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestE2EClientIP runs the acceptance cases of the client-IP rule through
// the binary: what the upstream sees is what counts.
func TestE2EClientIP(t *testing.T) {
	up := echoUpstream(t)
	tests := []struct {
		name    string
		cfg     string
		prefix  func(t *testing.T) []byte
		headers string
		refused bool
		realIP  string
		xff     string
	}{
		{name: "spoofed leftmost X-Forwarded-For is ignored behind a trusted proxy",
			cfg: ipCfg(`"10.0.0.0/8"`, `"127.0.0.0/8"`, false), headers: "X-Forwarded-For: 6.6.6.6, 203.0.113.7\r\n",
			realIP: "203.0.113.7", xff: "203.0.113.7, 127.0.0.1"},
		{name: "an untrusted peer's headers are ignored",
			cfg: ipCfg(`"10.0.0.0/8"`, `"10.0.0.0/8"`, false), headers: "X-Forwarded-For: 6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\n",
			realIP: "127.0.0.1", xff: "127.0.0.1"},
		{name: "PROXY v1 from a trusted peer is used",
			cfg:    ipCfg(`"127.0.0.0/8"`, `"10.0.0.0/8"`, false),
			prefix: func(*testing.T) []byte { return []byte("PROXY TCP4 192.0.2.1 192.0.2.2 5555 80\r\n") },
			realIP: "192.0.2.1", xff: "192.0.2.1"},
		{name: "PROXY v2 (IPv6) from a trusted peer is used",
			cfg:    ipCfg(`"127.0.0.0/8"`, `"10.0.0.0/8"`, false),
			prefix: func(t *testing.T) []byte { return proxyV2(t, "[2001:db8::7]:4444", "[2001:db8::1]:443") },
			realIP: "2001:db8::7", xff: "2001:db8::7"},
		{name: "PROXY v1 UNKNOWN keeps the peer",
			cfg:    ipCfg(`"127.0.0.0/8"`, `"10.0.0.0/8"`, false),
			prefix: func(*testing.T) []byte { return []byte("PROXY UNKNOWN\r\n") },
			realIP: "127.0.0.1", xff: "127.0.0.1"},
		{name: "PROXY source then X-Forwarded-For when the source is a trusted proxy",
			cfg:     ipCfg(`"127.0.0.0/8"`, `"198.51.100.0/24"`, false),
			prefix:  func(*testing.T) []byte { return []byte("PROXY TCP4 198.51.100.9 192.0.2.2 5555 80\r\n") },
			headers: "X-Forwarded-For: 6.6.6.6, 203.0.113.7\r\n",
			realIP:  "203.0.113.7", xff: "203.0.113.7, 198.51.100.9"},
		{name: "PROXY from an untrusted peer is refused",
			cfg:     ipCfg(`"10.0.0.0/8"`, `"10.0.0.0/8"`, false),
			prefix:  func(*testing.T) []byte { return []byte("PROXY TCP4 192.0.2.1 192.0.2.2 5555 80\r\n") },
			refused: true},
		{name: "required: a trusted peer without a PROXY header is refused",
			cfg: ipCfg(`"127.0.0.0/8"`, `"10.0.0.0/8"`, true), refused: true},
		{name: "malformed PROXY v1 from a trusted peer is refused",
			cfg:     ipCfg(`"127.0.0.0/8"`, `"10.0.0.0/8"`, false),
			prefix:  func(*testing.T) []byte { return []byte("PROXY TCP4 999.0.2.1 192.0.2.2 5555 80\r\n") },
			refused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := start(t, tt.cfg, up.URL)
			var prefix []byte
			if tt.prefix != nil {
				prefix = tt.prefix(t)
			}
			resp, s, err := rawRequest(t, p.edge, prefix, tt.headers)
			if tt.refused {
				if err == nil && resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("want the connection refused (closed or 400), got %d with upstream headers %v", resp.StatusCode, s.Header)
				}
				return
			}
			if err != nil {
				t.Fatalf("request failed: %v", err)
			}
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := s.Header["X-Real-Ip"]; got != tt.realIP {
				t.Errorf("upstream X-Real-IP %q, want %q", got, tt.realIP)
			}
			if got := s.Header["X-Forwarded-For"]; got != tt.xff {
				t.Errorf("upstream X-Forwarded-For %q, want %q", got, tt.xff)
			}
			if id := resp.Header.Get("X-Request-Id"); id == "" || s.Header["X-Request-Id"] != id {
				t.Errorf("request id: client got %q, upstream got %q", id, s.Header["X-Request-Id"])
			}
		})
	}
}

// TestE2ESlowProxyHeader: a peer that drips its PROXY header is cut off at
// header_timeout, and meanwhile other connections are accepted and served.
func TestE2ESlowProxyHeader(t *testing.T) {
	up := echoUpstream(t)
	// A header timeout long enough that a loaded machine serves the normal
	// client well within it: the test checks the order of events, not how
	// fast this machine is.
	cfg := strings.Replace(ipCfg(`"127.0.0.0/8"`, `"10.0.0.0/8"`, false), "header_timeout: 300ms", "header_timeout: 3s", 1)
	p := start(t, cfg, up.URL)

	slow, err := net.Dial("tcp", p.edge)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	began := time.Now()
	closed := make(chan time.Duration, 1)
	go func() {
		// The signature's first bytes, one a second: the header is never
		// complete, and the peer is still sending at the timeout. (Once a
		// whole "PROXY " has arrived, go-proxyproto drops a partial line on
		// its own, sooner.)
		for _, b := range []byte("PROX") {
			if _, err := slow.Write([]byte{b}); err != nil {
				break
			}
			time.Sleep(time.Second) // the client's pace, not a wait for the server
		}
		_ = slow.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, _ = io.ReadAll(slow)
		closed <- time.Since(began)
	}()

	// While the slow one drips, a normal client is served, before the slow
	// one's header timeout has run out.
	resp, _, err := rawRequest(t, p.edge, nil, "")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("a normal client was held up by the slow one: %v", err)
	}
	select {
	case d := <-closed:
		t.Fatalf("the slow connection was closed after %v, before the normal client was served", d)
	default:
	}
	select {
	case d := <-closed:
		t.Logf("slow header cut off after %v", d)
		if d < 3*time.Second {
			t.Errorf("slow header cut off after %v, before the 3s header_timeout", d)
		}
		if d >= 15*time.Second {
			t.Errorf("slow header not cut off: the connection lasted %v, until the client gave up", d)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("the slow PROXY header was never cut off")
	}
}

// TestE2EReload: a refused reload leaves the old config serving every
// request, whether the new file fails to parse or fails later, while the new
// Guard is built; a good one takes effect. Old and new configs differ in
// what the upstream sees (whether X-Forwarded-For from the loopback peer is
// trusted), so the test can tell which one serves.
func TestE2EReload(t *testing.T) {
	up := echoUpstream(t)
	oldCfg := ipCfg(`"10.0.0.0/8"`, `"10.0.0.0/8"`, false)
	newCfg := ipCfg(`"10.0.0.0/8"`, `"127.0.0.0/8"`, false)
	p := start(t, oldCfg, up.URL)

	// realIP is the client address the upstream was given for a request
	// that claims 203.0.113.9: the peer's under the old config, the claim's
	// under the new one.
	realIP := func() string {
		t.Helper()
		_, s, err := rawRequest(t, p.edge, nil, "X-Forwarded-For: 203.0.113.9\r\n")
		if err != nil {
			t.Fatal(err)
		}
		return s.Header["X-Real-Ip"]
	}
	const oldIP, newIP = "127.0.0.1", "203.0.113.9"
	if got := realIP(); got != oldIP {
		t.Fatalf("old config: upstream saw X-Real-Ip %q, want %q", got, oldIP)
	}

	// A client keeps requesting across every reload; served reports each
	// success, so the test waits for traffic instead of sleeping.
	stop := make(chan struct{})
	failures := make(chan error, 1000)
	served := make(chan struct{}, 100000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := client.Get("http://" + p.edge + "/")
			if err != nil {
				failures <- err
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failures <- errors.New(resp.Status)
				continue
			}
			served <- struct{}{}
		}
	}()
	flow := func(n int) {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for range n {
			select {
			case <-served:
			case <-timeout:
				t.Fatalf("fewer than %d requests served within 20s", n)
			}
		}
	}
	next := 0
	reload := func(cfg, want string) map[string]any {
		t.Helper()
		p.writeConfig(t, cfg, up.URL)
		_ = p.cmd.Process.Signal(syscall.SIGHUP)
		var m map[string]any
		m, next = p.log.waitFor(t, next, 20*time.Second, map[string]string{"msg": want})
		return m
	}
	const refused = "reload refused; the previous config keeps serving"

	// Refused while parsing: the new file would trust the loopback peer, but
	// carries an unknown key.
	reload(newCfg+"bogus_key: 1\n", refused)
	flow(5)
	if got := realIP(); got != oldIP {
		t.Errorf("after a reload refused at parse time, X-Real-Ip %q: the new config was applied, want %q", got, oldIP)
	}

	// Refused while building the Guard: the file parses, but its rule pack
	// does not compile.
	bad, err := filepath.Abs("../../testdata/packs/bad")
	if err != nil {
		t.Fatal(err)
	}
	m := reload(strings.Replace(newCfg, "stages: []", "stages: [waf]\nwaf: {packs: [\""+bad+"\"]}", 1), refused)
	flow(5)
	if !strings.Contains(fmt.Sprint(m["error"]), "rules.conf:5") {
		t.Errorf("build-time refusal does not name the bad rule: %v", m["error"])
	}
	if got := realIP(); got != oldIP {
		t.Errorf("after a reload refused while building, X-Real-Ip %q: the new config was applied, want %q", got, oldIP)
	}

	// A good config takes effect.
	reload(newCfg, "reloaded")
	flow(5)
	if got := realIP(); got != newIP {
		t.Errorf("after the good reload, X-Real-Ip %q, want %q", got, newIP)
	}
	close(stop)
	<-done
	close(failures)
	for err := range failures {
		t.Errorf("a request failed across the reloads: %v", err)
	}

	// What is bound at start cannot change on a reload: moving the admin
	// listener (here, to off) is refused, not half applied.
	m = reload(strings.Replace(oldCfg, `admin: {listen: "127.0.0.1:0"}`, `admin: {listen: "off"}`, 1), refused)
	if !strings.Contains(fmt.Sprint(m["error"]), "admin.listen") {
		t.Errorf("refusal does not name admin.listen: %v", m["error"])
	}
	if got := realIP(); got != newIP {
		t.Errorf("after a refused reload, X-Real-Ip %q: the refused config was applied, want %q", got, newIP)
	}
	if resp, err := http.Get("http://" + p.admin + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("admin listener after the refused reload: %v", err)
	}
}

// TestE2EDrainAndUpstreamDown: SIGTERM lets an in-flight request finish;
// a dead upstream gets 502 with the request id, at once.
func TestE2EDrainAndUpstreamDown(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	slowUp := echoUpstream(t)
	slowUp.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Write([]byte("finished"))
	})
	p := start(t, ipCfg(`"10.0.0.0/8"`, `"10.0.0.0/8"`, false), slowUp.URL)
	result := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + p.edge + "/slow")
		if err != nil {
			result <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		result <- string(b)
	}()
	select { // the request is in flight at the upstream
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the request never reached the upstream")
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	p.log.waitFor(t, 0, 20*time.Second, map[string]string{"msg": "draining"})
	close(release)
	if got := <-result; got != "finished" {
		t.Fatalf("in-flight request during SIGTERM got %q", got)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after drain: %v", err)
		}
		p.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("edgeguard did not exit after draining")
	}

	deadURL := "http://" + refused.Addr(t)
	p2 := start(t, ipCfg(`"10.0.0.0/8"`, `"10.0.0.0/8"`, false), deadURL)
	began := time.Now()
	resp, _, err := rawRequest(t, p2.edge, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("X-Request-Id") == "" {
		t.Fatalf("dead upstream: status %d, request id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("dead upstream took %v", d)
	}
}
