package quota

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

func hexHash(key string) string {
	h := HashKey(key)
	return hex.EncodeToString(h[:])
}

func TestParseKeys(t *testing.T) {
	a, b := hexHash("alpha"), hexHash("beta")
	tests := []struct {
		name string
		in   string
		want []string // keys whose hashes are listed
		errs []string // each error's text, in order
	}{
		{"empty", "", nil, nil},
		{"comments and blanks", "# keys\n\n  \t\n" + a + " # alpha\n", []string{"alpha"}, nil},
		{"sha256sum output", a + "  -\n" + strings.ToUpper(b) + "\tcustomer b\n", []string{"alpha", "beta"}, nil},
		{"duplicates are one key", a + "\n" + a + "\n", []string{"alpha"}, nil},
		{"a raw key", "alpha\n" + a + "\n", nil, []string{`keys:1: "alpha" is not a SHA-256 in hex: want 64 hex digits, got 5 characters`}},
		{"a long raw key is not quoted whole", "sk_live_0123456789abcdef\n", nil, []string{`keys:1: "sk_live_…" is not a SHA-256 in hex`}},
		{"not hex", strings.Repeat("g", 64) + "\n", nil, []string{"keys:1: ", "invalid byte"}},
		{"every bad line", "x\n" + a + "\ny\n", nil, []string{"keys:1: ", "keys:3: "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeys(strings.NewReader(tt.in), "keys")
			if len(tt.errs) > 0 {
				if err == nil || !errors.Is(err, ErrKeysFile) || got != nil {
					t.Fatalf("got %d keys, err %v; want an ErrKeysFile and no keys", len(got), err)
				}
				rest := err.Error()
				for _, e := range tt.errs {
					i := strings.Index(rest, e)
					if i < 0 {
						t.Fatalf("error %q lacks %q (in order)", err, e)
					}
					rest = rest[i+len(e):]
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d keys, want %d", len(got), len(tt.want))
			}
			for _, k := range tt.want {
				if _, ok := got[HashKey(k)]; !ok {
					t.Errorf("%q not listed", k)
				}
			}
		})
	}
}

// TestParseKeysErrorBound: a file that is wholly wrong reports a bounded
// number of lines.
func TestParseKeysErrorBound(t *testing.T) {
	_, err := ParseKeys(strings.NewReader(strings.Repeat("nope\n", 1000)), "keys")
	if n := strings.Count(err.Error(), "\n") + 1; n != maxKeysFileErrors+1 {
		t.Fatalf("%d error lines, want %d", n, maxKeysFileErrors+1)
	}
}

// FuzzParseKeys: whatever the input, no panic; an accepted file lists only
// hashes whose hex is in the input, and writing them back out parses to
// the same set.
func FuzzParseKeys(f *testing.F) {
	for _, s := range []string{"", "# c\n", hexHash("a") + "  -\n", hexHash("a") + "\n" + hexHash("b"), "zz\n", "\xff\n", strings.Repeat("a", 64) + "#x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseKeys(strings.NewReader(in), "f")
		if err != nil {
			if got != nil || !errors.Is(err, ErrKeysFile) {
				t.Fatalf("error %v with %d keys, want ErrKeysFile and none", err, len(got))
			}
			return
		}
		var out strings.Builder
		for h := range got {
			x := hex.EncodeToString(h[:])
			if !strings.Contains(strings.ToLower(in), x) {
				t.Fatalf("hash %s not in the input", x)
			}
			fmt.Fprintln(&out, x)
		}
		again, err := ParseKeys(strings.NewReader(out.String()), "f")
		if err != nil || len(again) != len(got) {
			t.Fatalf("round trip: %d keys, %v; want %d", len(again), err, len(got))
		}
	})
}

// TestRotatingKeysMeetTheIPLimit is #11.6: a client inventing a new API
// key for every request is limited as its address, and a listed key gets
// its own bucket, whatever address sends it.
func TestRotatingKeysMeetTheIPLimit(t *testing.T) {
	cfg := Config{
		Key:      []string{"header:X-API-Key", "ip"},
		KeysFile: keysFile(t, "good-key"),
		Policies: []Policy{{Name: "default", Rate: rate("1/m"), Burst: 3}},
	}
	f := mustNew(t, cfg, filters.Env{})
	admitted := 0
	for i := range 20 {
		if v := f.Check(newReq("GET", "/", t0, "X-API-Key", fmt.Sprint("random-", i))); !v.Deny {
			admitted++
		} else if v.NotClient {
			t.Fatalf("deny of an invented key counted against another identity: %+v", v)
		}
	}
	if admitted != 3 {
		t.Fatalf("20 invented keys from one address: %d admitted, want the address's burst 3", admitted)
	}
	// Also through a trusted proxy: with a keys file, the file decides.
	if v := f.Check(proxied(newReq("GET", "/", t0, "X-API-Key", "random-proxied"))); !v.Deny {
		t.Fatalf("invented key via a trusted proxy: %+v, want the address's (spent) limit", v)
	}
	for i := range 3 {
		v := f.Check(newReq("GET", "/", t0, "X-API-Key", "good-key"))
		if v.Deny {
			t.Fatalf("listed key, request %d: %+v, want its own fresh bucket", i, v)
		}
	}
	v := f.Check(newReq("GET", "/", t0, "X-API-Key", "good-key"))
	if !v.Deny || !v.NotClient {
		t.Fatalf("listed key over its quota: %+v, want a deny marked NotClient", v)
	}
	if got := f.stats.unverified.Load(); got != 21 {
		t.Errorf("unverified keys counted %d, want 21", got)
	}
}

// TestUnverifiedHeaderNeedsTrustedProxy: without keys_file a header key
// is believed only when a trusted L7 proxy forwarded the request.
func TestUnverifiedHeaderNeedsTrustedProxy(t *testing.T) {
	f := mustNew(t, Config{Key: []string{"header:X-API-Key", "ip"}, Policies: []Policy{{Name: "p", Rate: rate("1/m"), Burst: 1}}}, filters.Env{})
	if v := f.Check(newReq("GET", "/", t0, "X-API-Key", "a")); v.Deny || v.NotClient {
		t.Fatalf("first direct request: %+v", v)
	}
	if v := f.Check(newReq("GET", "/", t0, "X-API-Key", "b")); !v.Deny || v.NotClient {
		t.Fatalf("direct request with another key: %+v, want the address's bucket, spent", v)
	}
	if v := f.Check(proxied(newReq("GET", "/", t0, "X-API-Key", "b"))); v.Deny {
		t.Fatalf("proxied key b: %+v, want its own bucket", v)
	}
}

// TestKeysFileReload: the file is read again when the stage is rebuilt (a
// reload), relative to the config's directory; a broken file fails the
// build with FILE:LINE.
func TestKeysFileReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.txt")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(hexHash("old") + "\n")
	cfg := Config{Key: []string{"header:X-API-Key", "ip"}, KeysFile: "keys.txt", Policies: []Policy{{Name: "p", Rate: rate("1/m"), Burst: 1}}}
	f := mustNew(t, cfg, filters.Env{Dir: dir})
	if _, ok := f.keys[HashKey("old")]; !ok {
		t.Fatal("old key not loaded")
	}
	write(hexHash("new") + "\n")
	g := mustNew(t, cfg, filters.Env{Dir: dir, Previous: f})
	if _, ok := g.keys[HashKey("new")]; !ok || len(g.keys) != 1 {
		t.Fatalf("after reload keys %v, want only new", g.keys)
	}
	write("# header\n" + hexHash("new") + "\nnew\n")
	_, err := New(cfg, filters.Env{Dir: dir, Previous: g})
	if err == nil || !strings.Contains(err.Error(), path+":3: ") || !errors.Is(err, ErrKeysFile) {
		t.Fatalf("broken file: %v, want an ErrKeysFile naming %s:3", err, path)
	}
	// Each layer says what the others do not: the key, the file and line,
	// the problem (the config loader adds FILE:LINE and "quota.").
	if want := "keys_file: " + path + `:3: "new" is not a SHA-256 in hex`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("broken file: %v, want it to start %q", err, want)
	}
	_, err = New(Config{KeysFile: "missing.txt", Policies: cfg.Policies}, filters.Env{Dir: dir})
	if !errors.Is(err, os.ErrNotExist) || !errors.Is(err, ErrKeysFile) {
		t.Fatalf("missing file: %v", err)
	}
	if want := "keys_file: " + filepath.Join(dir, "missing.txt") + ": no such file or directory"; err.Error() != want {
		t.Fatalf("missing file: %q, want %q", err, want)
	}
}

// BenchmarkCheckKeySource is one allowed decision with the memory store for
// each kind of identity: the address, an API key checked against a keys
// file (one SHA-256 more), and an ES256 token (a signature check).
//
//	go test -run '^$' -bench CheckKeySource -benchmem -count 3 ./filters/quota/
func BenchmarkCheckKeySource(b *testing.B) {
	dir := b.TempDir()
	is := newIssuer(b, "k1")
	token := "Bearer " + is.token(map[string]any{"sub": "alice", "exp": t0.Add(time.Hour).Unix()})
	jwks := jwksFile(b, dir, is)
	policies := []Policy{{Name: "p", Rate: rate("1000000/s"), Burst: 1 << 30}}
	for _, tc := range []struct {
		name string
		cfg  Config
		hdr  []string
	}{
		{"ip", Config{Policies: policies}, nil},
		{"keys_file", Config{Key: []string{"header:X-API-Key", "ip"}, KeysFile: keysFile(b, "good"), Policies: policies}, []string{"X-API-Key", "good"}},
		{"jwt_es256", Config{Key: []string{"jwt:sub", "ip"}, JWT: &JWT{JWKSFile: jwks, Algorithms: []string{"ES256"}}, Policies: policies}, []string{"Authorization", token}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := mustNew(b, tc.cfg, filters.Env{})
			r := newReq("GET", "/", t0, tc.hdr...)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				r.Now = t0.Add(time.Duration(i) * time.Microsecond)
				if f.Check(r).Deny {
					b.Fatal("denied")
				}
			}
		})
	}
}
