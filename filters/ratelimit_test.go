package filters

import (
	"net/http"
	"reflect"
	"testing"
)

// TestRateLimitHeadersFields: each list becomes its field, joined; an empty
// list leaves its field out; the two fields' values never share room, so
// adding a value to one leaves the other as it was.
func TestRateLimitHeadersFields(t *testing.T) {
	for _, tt := range []struct {
		policies, states []string
		want             http.Header
	}{
		{[]string{`"a";q=5;w=1`, `"b";q=9;w=2`}, []string{`"a";r=4;t=1`},
			http.Header{HeaderRateLimitPolicy: {`"a";q=5;w=1, "b";q=9;w=2`}, HeaderRateLimit: {`"a";r=4;t=1`}}},
		{[]string{`"a";q=5;w=1`}, nil, http.Header{HeaderRateLimitPolicy: {`"a";q=5;w=1`}}},
		{nil, []string{`"a";r=4;t=1`}, http.Header{HeaderRateLimit: {`"a";r=4;t=1`}}},
		{nil, nil, http.Header{}},
	} {
		h := RateLimitHeaders(tt.policies, tt.states)
		if !reflect.DeepEqual(h, tt.want) {
			t.Errorf("RateLimitHeaders(%q, %q) = %v, want %v", tt.policies, tt.states, h, tt.want)
		}
	}
	h := RateLimitHeaders([]string{`"a";q=5;w=1`}, []string{`"a";r=4;t=1`})
	h[HeaderRateLimitPolicy] = append(h[HeaderRateLimitPolicy], "added")
	if got := h[HeaderRateLimit]; len(got) != 1 || got[0] != `"a";r=4;t=1` {
		t.Errorf("an append to %s changed %s: %q", HeaderRateLimitPolicy, HeaderRateLimit, got)
	}
}
