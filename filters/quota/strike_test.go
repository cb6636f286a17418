package quota_test

import (
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/quota"
	"github.com/edgeguard/edgeguard/filters/reputation"
	"github.com/edgeguard/edgeguard/internal/redisconf"
	"github.com/edgeguard/edgeguard/internal/redistest"
)

var t0 = time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)

// edge is a reputation and a quota stage in one chain, as the Guard runs
// them: reputation sees every quota deny.
type edge struct {
	chain *filters.Chain
	rep   *reputation.Filter
}

func newEdge(t *testing.T, q quota.Config) *edge {
	t.Helper()
	rep, err := reputation.New(reputation.Config{
		Strikes: reputation.Strikes{Threshold: 3, Window: filters.Duration(time.Minute)},
		Ban:     reputation.BanPolicy{TTL: filters.Duration(10 * time.Minute)},
	}, filters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rep.Close() })
	qf, err := quota.New(q, filters.Env{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = qf.Close() })
	chain := filters.NewChain([]filters.Stage{{Filter: rep}, {Filter: qf}}, []filters.Observer{rep}, nil)
	return &edge{chain: chain, rep: rep}
}

func (e *edge) send(ip, apiKey string, now time.Time) filters.Verdict {
	h := httptest.NewRequest("GET", "/", nil)
	if apiKey != "" {
		h.Header.Set("X-API-Key", apiKey)
	}
	addr := netip.MustParseAddr(ip)
	return e.chain.Run(&filters.Request{HTTP: h, Client: addr, Key: filters.KeyOf(addr, 64), Now: now})
}

const victim, attacker = "198.51.100.10", "203.0.113.66"

// TestVictimKeyDoesNotBanVictim is #11.6: an attacker who spends a
// victim's API key quota makes the victim's next requests 429, but those
// denies are counted against the key, never as strikes against the
// victim's address: however often the victim retries, it is not banned.
func TestVictimKeyDoesNotBanVictim(t *testing.T) {
	keys := writeKeys(t, "victim-key")
	e := newEdge(t, quota.Config{
		Key:      []string{"header:X-API-Key", "ip"},
		KeysFile: keys,
		Policies: []quota.Policy{{Name: "default", Rate: filters.Rate{Count: 1, Period: time.Hour}, Burst: 2}},
	})
	for range 2 {
		if v := e.send(attacker, "victim-key", t0); v.Deny {
			t.Fatalf("attacker's use of the key: %+v", v)
		}
	}
	for i := range 20 {
		v := e.send(victim, "victim-key", t0.Add(time.Duration(i)*time.Second))
		if v.Stage == "reputation" {
			t.Fatalf("victim request %d refused by reputation: the victim's address was banned", i)
		}
		if !v.Deny || v.StatusCode() != http.StatusTooManyRequests {
			t.Fatalf("victim request %d: %+v, want a quota 429", i, v)
		}
	}
	// The victim's address is still fine for requests without the key.
	if v := e.send(victim, "", t0.Add(time.Minute)); v.Deny {
		t.Fatalf("victim without the key: %+v", v)
	}
}

// TestIPQuotaDenyStrikes is the contrast that keeps the test above
// honest: when the key is the address, a client over its quota is struck
// and banned.
func TestIPQuotaDenyStrikes(t *testing.T) {
	e := newEdge(t, quota.Config{
		Key:      []string{"header:X-API-Key", "ip"},
		KeysFile: writeKeys(t, "victim-key"),
		Policies: []quota.Policy{{Name: "default", Rate: filters.Rate{Count: 1, Period: time.Hour}, Burst: 2}},
	})
	banned := false
	for i := range 10 {
		// Invented keys are not verified: the address is the identity.
		if v := e.send(attacker, "invented", t0.Add(time.Duration(i)*time.Second)); v.Stage == "reputation" {
			banned = true
			break
		}
	}
	if !banned {
		t.Fatal("an address over its own quota 10 times was never banned (threshold 3)")
	}
}

// TestOutageDenyIs503 is #15.4: with on_error: deny, a Redis outage
// answers 503 with a Retry-After, and no number of them is a strike.
func TestOutageDenyIs503(t *testing.T) {
	srv := redistest.Start(t)
	e := newEdge(t, quota.Config{
		Store:    quota.StoreRedis,
		Redis:    redisconf.Config{Addrs: []string{srv.Addr}, Timeout: filters.Duration(50 * time.Millisecond)},
		OnError:  quota.OnErrorDeny,
		Policies: []quota.Policy{{Name: "default", Rate: filters.Rate{Count: 600, Period: time.Minute}}},
	})
	srv.Stop()
	for i := range 20 {
		v := e.send(victim, "", t0.Add(time.Duration(i)*time.Second))
		if v.Stage == "reputation" {
			t.Fatalf("request %d refused by reputation: outage denies became strikes", i)
		}
		if !v.Deny || v.StatusCode() != http.StatusServiceUnavailable || v.RetryAfter < time.Second || !v.Overload {
			t.Fatalf("request %d during the outage: %+v, want 503, Retry-After ≥ 1s, Overload", i, v)
		}
		if v.Headers.Get("RateLimit") != "" {
			t.Fatalf("request %d: RateLimit %q during an outage, when nothing is known", i, v.Headers.Get("RateLimit"))
		}
	}
}

func writeKeys(t *testing.T, keys ...string) string {
	t.Helper()
	var b []byte
	for _, k := range keys {
		h := quota.HashKey(k)
		b = append(b, hex.EncodeToString(h[:])+"\n"...)
	}
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
