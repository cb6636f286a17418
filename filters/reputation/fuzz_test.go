package reputation

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "2001:db8::1", "2001:db8::/64", "10.0.0.0/8", "10.1.2.3/8", "::ffff:1.2.3.4",
		"::ffff:1.2.3.0/120", "fe80::1%eth0", "0.0.0.0/0", "", " 1.2.3.4 ", "1.2.3.4/33", "example.com"} {
		f.Add(s, 64)
	}
	f.Add("2001:db8::1", 0)
	f.Add("2001:db8::1", 200)
	f.Fuzz(func(t *testing.T, s string, bits int) {
		p, err := ParseTarget(s, bits)
		if err != nil {
			if p.IsValid() {
				t.Fatalf("error with a valid prefix %s", p)
			}
			return
		}
		// Every accepted target is a canonical, unmapped, zoneless prefix
		// narrower than /0 that reads back as itself.
		if !p.IsValid() || p.Masked() != p || p.Bits() == 0 || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("ParseTarget(%q) = %s: not canonical", s, p)
		}
		back, err := ParseTarget(formatPrefix(p), bits)
		if err != nil || (back != p && !(p.Addr().Is6() && p.IsSingleIP())) {
			t.Fatalf("round trip of %s: %s, %v", p, back, err)
		}
	})
}

func FuzzParseList(f *testing.F) {
	f.Add("# c\n1.2.3.4\n10.0.0.0/8 # x\n\n2001:db8::/32\n")
	f.Add("1.2.3.4 5.6.7.8\n")
	f.Add("::ffff:1.2.3.0/120\r\n")
	f.Add("x\ny\n")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseList(strings.NewReader(in), "f")
		if err != nil {
			if got != nil {
				t.Fatal("entries with an error")
			}
			if !strings.Contains(err.Error(), "f:") {
				t.Fatalf("error without FILE:LINE: %v", err)
			}
			return
		}
		for _, p := range got {
			if !p.IsValid() || p.Masked() != p || p.Addr().Is4In6() {
				t.Fatalf("non-canonical entry %s from %q", p, in)
			}
		}
		// Writing the entries back one a line reads the same list.
		var buf bytes.Buffer
		for _, p := range got {
			buf.WriteString(p.String() + "\n")
		}
		again, err := ParseList(&buf, "f")
		if err != nil || len(again) != len(got) {
			t.Fatalf("re-reading %v: %v %v", got, again, err)
		}
	})
}

func FuzzDecodeWire(f *testing.F) {
	f.Add([]byte(`{"op":"ban","target":"1.2.3.4/32","reason":"r","source":"waf","level":1,"created":1,"expires":2,"node":"n"}`))
	f.Add([]byte(`{"op":"unban","target":"2001:db8::/64"}`))
	f.Add([]byte(`{"target":"1.2.3.4/24","expires":5}`))
	f.Add([]byte(`{"op":"ban","target":"::ffff:1.2.3.4/128","expires":5}`))
	f.Add([]byte(`{"op":"ban","target":"0.0.0.0/0","expires":5}`))
	f.Add([]byte(`{"target":"::/0","expires":5}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, p, b, err := decodeWire(data)
		if err != nil {
			return
		}
		// Like ParseTarget: canonical, unmapped, and narrower than /0.
		if !p.IsValid() || p.Masked() != p || p.Addr().Is4In6() || p.Bits() == 0 {
			t.Fatalf("accepted non-canonical %s", p)
		}
		if b != nil && (b.Prefix != p || b.Expires.UnixMilli() <= 0) {
			t.Fatalf("ban %+v for %s", b, p)
		}
	})
}
