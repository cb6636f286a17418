package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EActivity: through the binary, the admin API's activity endpoints
// count what the edge served and refused, name the WAF rule behind a
// refusal, see the client connections held open, and keep their counts
// across a reload (the recorder lives in the metrics, which outlive it).
func TestE2EActivity(t *testing.T) {
	up := echoUpstream(t)
	const cfg = `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
log: {level: LEVEL}
stages: [reputation, waf]
`
	p := start(t, strings.Replace(cfg, "LEVEL", "info", 1), up.URL)
	c := &http.Client{Timeout: 10 * time.Second}
	for range 3 {
		resp, err := c.Get("http://" + p.edge + "/items")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := c.Get("http://" + p.edge + "/items?id=" + url.QueryEscape("1' UNION SELECT password FROM users--"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	attackID := resp.Header.Get("X-Request-Id")
	if resp.StatusCode != http.StatusForbidden || attackID == "" {
		t.Fatalf("SQL injection: %d, request id %q", resp.StatusCode, attackID)
	}

	admin := func(path string, into any) {
		t.Helper()
		resp, err := c.Get("http://" + p.admin + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	type overview struct {
		Series []struct{ Allowed, Denied int }
		Conns  int `json:"active_connections"`
	}
	count := func() (allowed, denied, conns int) {
		var o overview
		admin("/v1/activity/overview?seconds=120", &o)
		for _, p := range o.Series {
			allowed += p.Allowed
			denied += p.Denied
		}
		return allowed, denied, o.Conns
	}
	// A connection held open, and a request on it so the server has
	// surely accepted it.
	held, err := net.Dial("tcp", p.edge)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, err := io.WriteString(held, "GET /items HTTP/1.1\r\nHost: "+p.edge+"\r\nUser-Agent: held\r\nAccept: */*\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.ReadResponse(bufio.NewReader(held), nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("request on the held connection: %v %v", resp, err)
	}
	if a, d, conns := count(); a != 4 || d != 1 || conns < 1 {
		t.Errorf("overview: %d allowed, %d denied, %d connections open; want 4, 1 and at least the one held open", a, d, conns)
	}
	var detail struct {
		Stage  string
		Rules  []struct{ ID int }
		Stages []struct{ Stage, Verdict string }
	}
	admin("/v1/activity/blocked/"+attackID, &detail)
	has942100 := false
	for _, r := range detail.Rules {
		has942100 = has942100 || r.ID == 942100
	}
	if detail.Stage != "waf" || !has942100 || len(detail.Stages) != 2 || detail.Stages[0].Verdict != "allow" {
		t.Errorf("the attack's detail %+v: want waf with rule 942100, reputation allowing before it", detail)
	}

	p.writeConfig(t, strings.Replace(cfg, "LEVEL", "debug", 1), up.URL)
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	p.log.waitFor(t, 0, 20*time.Second, map[string]string{"msg": "reloaded"})
	if a, d, _ := count(); a != 4 || d != 1 {
		t.Errorf("after a reload: %d allowed, %d denied; want the 4 and 1 counted before it", a, d)
	}
}
