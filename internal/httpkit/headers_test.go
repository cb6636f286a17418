package httpkit

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestStripClientAddressSpellings(t *testing.T) {
	h := http.Header{}
	for _, k := range []string{"X_Real_IP", "x_forwarded_for", "X-Forwarded_For", "X_FORWARDED_HOST", "Cf_Connecting_Ip", "X-Client-IP", "True-Client-IP"} {
		h[http.CanonicalHeaderKey(k)] = []string{"6.6.6.6"}
	}
	keep := map[string]string{"X-Real-Ip": "1", "X-Forwarded-For": "1", "X-Forwarded-Proto": "https", "User_Agent": "x", "X_Custom": "y"}
	for k, v := range keep {
		h[k] = []string{v}
	}
	StripClientAddress(h)
	for k := range h {
		if _, ok := keep[k]; !ok {
			t.Errorf("%s survived", k)
		}
	}
	if len(h) != len(keep) {
		t.Errorf("kept %v, want %v", h, keep)
	}
}

func TestCheckConnection(t *testing.T) {
	tests := []struct {
		connection []string
		present    []string
		refuse     bool
	}{
		{[]string{"close"}, nil, false},
		{[]string{"keep-alive"}, []string{"Keep-Alive"}, false},
		{[]string{"Upgrade, HTTP2-Settings"}, []string{"Upgrade", "Http2-Settings"}, false},
		{[]string{"te"}, []string{"Te"}, false},
		{[]string{" , ,close"}, nil, false},
		{[]string{"X-Absent"}, nil, false},
		{[]string{"Content-Type"}, nil, true},
		{[]string{"close", "content-length"}, nil, true},
		{[]string{"HOST"}, nil, true},
		{[]string{"transfer-encoding"}, nil, true},
		{[]string{"Content-Encoding"}, nil, true},
		{[]string{"x-api-key"}, []string{"X-Api-Key"}, true},
		{[]string{"close,  Authorization "}, []string{"Authorization"}, true},
	}
	for _, tt := range tests {
		h := http.Header{"Connection": tt.connection}
		for _, p := range tt.present {
			h[p] = []string{"v"}
		}
		err := CheckConnection(h)
		if (err != nil) != tt.refuse || err != nil && !errors.Is(err, ErrHopByHop) {
			t.Errorf("Connection %q with %v: %v, want refused=%v", tt.connection, tt.present, err, tt.refuse)
		}
	}
}

// FuzzCheckConnection: a refusal names a token of the list that is no
// hop-by-hop name; a list naming only hop-by-hop names always passes.
func FuzzCheckConnection(f *testing.F) {
	for _, s := range []string{"close", "Content-Type", "keep-alive, X-Api-Key", ",,", "te,TE , upgrade"} {
		f.Add(s, "X-Api-Key")
	}
	f.Fuzz(func(t *testing.T, conn, present string) {
		h := http.Header{"Connection": {conn}}
		if present != "" {
			h[http.CanonicalHeaderKey(present)] = []string{"v"}
		}
		err := CheckConnection(h)
		onlyHop := true
		for tok := range strings.SplitSeq(conn, ",") {
			tok = strings.ToLower(strings.TrimSpace(tok))
			if tok != "" && !hopByHop[tok] {
				onlyHop = false
			}
		}
		if onlyHop && err != nil {
			t.Fatalf("Connection %q: refused %v, though it names only hop-by-hop headers", conn, err)
		}
		if err != nil && !errors.Is(err, ErrHopByHop) {
			t.Fatalf("Connection %q: error %v is not ErrHopByHop", conn, err)
		}
	})
}

// browserHeader is a typical browser request's header map.
func browserHeader() http.Header {
	return http.Header{
		"Accept":          {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
		"Accept-Encoding": {"gzip, deflate, br"},
		"Accept-Language": {"en-US,en;q=0.5"},
		"Connection":      {"keep-alive"},
		"Cookie":          {"session=abc123"},
		"User-Agent":      {"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"},
		"Sec-Fetch-Site":  {"none"},
		"X-Forwarded-For": {"198.51.100.7"},
	}
}

// stripCanonicalOnly is StripClientAddress before underscore spellings
// were removed: the baseline of BenchmarkStripClientAddress.
func stripCanonicalOnly(h http.Header) {
	for _, name := range ClientAddressHeaders {
		delete(h, name)
	}
}

// BenchmarkStripClientAddress compares the spelling-aware strip with the
// canonical-only one it replaced, on a browser's headers, interleaved in
// one run: go test -run X -bench StripClientAddress -benchmem -count 5 ./internal/httpkit
func BenchmarkStripClientAddress(b *testing.B) {
	for _, bc := range []struct {
		name string
		fn   func(http.Header)
	}{{"canonical-only", stripCanonicalOnly}, {"spellings", StripClientAddress}} {
		b.Run(bc.name, func(b *testing.B) {
			h := browserHeader()
			b.ReportAllocs()
			for b.Loop() {
				bc.fn(h)
			}
		})
	}
}

// BenchmarkCheckConnection: the Connection check on a browser's headers.
func BenchmarkCheckConnection(b *testing.B) {
	h := browserHeader()
	b.ReportAllocs()
	for b.Loop() {
		_ = CheckConnection(h)
	}
}
