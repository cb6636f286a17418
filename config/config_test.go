package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDesignConfigParses(t *testing.T) {
	cfg, err := Load("testdata/design.yaml")
	if err != nil {
		t.Fatalf("the config of DESIGN.md does not load:\n%v", err)
	}
	if cfg.Volumetric.Rate.Count != 50 || cfg.Quota.Policies[0].Rate.Count != 600 || cfg.ClientIP.ProxyProtocol.HeaderTimeout.D().Seconds() != 5 {
		t.Fatalf("values not decoded: %+v", cfg)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse("min.yaml", []byte("upstream: http://127.0.0.1:9000\nvolumetric: {rate: 5/s}\nquota: {policies: [{name: p, rate: 5/s}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != ":8080" || cfg.Admin.Listen != "127.0.0.1:9090" || strings.Join(cfg.Stages, ",") != "reputation,volumetric,waf,quota" ||
		cfg.Log.Format != "json" || cfg.Server.MaxHeaderBytes != 64<<10 {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	cfg, err = Parse("one-line.yaml", []byte("upstream: http://127.0.0.1:9000\n"))
	if err != nil {
		t.Fatalf("a config of one line must load: %v", err)
	}
	if got := strings.Join(cfg.Stages, ","); got != "reputation,volumetric,waf" {
		t.Errorf("one-line config runs %s, want reputation,volumetric,waf (no quota without a policy)", got)
	}
	if cfg.Volumetric.Rate.String() != "50/s" || cfg.Volumetric.Burst != 100 {
		t.Errorf("volumetric defaults: %s burst %d, want 50/s burst 100", cfg.Volumetric.Rate, cfg.Volumetric.Burst)
	}
	cfg, err = Parse("own-rate.yaml", []byte("upstream: http://127.0.0.1:9000\nvolumetric: {rate: 5/s}\n"))
	if err != nil || cfg.Volumetric.Burst != 0 {
		t.Errorf("a rate of the file's own keeps burst 0 (the rate's count), got %d, %v", cfg.Volumetric.Burst, err)
	}
	cfg, err = Parse("empty-stages.yaml", []byte("upstream: http://127.0.0.1:9000\nstages: []\n"))
	if err != nil || len(cfg.Stages) != 0 {
		t.Fatalf("stages: [] must mean no stages, got %v, %v", cfg.Stages, err)
	}
}

// TestErrors: every problem is reported as FILE:LINE: message, all of them
// at once, at the line of the offending key or value.
func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each a "LINE: substring" that one problem must match, in order
	}{
		{name: "unknown top-level key", yaml: "upstream: http://x:1\nlisten: \":8080\"\nlistne: \":9\"\nstages: []\n",
			want: []string{`3: unknown key "listne"`}},
		{name: "unknown keys at several depths, all reported, in line order", yaml: "upstream: http://x:1\nclient_ip:\n  proxy_protocol:\n    trustd: []\nvolumetric:\n  rate: 5/s\n  brust: 3\n",
			want: []string{`4: client_ip.proxy_protocol: unknown key "trustd"`, `7: volumetric: unknown key "brust"`}},
		{name: "bad scalars, all reported at their lines", yaml: "upstream: http://x:1\nvolumetric:\n  rate: fast\nwaf:\n  body_limit: 1.5MiB\nclient_ip:\n  trusted_proxies: [10.0.0.0/8, 300.1.1.1/8]\n",
			want: []string{"3: volumetric.rate:", "5: waf.body_limit:", "7: client_ip.trusted_proxies[1]:"}},
		{name: "bad mode", yaml: "upstream: http://x:1\nwaf:\n  mode: detect\n", want: []string{`3: waf.mode: mode "detect"`}},
		{name: "bad duration", yaml: "upstream: http://x:1\nclient_ip:\n  proxy_protocol:\n    header_timeout: 5\n", want: []string{"4: client_ip.proxy_protocol.header_timeout:"}},
		{name: "syntax error", yaml: "upstream: http://x:1\nvolumetric: {rate: 5/s\n", want: []string{"2: "}},
		{name: "wrong type", yaml: "upstream: http://x:1\nvolumetric:\n  burst: many\n", want: []string{"3: "}},
		{name: "a word for a number, in the user's terms", yaml: "upstream: http://x:1\nwaf:\n  paranoia: high\n",
			want: []string{`3: waf.paranoia: want an integer 1-4, got "high"`}},
		{name: "wrong kinds, each at its line", yaml: "upstream: http://x:1\nclient_ip:\n  trusted_proxies: 10.0.0.0/8\nadmin:\n  pprof: yes please\nwaf: [paranoia]\nlog:\n  level: [info]\n",
			want: []string{`3: client_ip.trusted_proxies: want a list, got "10.0.0.0/8"`, `5: admin.pprof: want true or false, got "yes please"`,
				`6: waf: want a block of keys, got a list`, `8: log.level: want a single value, got a list`}},
		{name: "unknown keys, bad values and semantic problems, all in one run", yaml: "upstream: http://x:1\nstages: [waf, firewall]\nwaf:\n  paranoia: high\n  paranoya: 2\nvolumetric: {rate: 5/s, burst: -1}\nlog: {level: chatty}\n",
			want: []string{`2: stages[1]: unknown stage "firewall"`, `4: waf.paranoia: want an integer`, `5: waf: unknown key "paranoya"`, `7: log.level: "chatty"`}},
		{name: "a refused value is not reported again by validation", yaml: "upstream: http://x:1\nstages: [volumetric]\nvolumetric:\n  rate: fast\n",
			want: []string{`4: volumetric.rate: bad rate "fast"`}},
		{name: "unknown stage and a repeat", yaml: "upstream: http://x:1\nstages:\n  - waf\n  - firewall\n  - waf\n",
			want: []string{`4: stages[1]: unknown stage "firewall"`, `5: stages[2]: stage "waf" named twice`}},
		{name: "a stage in the chain without its block is reported at the chain", yaml: "upstream: http://x:1\nstages: [quota]\n",
			want: []string{"2: quota.policies:"}},
		{name: "admin off loopback without token", yaml: "upstream: http://x:1\nstages: []\nadmin:\n  listen: 0.0.0.0:9090\n",
			want: []string{"4: admin.listen:"}},
		{name: "stage validation names the field's line", yaml: "upstream: http://x:1\nstages: [volumetric]\nvolumetric:\n  rate: 5/s\n  burst: -1\n",
			want: []string{"5: volumetric.burst:"}},
		{name: "log level", yaml: "upstream: http://x:1\nstages: []\nlog: {level: loud}\n", want: []string{"3: log.level:"}},
		{name: "tls half set", yaml: "upstream: http://x:1\nstages: []\ntls:\n  cert: a.pem\n", want: []string{"3: tls:"}},
		{name: "two documents", yaml: "upstream: http://x:1\n---\nlisten: :1\n", want: []string{"2: only one YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("edge.yaml", []byte(tt.yaml))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *config.Error, got %v", err)
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

// TestGolden checks each testdata/errors/*.yaml against the .golden file
// beside it: the exact output of `edgeguard validate`.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/errors/*.yaml")
	if len(files) == 0 {
		t.Fatal("no golden inputs")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, err := Load(f)
			if err == nil {
				t.Fatal("loaded without error")
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if os.Getenv("UPDATE_GOLDEN") != "" {
				os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644)
			}
			want, rerr := os.ReadFile(golden)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if got := err.Error() + "\n"; got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	more, _ := filepath.Glob("testdata/errors/*.yaml")
	for _, s := range append(seeds, more...) {
		b, _ := os.ReadFile(s)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config that does not validate: %v", verr)
			}
			return
		}
		var ce *Error
		if !errors.As(err, &ce) || len(ce.Problems) == 0 {
			t.Fatalf("error is not a list of problems: %v", err)
		}
		for _, p := range ce.Problems {
			if p.Line < 1 {
				t.Fatalf("problem without a line: %+v", p)
			}
		}
	})
}

// TestRouteStages: a route's block is laid over the top-level one.
func TestRouteStages(t *testing.T) {
	cfg, err := Parse("r.yaml", []byte(`upstream: http://127.0.0.1:9000
routes:
  - {path: /login, upstream: default}
  - {name: upload, path: /upload, upstream: default}
stages: [volumetric, waf]
volumetric: {rate: 50/s, burst: 100, max_clients: 5000}
waf: {paranoia: 2, body_limit: 1MiB}
route_stages:
  /login: {volumetric: {rate: 5/m}}
  upload: {waf: {body_limit: 100MiB}}
`))
	if err != nil {
		t.Fatal(err)
	}
	login := cfg.RouteStages["/login"].Volumetric
	if login == nil || login.Rate.Count != 5 || login.Burst != 100 || login.MaxClients != 5000 {
		t.Fatalf("/login volumetric = %+v: want rate 5/m with burst and max_clients inherited", login)
	}
	up := cfg.RouteStages["upload"].WAF
	if up == nil || up.BodyLimit != 100<<20 || up.Paranoia != 2 {
		t.Fatalf("upload waf = %+v", up)
	}
	if cfg.Volumetric.Rate.Count != 50 || cfg.WAF.BodyLimit != 1<<20 {
		t.Fatal("the top-level blocks were changed")
	}
	_, err = Parse("r.yaml", []byte("upstream: http://127.0.0.1:9000\nstages: []\nroute_stages:\n  /nowhere: {volumetric: {rate: 5/m}}\n"))
	if err == nil || !strings.Contains(err.Error(), `r.yaml:4: route_stages./nowhere: no route is named "/nowhere"`) {
		t.Fatalf("unknown route: %v", err)
	}
}

// TestOddKeysDoNotPanic: quoted keys, explicit keys and aliases decode or
// fail with a line; none of them may crash a reload.
func TestOddKeysDoNotPanic(t *testing.T) {
	for _, doc := range []string{
		"\"upstream\": http://127.0.0.1:9000\n'stages': []\n",
		"upstream: http://127.0.0.1:9000\nroutes: [{path: /login, upstream: default}]\nstages: [volumetric]\nvolumetric: {rate: 5/s}\nroute_stages: {\"/login\": {volumetric: {rate: 5/m}}}\n",
		"upstream: http://127.0.0.1:9000\nroutes: [{path: /login, upstream: default}]\nstages: [volumetric]\nvolumetric: {rate: 5/s}\nroute_stages:\n  ? /login\n  : {volumetric: {rate: 5/m}}\n",
		"upstream: http://127.0.0.1:9000\nroutes: [{path: /a, upstream: default}, {path: /b, upstream: default}]\nstages: [volumetric]\nvolumetric: {rate: 5/s}\nroute_stages:\n  /a: &o {volumetric: {rate: 5/m}}\n  /b: *o\n",
	} {
		cfg, err := Parse("odd.yaml", []byte(doc))
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("%q: error without lines: %v", doc, err)
			}
			continue
		}
		for name, rs := range cfg.RouteStages {
			if rs.Volumetric == nil || rs.Volumetric.Rate.Count != 5 || rs.Volumetric.Rate.Period.Minutes() != 1 {
				t.Errorf("%q: route %s volumetric %+v", doc, name, rs.Volumetric)
			}
		}
	}
}
