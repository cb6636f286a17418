package httpkit

import (
	"errors"
	"strings"
	"testing"
)

func TestParseOrigin(t *testing.T) {
	tests := []struct {
		in, want string // want "" means an error
	}{
		{"https://console.example", "https://console.example"},
		{"HTTPS://Console.Example", "https://console.example"},
		{"https://console.example:443", "https://console.example"},
		{"http://console.example:80", "http://console.example"},
		{"http://console.example:443", "http://console.example:443"},
		{"https://console.example:8443", "https://console.example:8443"},
		{"http://[::1]:3000", "http://[::1]:3000"},
		{"http://127.0.0.1", "http://127.0.0.1"},
		{"null", ""},
		{"", ""},
		{"console.example", ""},
		{"https://console.example/", ""},
		{"https://console.example/ui", ""},
		{"https://console.example?x", ""},
		{"https://console.example#x", ""},
		{"https://user@console.example", ""},
		{"ftp://console.example", ""},
		{"https://", ""},
		{"https:console.example", ""},
		{"*", ""},
	}
	for _, tt := range tests {
		got, err := ParseOrigin(tt.in)
		if tt.want == "" {
			if err == nil || !errors.Is(err, ErrOrigin) {
				t.Errorf("ParseOrigin(%q) = %q, %v; want an ErrOrigin", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseOrigin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// FuzzParseOrigin: whatever is accepted comes back in a normal form that
// is accepted again unchanged, is scheme://host[:port] and nothing more,
// and errors are ErrOrigin; nothing panics.
func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"https://console.example", "http://[::1]:3000", "null", "https://a/b", "HTTP://X:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseOrigin(s)
		if err != nil {
			if !errors.Is(err, ErrOrigin) {
				t.Fatalf("ParseOrigin(%q): error %v is not ErrOrigin", s, err)
			}
			return
		}
		rest, ok := strings.CutPrefix(n, "https://")
		if !ok {
			rest, ok = strings.CutPrefix(n, "http://")
		}
		if !ok || rest == "" || strings.ContainsAny(rest, "/?#@") || rest != strings.ToLower(rest) {
			t.Fatalf("ParseOrigin(%q) = %q: not scheme://host[:port] in lower case", s, n)
		}
		if again, err := ParseOrigin(n); err != nil || again != n {
			t.Fatalf("ParseOrigin(%q) = %q, but ParseOrigin(%q) = %q, %v", s, n, n, again, err)
		}
	})
}
