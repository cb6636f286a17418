package reputation_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/reputation"
)

func Example() {
	dir, _ := os.MkdirTemp("", "reputation-example")
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "deny.txt"), []byte("10.0.0.0/8\n"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "allow.txt"), []byte("10.1.2.3 # our monitor\n"), 0o644)

	f, err := reputation.New(reputation.Config{
		Lists: []reputation.List{
			{File: "deny.txt", Action: reputation.ActionDeny},
			{File: "allow.txt", Action: reputation.ActionAllow},
		},
		Strikes: reputation.Strikes{Threshold: 2},
	}, filters.Env{Dir: dir, IPv6Prefix: 64})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()

	now := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	request := func(ip string) *filters.Request {
		a := netip.MustParseAddr(ip)
		return &filters.Request{Client: a, Key: filters.KeyOf(a, 64), Now: now}
	}
	show := func(ip string) {
		v := f.Check(request(ip))
		fmt.Printf("%-12s deny=%v reason=%q\n", ip, v.Deny, v.Reason)
	}
	show("10.9.9.9")
	show("10.1.2.3")

	// Two WAF denies earn 192.0.2.7 a ban.
	for range 2 {
		f.Observe(filters.Event{Request: request("192.0.2.7"),
			Verdict: filters.Verdict{Deny: true, Stage: "waf", Reason: "anomaly score 10"}})
	}
	show("192.0.2.7")
	for _, b := range f.BansAt(now) {
		fmt.Println(b.Prefix, b.Source, b.Expires.Sub(now))
	}
	// Output:
	// 10.9.9.9     deny=true reason="deny list"
	// 10.1.2.3     deny=false reason=""
	// 192.0.2.7    deny=true reason="banned"
	// 192.0.2.7/32 waf 10m0s
}
