package reputation

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

func TestLongestPrefixSemantics(t *testing.T) {
	f := newFilter(t, Config{Lists: []List{
		{File: "deny.txt", Action: ActionDeny},
		{File: "allow.txt", Action: ActionAllow},
	}}, map[string]string{
		"deny.txt": "# blocked networks\n10.0.0.0/8\n\n2001:db8::/32 # a v6 block\n192.0.2.0/24\n203.0.113.9\n",
		"allow.txt": "10.1.2.3   # the monitor inside the denied /8\n" +
			"2001:db8:aaaa::/48\n" +
			"192.0.2.0/25\n",
	})
	tests := []struct {
		addr string
		want decision
	}{
		{"10.1.2.3", allowed},           // allow /32 inside deny /8
		{"10.1.2.4", denyListed},        // its neighbour is not
		{"::ffff:10.1.2.3", allowed},    // IPv4-mapped IPv6 matched as IPv4
		{"::ffff:10.9.9.9", denyListed}, // likewise for the deny list
		{"203.0.113.9", denyListed},     // a lone address
		{"203.0.113.10", clean},         // and nothing around it
		{"2001:db8:1::1", denyListed},   // inside the v6 /32
		{"2001:db8:aaaa:1::1", allowed}, // allow /48 inside deny /32
		{"2001:db9::1", clean},          // outside
		{"192.0.2.1", allowed},          // allow /25 wins over deny /24
		{"192.0.2.200", denyListed},     // the other half of the /24
		{"172.16.0.1", clean},           // no entry
		{"::ffff:172.16.0.1", clean},    // mapped, no entry
		{"fe80::1", clean},              // link-local v6, no entry
	}
	for _, tt := range tests {
		r := req(tt.addr, t0)
		if got := f.decide(clientAddr(r), t0); got != tt.want {
			t.Errorf("decide(%s) = %d, want %d", tt.addr, got, tt.want)
		}
	}
}

func TestAllowWinsOverBans(t *testing.T) {
	f := newFilter(t, Config{Lists: []List{{File: "allow.txt", Action: ActionAllow}}},
		map[string]string{"allow.txt": "198.51.100.7\n"})
	for _, target := range []string{"198.51.100.0/24", "198.51.100.7"} {
		p, _ := ParseTarget(target, 64)
		if _, err := f.BanAt(t0, p, time.Hour, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if v := f.Check(req("198.51.100.7", t0.Add(time.Minute))); v.Deny {
		t.Errorf("allow-listed address denied: %+v", v)
	}
	if v := f.Check(req("198.51.100.8", t0.Add(time.Minute))); !v.Deny || v.Reason != ReasonBanned {
		t.Errorf("banned neighbour: got %+v, want a ban deny", v)
	}
	if f.RefuseConn(netipAddr("198.51.100.7"), t0.Add(time.Minute)) {
		t.Error("allow-listed address refused at accept time")
	}
}

func TestParseList(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // prefixes, or nil with wantErr
		wantErr  []string // substrings of the error, in order
	}{
		{name: "empty", in: "", want: nil},
		{name: "comments and blanks", in: "# header\n\n   \n1.2.3.4 # host\n\t10.0.0.0/8\t\n", want: []string{"1.2.3.4/32", "10.0.0.0/8"}},
		{name: "v6 and mapped", in: "2001:db8::/32\n::ffff:192.0.2.1\n::ffff:192.0.2.0/120\n2001:db8::1\n",
			want: []string{"2001:db8::/32", "192.0.2.1/32", "192.0.2.0/24", "2001:db8::1/128"}},
		{name: "crlf", in: "1.2.3.4\r\n5.6.7.0/24\r\n", want: []string{"1.2.3.4/32", "5.6.7.0/24"}},
		{name: "garbage line", in: "1.2.3.4\nnot-an-ip\n", wantErr: []string{"deny.txt:2:", `"not-an-ip"`}},
		{name: "host bits", in: "10.1.2.3/8\n", wantErr: []string{"deny.txt:1:", "did you mean 10.0.0.0/8"}},
		{name: "two per line", in: "1.2.3.4 5.6.7.8\n", wantErr: []string{"deny.txt:1:", "one address or prefix per line"}},
		{name: "zone", in: "\n\nfe80::1%eth0\n", wantErr: []string{"deny.txt:3:", "zones are not allowed"}},
		{name: "bad length", in: "1.2.3.0/33\n", wantErr: []string{"deny.txt:1:"}},
		{name: "spamhaus drop", in: "; Spamhaus DROP List 2026/12/01 - (c) 2026 The Spamhaus Project SLU\n; https://www.spamhaus.org/drop/drop.txt\n1.10.16.0/20 ; SBL256894\n1.19.0.0/16 ; SBL434604\n",
			want: []string{"1.10.16.0/20", "1.19.0.0/16"}},
		{name: "spamhaus edrop no blank before ;", in: "2.56.192.0/22;SBL459831\n", want: []string{"2.56.192.0/22"}},
		{name: "firehol header", in: "#\n# firehol_level1\n#\n# Maintainer      : FireHOL\n#\n0.0.0.0/8\n1.10.16.0/20\n", want: []string{"0.0.0.0/8", "1.10.16.0/20"}},
		{name: "trailing fields", in: "198.51.100.7\tscanner\tseen 2026-12-01\n2001:db8::/32 AS64496\n", want: []string{"198.51.100.7/32", "2001:db8::/32"}},
		{name: "address among trailing fields", in: "198.51.100.7 scanner 203.0.113.9\n", wantErr: []string{"deny.txt:1:", `found "203.0.113.9" after it`}},
		{name: "prefix among trailing fields", in: "198.51.100.7 10.1.2.3/8\n", wantErr: []string{"deny.txt:1:", `found "10.1.2.3/8" after it`}},
		{name: "zoned address among trailing fields", in: "198.51.100.7 fe80::1%eth0\n", wantErr: []string{"deny.txt:1:", "one address or prefix per line"}},
		{name: "garbage first, tag after", in: "SBL256894 1.10.16.0/20\n", wantErr: []string{"deny.txt:1:", `"SBL256894" is not an IP address`}},
		{name: "every bad line", in: "x\n1.1.1.1\ny\n", wantErr: []string{"deny.txt:1:", "deny.txt:3:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseList(strings.NewReader(tt.in), "deny.txt")
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("no error, got %v", got)
				}
				if !errors.Is(err, ErrList) {
					t.Errorf("error does not wrap ErrList: %v", err)
				}
				msg, at := err.Error(), 0
				for _, w := range tt.wantErr {
					i := strings.Index(msg[at:], w)
					if i < 0 {
						t.Fatalf("error %q lacks %q (in order)", msg, w)
					}
					at += i
				}
				if got != nil {
					t.Errorf("entries returned with an error: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i].String() != tt.want[i] {
					t.Errorf("entry %d = %s, want %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseListGivesUpAfterManyErrors(t *testing.T) {
	_, err := ParseList(strings.NewReader(strings.Repeat("junk\n", 1000)), "f")
	if err == nil || !strings.Contains(err.Error(), "giving up") || strings.Count(err.Error(), "\n") > maxListErrors+1 {
		t.Fatalf("want a bounded error, got %d lines", strings.Count(err.Error(), "\n"))
	}
}

func TestNewRefusesBadList(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "deny.txt"), []byte("1.2.3.4\n1.2.3.400\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{Lists: []List{{File: "deny.txt", Action: ActionDeny}}}, filters.Env{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "deny.txt")+":2:") {
		t.Fatalf("want FILE:2: error, got %v", err)
	}
	_, err = New(Config{Lists: []List{{File: "missing.txt", Action: ActionDeny}}}, filters.Env{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Fatalf("want an error naming the missing file, got %v", err)
	}
}

func TestReloadKeepsOldListOnError(t *testing.T) {
	f := newFilter(t, Config{Lists: []List{{File: "deny.txt", Action: ActionDeny}}},
		map[string]string{"deny.txt": "192.0.2.0/24\n"})
	path := f.files[0].path
	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	check := func(addr string, want decision) {
		t.Helper()
		if got := f.decide(netipAddr(addr), t0); got != want {
			t.Errorf("decide(%s) = %d, want %d", addr, got, want)
		}
	}
	check("192.0.2.1", denyListed)

	write("198.51.100.0/24\n")
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	check("192.0.2.1", clean)
	check("198.51.100.1", denyListed)

	write("203.0.113.0/24\nbogus line here\n")
	err := f.Reload()
	if err == nil || !strings.Contains(err.Error(), path+":2:") {
		t.Fatalf("want %s:2: error, got %v", path, err)
	}
	check("198.51.100.1", denyListed) // the old list stays whole
	check("203.0.113.1", clean)       // nothing of the new one
	if m := collect(f); m["reputation_list_errors_total"] != 1 {
		t.Errorf("list errors metric = %v, want 1", m["reputation_list_errors_total"])
	}
}

func TestListWatchedOnDisk(t *testing.T) {
	f := newFilter(t, Config{
		Lists:         []List{{File: "deny.txt", Action: ActionDeny}},
		WatchInterval: filters.Duration(10 * time.Millisecond),
	}, map[string]string{"deny.txt": "192.0.2.0/24\n"})
	// A different size guarantees the change is seen even where mtime is coarse.
	if err := os.WriteFile(f.files[0].path, []byte("198.51.100.0/24\n203.0.113.0/24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The watcher runs on its own goroutine: poll for its effect with a
	// deadline (file watching, not a limiter).
	deadline := time.Now().Add(5 * time.Second)
	for f.decide(netipAddr("203.0.113.5"), t0) != denyListed {
		if time.Now().After(deadline) {
			t.Fatal("list change on disk not picked up within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f.decide(netipAddr("192.0.2.1"), t0) != clean {
		t.Error("old entry still in force after the file changed")
	}
}
