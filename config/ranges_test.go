package config

import (
	"errors"
	"strings"
	"testing"
)

// TestTypeErrorsSayTheRange: a word where an integer goes is refused with
// the integers the field takes, as its block's validation has them (a
// bound that depends on another setting included), at the top level and
// in a route's block; a list or a block where a mode or a duration goes
// is refused with the form its parser wants.
func TestTypeErrorsSayTheRange(t *testing.T) {
	const head = "upstream: http://x:1\nroutes: [{path: /login, upstream: default}]\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"paranoia", "waf: {paranoia: high}\n", `3: waf.paranoia: want an integer 1-4, got "high"`},
		{"non-negative", "waf: {inbound_threshold: lots}\n", `3: waf.inbound_threshold: want an integer 1 or more, got "lots"`},
		{"a float is not an integer", "waf: {paranoia: 1.5}\n", `3: waf.paranoia: want an integer 1-4, got "1.5"`},
		{"in a route's block", "route_stages:\n  /login: {waf: {paranoia: max}}\n", `4: route_stages./login.waf.paranoia: want an integer 1-4, got "max"`},
		{"a bound that depends on another setting", "volumetric: {rate: 5/s, burst: lots}\n", `3: volumetric.burst: want an integer 1-5764607523, got "lots"`},
		{"a list for a mode says the modes", "waf: {mode: [block]}\n", `3: waf.mode: want block, shadow or off, got a list`},
		{"a block for a duration says the form", "server: {send_timeout: {s: 5}}\n", `3: server.send_timeout: want a number with a unit, like 50ms, 5s, 10m, 24h, got a block of keys`},
		{"upper bound", "volumetric: {rate: 5/s, shards: many}\n", `3: volumetric.shards: want an integer 1-4096, got "many"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("edge.yaml", []byte(head+tc.yaml))
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) != 1 {
				t.Fatalf("want one problem, got %v", err)
			}
			if got := err.Error(); !strings.HasPrefix(got, "edge.yaml:"+tc.want) {
				t.Errorf("got %q, want prefix %q", got, "edge.yaml:"+tc.want)
			}
		})
	}
}

// TestIntRangeLeavesTheFieldAlone: probing sets the field to trial values
// and must put back what was there.
func TestIntRangeLeavesTheFieldAlone(t *testing.T) {
	cfg, err := Parse("edge.yaml", []byte("upstream: http://x:1\nwaf: {paranoia: 3}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.intRange("waf.paranoia")
	if got := r.String(); got != " 1-4" || cfg.WAF.Paranoia != 3 {
		t.Errorf("range %q, paranoia after %d; want \" 1-4\" and 3", got, cfg.WAF.Paranoia)
	}
	if r := cfg.intRange("waf.nosuch"); r.known {
		t.Errorf("a field that does not exist has a range: %+v", r)
	}
}

func TestIntRangeString(t *testing.T) {
	const lo, hi = -1 << 63, 1<<63 - 1
	for _, tc := range []struct {
		r    intRange
		want string
	}{
		{intRange{}, ""},
		{intRange{known: true, lo: lo, hi: hi, min: lo, max: hi}, ""},
		{intRange{known: true, lo: 0, hi: hi, min: lo, max: hi}, " 0 or more"},
		{intRange{known: true, lo: lo, hi: 9, min: lo, max: hi}, " 9 or less"},
		{intRange{known: true, lo: 1, hi: 4, min: lo, max: hi}, " 1-4"},
		{intRange{known: true, lo: -5, hi: 5, min: lo, max: hi}, " from -5 to 5"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.r, got, tc.want)
		}
	}
}
