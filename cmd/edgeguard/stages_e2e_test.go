package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/quota"
	"github.com/edgeguard/edgeguard/filters/reputation"
	"github.com/edgeguard/edgeguard/internal/redistest"
)

// get sends one GET as client (through the trusted loopback hop) and
// returns the status.
func get(t *testing.T, c *http.Client, edge, client, path string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+edge+path, nil)
	if client != "" {
		req.Header.Set("X-Forwarded-For", client)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("GET %s as %s: %v", path, client, err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// paced sends GETs as client every interval for span, round robin over
// edges, and counts statuses. ideal is what one exact limiter of limit
// admits for the same send times: a sender the loaded machine stalls
// offers fewer requests, and is compared with what it really offered, not
// with rate × elapsed.
func paced(t *testing.T, edges []string, client string, interval, span time.Duration, limit filters.Limit) (counts map[int]int, ideal int, elapsed time.Duration) {
	c := &http.Client{Timeout: 5 * time.Second}
	counts = map[int]int{}
	ref := quota.NewMemoryStore(0)
	res := make([]quota.Result, 1)
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for i := 0; time.Since(start) < span; i++ {
		if ok, _ := ref.TakeAt(time.Now(), []quota.Ask{{Key: "ref", Limit: limit, Cost: 1}}, res); ok {
			ideal++
		}
		counts[get(t, c, edges[i%len(edges)], client, "/")]++
		<-tick.C
	}
	return counts, ideal, time.Since(start)
}

const trustLoopback = `
client_ip:
  trusted_proxies: ["127.0.0.0/8"]
`

// TestE2EVolumetric: a client at 5× its rate gets about rate×duration+burst
// through; another at half its rate is never refused.
func TestE2EVolumetric(t *testing.T) {
	up := echoUpstream(t)
	p := start(t, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
stages: [volumetric]
volumetric: {rate: "20/s", burst: 5}
`+trustLoopback, up.URL)
	var (
		wg          sync.WaitGroup
		fast, slow  map[int]int
		ideal       int
		fastElapsed time.Duration
	)
	limit := filters.LimitOf(filters.Rate{Count: 20, Period: time.Second}, 5)
	wg.Add(2)
	go func() {
		defer wg.Done()
		fast, ideal, fastElapsed = paced(t, []string{p.edge}, "203.0.113.1", 10*time.Millisecond, 2*time.Second, limit)
	}()
	go func() {
		defer wg.Done()
		slow, _, _ = paced(t, []string{p.edge}, "203.0.113.2", 100*time.Millisecond, 2*time.Second, limit)
	}()
	wg.Wait()
	// Idle start: burst at once, then one per 50ms, as an exact limiter
	// admits for the same send times. The tolerance is the time between a
	// send and the edge's decision, which the machine's load stretches.
	want := float64(ideal)
	tol := 0.05*want + 3
	if got := float64(fast[200]); got < want-tol || got > want+tol {
		t.Errorf("fast client: %d allowed in %v, want %.0f±%.0f (statuses %v)", fast[200], fastElapsed, want, tol, fast)
	}
	if fast[429] == 0 {
		t.Errorf("fast client was never refused: %v", fast)
	}
	if slow[429] != 0 || slow[200] == 0 {
		t.Errorf("client at half its rate was refused: %v", slow)
	}
}

// TestE2EReputationBansAndRefusesConnections: strikes from another stage
// ban the client; an operator ban closes its connections before any byte
// of response.
func TestE2EReputationBansAndRefusesConnections(t *testing.T) {
	up := echoUpstream(t)
	p := start(t, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
stages: [reputation, volumetric]
reputation:
  strikes: {threshold: 3, window: 1m}
  ban: {ttl: 10m, max_ttl: 1h}
volumetric: {rate: "1/m", burst: 1}
`+trustLoopback, up.URL)
	c := &http.Client{Timeout: 5 * time.Second}
	var got []int
	for range 6 {
		got = append(got, get(t, c, p.edge, "203.0.113.9", "/"))
	}
	want := []int{200, 429, 429, 429, 403, 403}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("statuses %v, want %v (three volumetric denies are three strikes, then a ban)", got, want)
	}
	if s := get(t, c, p.edge, "203.0.113.10", "/"); s != 200 {
		t.Fatalf("another client: %d", s)
	}
	resp, err := http.Get("http://" + p.admin + "/v1/bans")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "203.0.113.9") {
		t.Fatalf("GET /v1/bans does not list the ban: %s", body)
	}

	// A second edgeguard where the loopback peer is the client itself:
	// banning it makes the listener close its connections unanswered.
	p2 := start(t, `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
stages: [reputation]
`, up.URL)
	if s := get(t, c, p2.edge, "", "/"); s != 200 {
		t.Fatalf("before the ban: %d", s)
	}
	resp, err = http.Post("http://"+p2.admin+"/v1/bans", "application/json", strings.NewReader(`{"target": "127.0.0.1", "ttl": "1h", "reason": "test", "force": true}`)) // the admin's own peer: force
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST /v1/bans: %d", resp.StatusCode)
	}
	conn, err := net.Dial("tcp", p2.edge)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	n, err := bufio.NewReader(conn).Read(make([]byte, 1))
	if n != 0 || err == nil {
		t.Fatalf("banned peer read %d bytes (err %v): want the connection closed before any response", n, err)
	}
}

// TestE2EFleetBans: two edgeguards sharing one real Redis; a ban made on
// one is enforced by the other, carried by a pub/sub message (not by the
// 30-second resync), and so is its removal. How fast a message travels
// is the machine's business: the test logs it.
func TestE2EFleetBans(t *testing.T) {
	srv := redistest.Start(t)
	up := echoUpstream(t)
	cfg := `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
stages: [reputation]
reputation:
  redis: {addrs: ["` + srv.Addr + `"]}
` + trustLoopback
	a, b := start(t, cfg, up.URL), start(t, cfg, up.URL)
	c := &http.Client{Timeout: 5 * time.Second}
	waitStatus := func(p *proc, want int) time.Duration {
		began := time.Now()
		for time.Since(began) < 10*time.Second {
			if get(t, c, p.edge, "198.51.100.77", "/") == want {
				return time.Since(began)
			}
			time.Sleep(20 * time.Millisecond) // polling the node's answer
		}
		t.Fatalf("node %s never answered %d", p.edge, want)
		return 0
	}
	// byMessage waits until p has applied a ban or unban message from
	// another node since it counted before.
	remote := func(p *proc, op string) string {
		return metric(t, p.admin, `edgeguard_reputation_remote_updates_total{op="`+op+`"}`)
	}
	byMessage := func(p *proc, op, before string) {
		for began := time.Now(); remote(p, op) == before; time.Sleep(20 * time.Millisecond) {
			if time.Since(began) > 10*time.Second {
				t.Fatalf("node %s applied no %s message (count %s): the change did not come by pub/sub", p.edge, op, before)
			}
		}
	}
	// A ban published before node B subscribes would reach B only through
	// its periodic resync; wait until both nodes listen on the channel.
	waitSubscribers(t, srv.Addr, reputation.DefaultKeyPrefix+"events", 2)
	bans, unbans := remote(b, "ban"), remote(b, "unban")
	resp, err := http.Post("http://"+a.admin+"/v1/bans", "application/json", strings.NewReader(`{"target": "198.51.100.77", "ttl": "1h", "reason": "fleet"}`))
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("ban on A: %v %v", err, resp)
	}
	t.Logf("ban reached B after %v", waitStatus(b, 403))
	byMessage(b, "ban", bans)
	req, _ := http.NewRequest("DELETE", "http://"+a.admin+"/v1/bans/198.51.100.77", nil)
	resp, err = c.Do(req)
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("unban on A: %v %v", err, resp)
	}
	t.Logf("unban reached B after %v", waitStatus(b, 200))
	byMessage(b, "unban", unbans)

	// Redis dies: a ban made on A meanwhile holds on A alone; when Redis
	// comes back (empty), A writes it back and B catches up.
	srv.Stop()
	resp, err = http.Post("http://"+a.admin+"/v1/bans", "application/json", strings.NewReader(`{"target": "198.51.100.77", "ttl": "1h", "reason": "during the outage"}`))
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("ban on A with Redis down: %v %v", err, resp)
	}
	if s := get(t, c, a.edge, "198.51.100.77", "/"); s != 403 {
		t.Fatalf("A does not enforce its own ban while Redis is down: %d", s)
	}
	if s := get(t, c, b.edge, "198.51.100.77", "/"); s != 200 {
		t.Fatalf("B enforced a ban it could not have heard of: %d", s)
	}
	srv.Restart()
	began := time.Now()
	for get(t, c, b.edge, "198.51.100.77", "/") != 403 {
		if time.Since(began) > 45*time.Second {
			t.Fatal("B never caught up with the ban A made while Redis was down")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("B caught up %v after Redis came back", time.Since(began).Round(10*time.Millisecond))
}

// waitSubscribers waits until n clients subscribe to channel on the Redis
// at addr.
func waitSubscribers(t *testing.T, addr, channel string, n int64) {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		m, err := rc.PubSubNumSub(ctx, channel).Result()
		if err == nil && m[channel] >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d subscribers on %q within 20s, want %d (last error %v)", m[channel], channel, n, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// TestE2EQuotaFleet: three edgeguards sharing one Redis admit one client's
// quota once, whichever node its requests land on; with the memory store
// each node admits the quota again.
func TestE2EQuotaFleet(t *testing.T) {
	srv := redistest.Start(t)
	up := echoUpstream(t)
	const rate, burst = 20.0, 5.0
	run := func(store string) (admitted, ideal int, elapsed time.Duration) {
		cfg := `listen: "127.0.0.1:0"
upstream: "{{upstream}}"
admin: {listen: "127.0.0.1:0"}
stages: [quota]
quota:
  store: ` + store + `
  redis: {addrs: ["` + srv.Addr + `"], timeout: 200ms}
  key: [ip]
  policies: [{name: api, rate: "20/s", burst: 5}]
` + trustLoopback
		var edges []string
		for range 3 {
			edges = append(edges, start(t, cfg, up.URL).edge)
		}
		counts, ideal, elapsed := paced(t, edges, "203.0.113.60", 10*time.Millisecond, 3*time.Second,
			filters.LimitOf(filters.Rate{Count: rate, Period: time.Second}, burst))
		return counts[200], ideal, elapsed
	}
	// The ideal is one exact limiter's for the same send times, so a
	// stalled sender does not widen the bound.
	admitted, ideal, elapsed := run("redis")
	want := float64(ideal)
	if tol := 0.01*want + burst; float64(admitted) > want+tol || float64(admitted) < want-tol {
		t.Errorf("fleet with Redis admitted %d in %v, want %.0f ± %.1f", admitted, elapsed, want, tol)
	}
	local, single, _ := run("memory")
	if float64(local) < 2.5*float64(single) {
		t.Errorf("three memory stores admitted %d, want about 3×%d: the contrast this stage exists for", local, single)
	}
	t.Logf("one client at 5× quota over 3 nodes: Redis store admitted %d, memory stores %d", admitted, local)
}
