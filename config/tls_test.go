package config

import (
	"strings"
	"testing"
)

// TestTLSProblems: each mistake in the tls block is reported at its line,
// with its field, and all of them at once.
func TestTLSProblems(t *testing.T) {
	const head = "upstream: http://x:1\nstages: []\ntls:\n"
	tests := []struct {
		name, yaml string
		want       []string // "LINE: substring", in order
	}{
		{name: "pair of the list half set", yaml: "  certificates:\n    - {cert: a.pem}\n", want: []string{"5: tls.certificates[0]: cert and key"}},
		{name: "acme without names", yaml: "  acme: {email: a@b.test}\n", want: []string{"4: tls.acme: set domains, or on_demand"}},
		{name: "on_demand without ask", yaml: "  acme:\n    on_demand: {}\n", want: []string{"5: tls.acme.on_demand.ask:"}},
		{name: "on_demand ask not a URL", yaml: "  acme:\n    on_demand: {ask: localhost:5555}\n", want: []string{"5: tls.acme.on_demand.ask:"}},
		{name: "bad domain, bad challenge, bad ca, all at once",
			yaml: "  acme:\n    domains: [ok.test, 192.0.2.1, .lead.test]\n    ca: acme.example\n    challenges: [dns-01]\n",
			want: []string{"5: tls.acme.domains[1]:", "5: tls.acme.domains[2]:", "6: tls.acme.ca:", "7: tls.acme.challenges[0]:"}},
		{name: "http-01 only with no listener for it", yaml: "  http_listen: \"off\"\n  acme:\n    domains: [a.test]\n    challenges: [http-01]\n",
			want: []string{"7: tls.acme.challenges: http-01 is the only challenge"}},
		{name: "http_listen without https to redirect to", yaml: "  http_listen: \":80\"\n", want: []string{"4: tls.http_listen: redirects to https"}},
		{name: "http_listen not an address", yaml: "  cert: a.pem\n  key: a.key\n  http_listen: \"80\"\n", want: []string{`6: tls.http_listen: "80" is not host:port`}},
		{name: "negative intervals", yaml: "  cert: a.pem\n  key: a.key\n  watch_interval: -1s\n  acme: {domains: [a.test], renew_interval: -1m}\n",
			want: []string{"6: tls.watch_interval:", "7: tls.acme.renew_interval:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("edge.yaml", []byte(head+tt.yaml))
			if err == nil {
				t.Fatal("accepted")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(lines[i], "edge.yaml:"+w) {
					t.Errorf("problem %d = %q, want prefix %q", i, lines[i], "edge.yaml:"+w)
				}
			}
		})
	}
}

func TestTLSValid(t *testing.T) {
	for _, y := range []string{
		"tls: {cert: a.pem, key: a.key, certificates: [{cert: b.pem, key: b.key}]}\n",
		"tls: {acme: {domains: [a.test], email: ops@a.test}}\n",
		"tls: {http_listen: \"off\", acme: {domains: [a.test], challenges: [tls-alpn-01]}}\n",
		"tls: {acme: {on_demand: {ask: \"http://127.0.0.1:5555/ok\"}, ca: \"https://ca.test/dir\", storage: /var/lib/edgeguard/acme}}\n",
	} {
		cfg, err := Parse("edge.yaml", []byte("upstream: http://x:1\nstages: []\n"+y))
		if err != nil {
			t.Errorf("%s: %v", y, err)
			continue
		}
		if !cfg.TLS.Enabled() {
			t.Errorf("%s: TLS not enabled", y)
		}
	}
}
