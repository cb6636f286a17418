package ipparse

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

func TestValidate(t *testing.T) {
	p := netip.MustParsePrefix
	cases := []struct {
		name  string
		c     Config
		field string // "" when valid
		msg   string // part of the message
	}{
		{name: "zero value", c: Config{}},
		{name: "full", c: Config{
			ProxyProtocol:  ProxyProtocol{Trusted: []netip.Prefix{p("10.0.0.0/8")}, Required: true, HeaderTimeout: filters.Duration(time.Second)},
			TrustedProxies: []netip.Prefix{p("10.0.0.0/8"), p("2001:db8::/32"), p("::ffff:172.16.0.0/108")},
			Header:         "CF-Connecting-IP", IPv6Prefix: 56, MaxHops: 8, MaxHeaderBytes: 1024,
		}},
		{name: "single address", c: Config{TrustedProxies: []netip.Prefix{p("10.0.0.1/32")}}},
		{name: "invalid prefix", c: Config{TrustedProxies: []netip.Prefix{p("10.0.0.0/8"), {}}}, field: "trusted_proxies[1]", msg: "not a valid"},
		{name: "host bits", c: Config{TrustedProxies: []netip.Prefix{p("10.0.0.0/8"), p("10.0.0.0/8"), p("192.168.1.1/16")}}, field: "trusted_proxies[2]", msg: "did you mean 192.168.0.0/16"},
		{name: "trust everyone v4", c: Config{TrustedProxies: []netip.Prefix{p("0.0.0.0/0")}}, field: "trusted_proxies[0]", msg: "any client could choose"},
		{name: "trust everyone v6", c: Config{TrustedProxies: []netip.Prefix{p("::/0")}}, field: "trusted_proxies[0]", msg: "any client could choose"},
		{name: "trust everyone mapped", c: Config{TrustedProxies: []netip.Prefix{p("::ffff:0.0.0.0/96")}}, field: "trusted_proxies[0]", msg: "any client could choose"},
		{name: "proxy trusted", c: Config{ProxyProtocol: ProxyProtocol{Trusted: []netip.Prefix{p("0.0.0.0/0")}}}, field: "proxy_protocol.trusted[0]", msg: "every address"},
		{name: "required without trusted", c: Config{ProxyProtocol: ProxyProtocol{Required: true}}, field: "proxy_protocol.required", msg: "needs proxy_protocol.trusted"},
		{name: "long header timeout", c: Config{ProxyProtocol: ProxyProtocol{HeaderTimeout: filters.Duration(2 * time.Minute)}}, field: "proxy_protocol.header_timeout", msg: "longer than 1m"},
		{name: "bad header name", c: Config{Header: "X Forwarded"}, field: "header", msg: "not a valid header name"},
		{name: "ipv6 prefix too long", c: Config{IPv6Prefix: 129}, field: "ipv6_prefix", msg: "want 16 to 128"},
		{name: "ipv6 prefix too short", c: Config{IPv6Prefix: 8}, field: "ipv6_prefix"},
		{name: "ipv6 prefix negative", c: Config{IPv6Prefix: -1}, field: "ipv6_prefix"},
		{name: "max hops negative", c: Config{MaxHops: -1}, field: "max_hops"},
		{name: "max hops huge", c: Config{MaxHops: 5000}, field: "max_hops", msg: "want 1 to 1024"},
		{name: "max header bytes", c: Config{MaxHeaderBytes: -5}, field: "max_header_bytes"},
		{name: "max header bytes huge", c: Config{MaxHeaderBytes: 2 << 20}, field: "max_header_bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := NewResolver(tc.c); err != nil {
					t.Fatalf("NewResolver: %v", err)
				}
				return
			}
			var fe *filters.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate = %v, want a *filters.FieldError", err)
			}
			if fe.Field != tc.field || !strings.Contains(fe.Error(), tc.msg) {
				t.Fatalf("Validate = %q (field %q), want field %q with %q", fe.Error(), fe.Field, tc.field, tc.msg)
			}
			if _, err := NewResolver(tc.c); err == nil {
				t.Fatal("NewResolver accepted an invalid config")
			}
		})
	}
}

// Every problem is reported, each as its own FieldError.
func TestValidateReportsEveryField(t *testing.T) {
	c := Config{
		TrustedProxies: []netip.Prefix{{}, netip.MustParsePrefix("10.0.0.1/8")},
		Header:         "a b",
		IPv6Prefix:     200,
		MaxHops:        -1,
		ProxyProtocol:  ProxyProtocol{Required: true},
	}
	err := c.Validate()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("Validate = %v, want a joined error", err)
	}
	var fields []string
	for _, e := range joined.Unwrap() {
		var fe *filters.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a FieldError", e)
		}
		fields = append(fields, fe.Field)
	}
	want := "proxy_protocol.required trusted_proxies[0] trusted_proxies[1] header ipv6_prefix max_hops"
	if got := strings.Join(fields, " "); got != want {
		t.Fatalf("fields %q, want %q", got, want)
	}
}

func TestWithDefaults(t *testing.T) {
	c := Config{}.WithDefaults()
	if c.Header != "X-Forwarded-For" || c.IPv6Prefix != 64 || c.MaxHops != 32 || c.MaxHeaderBytes != 8192 || c.ProxyProtocol.HeaderTimeout.D() != 5*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	c = Config{Header: "X-Real-IP", IPv6Prefix: 48, MaxHops: 4, MaxHeaderBytes: 100, ProxyProtocol: ProxyProtocol{HeaderTimeout: filters.Duration(time.Second)}}
	if d := c.WithDefaults(); d.Header != c.Header || d.IPv6Prefix != 48 || d.MaxHops != 4 || d.MaxHeaderBytes != 100 || d.ProxyProtocol.HeaderTimeout != c.ProxyProtocol.HeaderTimeout {
		t.Fatalf("set values changed: %+v", d)
	}
}

// The struct decodes from the JSON the Caddy module and the Go API use, with
// netip's and filters' text forms.
func TestConfigJSON(t *testing.T) {
	var c Config
	err := json.Unmarshal([]byte(`{
		"proxy_protocol": {"trusted": ["10.0.0.0/8"], "required": true, "header_timeout": "2s"},
		"trusted_proxies": ["10.0.0.0/8", "2001:db8::/32"],
		"header": "Forwarded", "ipv6_prefix": 56, "max_hops": 10, "max_header_bytes": 2048}`), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.ProxyProtocol.HeaderTimeout.D() != 2*time.Second || !c.ProxyProtocol.Required || len(c.TrustedProxies) != 2 || c.Header != "Forwarded" || c.IPv6Prefix != 56 {
		t.Fatalf("decoded %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}
