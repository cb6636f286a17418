package edgeguard

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters"
)

// teapot is a stage that exists only in this file: it refuses requests
// under its path with its status. Registering it is all it takes for the
// config file, route_stages, the Guard's chains, explain and /readyz to
// know it.
type teapotConfig struct {
	// Mode is block, shadow or off.
	Mode filters.Mode `yaml:"mode" json:"mode"`
	// Path is the path prefix refused.
	Path string `yaml:"path" json:"path"`
	// Status answers a refused request.
	Status int `yaml:"status" json:"status"`
	// Cold makes the stage report itself not ready.
	Cold bool `yaml:"cold" json:"cold"`
}

func (c teapotConfig) Validate() error {
	var errs []error
	errs = append(errs, c.Mode.Validate())
	if c.Status < 400 || c.Status > 599 {
		errs = append(errs, filters.FieldErrorf("status", "%d: want 400 to 599", c.Status))
	}
	return errors.Join(errs...)
}

func (c teapotConfig) Build(env filters.Env) (filters.Filter, error) {
	return &teapot{cfg: c, observed: &atomic.Int64{}}, nil
}

type teapot struct {
	cfg      teapotConfig
	observed *atomic.Int64
}

func (t *teapot) Name() string { return "teapot" }

func (t *teapot) Check(r *filters.Request) filters.Verdict {
	if strings.HasPrefix(r.HTTP.URL.Path, t.cfg.Path) {
		return filters.Verdict{Deny: true, Status: t.cfg.Status, Reason: "teapot"}
	}
	return filters.Allow
}

func (t *teapot) Observe(filters.Event) { t.observed.Add(1) }

func (t *teapot) Readiness(context.Context) error {
	if t.cfg.Cold {
		return errors.New("still heating")
	}
	return nil
}

// kettleConfig builds a teapot under another name: a stage whose filter
// is not named as its entry.
type kettleConfig struct {
	// Mode is block, shadow or off.
	Mode filters.Mode `yaml:"mode" json:"mode"`
}

func (c kettleConfig) Validate() error { return c.Mode.Validate() }

func (c kettleConfig) Build(filters.Env) (filters.Filter, error) {
	return &teapot{cfg: teapotConfig{Status: 418}, observed: &atomic.Int64{}}, nil
}

func init() {
	config.Register(config.StageOf(config.Entry[teapotConfig]{
		Name:     "teapot",
		Mode:     func(c teapotConfig) filters.Mode { return c.Mode },
		PerRoute: true,
	}))
	config.Register(config.StageOf(config.Entry[kettleConfig]{
		Name: "kettle",
		Mode: func(c kettleConfig) filters.Mode { return c.Mode },
	}))
}

// TestStageNamedAsItsEntry: a reload finds the instance to take over by
// name, so a filter named otherwise than its entry is refused at New.
func TestStageNamedAsItsEntry(t *testing.T) {
	_, err := New(mustConfig(t, "stages: [kettle]\n"))
	if err == nil || err.Error() != `kettle: its filter is named "teapot"` {
		t.Fatalf("New: %v", err)
	}
}

// TestRegisteredStageConfig: a registered stage's block is decoded,
// inherited by routes, and checked as strictly as a built-in one, each
// problem at its line.
func TestRegisteredStageConfig(t *testing.T) {
	cfg := mustConfig(t, `upstream: http://127.0.0.1:9000
routes:
  - {path: /tea, upstream: default}
stages: [teapot]
teapot: {path: /brew, status: 418}
route_stages:
  /tea: {teapot: {status: 503}}
`)
	if got := cfg.Extra["teapot"]; got != (teapotConfig{Path: "/brew", Status: 418}) {
		t.Errorf("top-level block %+v", got)
	}
	if got := cfg.RouteStages["/tea"].Extra["teapot"]; got != (teapotConfig{Path: "/brew", Status: 503}) {
		t.Errorf("route block %+v: want status 503 and the path inherited", got)
	}
	if !cfg.RouteStages["/tea"].Overrides("teapot") || cfg.RouteStages["/tea"].Overrides("volumetric") {
		t.Error("Overrides does not follow the route's blocks")
	}

	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key in its block", "stages: [teapot]\nteapot:\n  status: 418\n  stauts: 419\n",
			`test.yaml:4: teapot: unknown key "stauts"`},
		{"bad value in its block", "stages: [teapot]\nteapot:\n  status: 418\n  mode: detect\n",
			`test.yaml:4: teapot.mode: mode "detect": want block, shadow or off`},
		{"its Validate, at the field's line", "stages: [teapot]\nteapot:\n  path: /\n  status: 200\n",
			`test.yaml:4: teapot.status: 200: want 400 to 599`},
		{"named twice", "stages: [teapot, teapot]\nteapot: {status: 418}\n",
			`test.yaml:1: stages[1]: stage "teapot" named twice`},
		{"unknown key in a route's block", "upstream: http://127.0.0.1:9000\nroutes: [{path: /tea, upstream: default}]\nstages: []\nroute_stages:\n  /tea:\n    teapot: {statuss: 1}\n",
			`test.yaml:6: route_stages./tea.teapot: unknown key "statuss"`},
		{"a route's block is validated", "upstream: http://127.0.0.1:9000\nroutes: [{path: /tea, upstream: default}]\nstages: [teapot]\nteapot: {status: 418}\nroute_stages:\n  /tea:\n    teapot:\n      status: 99\n",
			`test.yaml:8: route_stages./tea.teapot.status: 99: want 400 to 599`},
		// Other test files register stages of their own: the list is the
		// table's, and teapot must be in it.
		{"an unknown stage lists it", "stages: [teapots]\n",
			`test.yaml:1: stages[0]: unknown stage "teapots" (want one of ` + strings.Join(config.StageNames(), ", ") + `)`},
	}
	if !slices.Contains(config.StageNames(), "teapot") {
		t.Errorf("the stage names %v leave out the registered teapot", config.StageNames())
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("test.yaml", []byte(tt.yaml))
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestRegisteredStageRuns: the Guard's chains run a registered stage in
// the order stages: gives, a route's own instance with the route's block;
// explain asks it; it observes denies and answers /readyz because it
// implements those interfaces.
func TestRegisteredStageRuns(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	g := mustGuard(t, `upstream: `+up.URL+`
routes:
  - {path: /tea, upstream: default}
  - {path: /, upstream: default}
stages: [volumetric, teapot]
volumetric: {rate: 1/m, burst: 1}
teapot: {path: /, status: 418}
route_stages:
  /tea: {teapot: {status: 503, cold: true}}
`)
	status := func(path, client string) int {
		r := httptest.NewRequest("GET", "http://example.test"+path, nil)
		r.RemoteAddr = client + ":1000"
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		return w.Code
	}
	for _, tt := range []struct {
		path, client string
		want         int
	}{
		{"/brew", "192.0.2.1", http.StatusTeapot},                // the shared instance
		{"/tea", "192.0.2.2", http.StatusServiceUnavailable},     // the route's own
		{"/brew", "192.0.2.1", http.StatusTooManyRequests},       // volumetric runs first
		{"/tea/pot", "192.0.2.3", http.StatusServiceUnavailable}, // the route's own again
	} {
		if got := status(tt.path, tt.client); got != tt.want {
			t.Errorf("%s from %s: %d, want %d", tt.path, tt.client, got, tt.want)
		}
	}

	r := httptest.NewRequest("GET", "http://example.test/tea", nil)
	r.RemoteAddr = "192.0.2.9:1000"
	ex, err := g.Explain(r, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(ex.Verdicts) != 2 || ex.Verdicts[1].Stage != "teapot" || ex.Verdicts[1].StatusCode() != 503 || ex.Result != "deny 503 by teapot" {
		t.Errorf("explain: %+v", ex)
	}

	// Four requests were refused: each chain tells its own teapot.
	var observed int64
	for _, s := range g.stages {
		if tp, ok := s.Filter.(*teapot); ok {
			observed += tp.observed.Load()
		}
	}
	if observed != 4 {
		t.Errorf("teapots observed %d denies, want 4 (the 429 included)", observed)
	}

	w := httptest.NewRecorder()
	g.AdminHandler().ServeHTTP(w, adminRequest("GET", "/readyz", nil))
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "teapot for route /tea: still heating") {
		t.Errorf("/readyz: %d %q, want 503 naming the route's teapot", w.Code, w.Body.String())
	}
}

// FuzzParseWithRegisteredStage: with a stage registered, any file decodes
// or fails with problems that each have a line, and what decodes
// validates. The registered stage's paths (its own decoding, its route
// blocks laid over the top-level one) are the ones under test here; the
// config package's own fuzz target covers the rest.
func FuzzParseWithRegisteredStage(f *testing.F) {
	for _, s := range []string{
		"stages: [teapot]\nteapot: {path: /brew, status: 418}\n",
		"upstream: http://127.0.0.1:9000\nroutes: [{path: /tea, upstream: default}]\nstages: [teapot]\nteapot: {status: 418}\nroute_stages:\n  /tea: {teapot: {status: 503}}\n",
		"upstream: http://127.0.0.1:9000\nroutes: [{path: /a, upstream: default}, {path: /b, upstream: default}]\nstages: [teapot]\nteapot: {status: 418}\nroute_stages:\n  /a: &o {teapot: {status: 503}}\n  /b: *o\n",
		"stages: [teapot]\nteapot: &t {status: 418}\nwaf: *t\n",
		"stages: [teapot]\nteapot:\n  status: 418\n  stauts: 1\n",
		"teapot: [1, 2]\n",
		"teapot: 418\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("fuzz.yaml", data)
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config that does not validate: %v", verr)
			}
			return
		}
		var ce *config.Error
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

// TestRefuseConnAsksConnFilters: the Guard refuses a connection when a
// stage of the shared chain that implements filters.ConnFilter does, and
// only then.
func TestRefuseConnAsksConnFilters(t *testing.T) {
	banned, clean := netip.MustParseAddr("192.0.2.66"), netip.MustParseAddr("192.0.2.7")
	now := time.Now()
	for _, tt := range []struct {
		name       string
		yaml       string
		wantBanned bool
	}{
		{"reputation enforces", "stages: [reputation, teapot]\nteapot: {status: 418}\n", true},
		{"reputation in shadow", "stages: [reputation]\nreputation: {mode: shadow}\n", false},
		{"no stage refuses connections", "stages: [teapot]\nteapot: {status: 418}\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := mustGuard(t, tt.yaml)
			if g.reputation != nil {
				if _, err := g.reputation.BanAt(now, netip.PrefixFrom(banned, 32), time.Hour, "test"); err != nil {
					t.Fatal(err)
				}
			}
			if got := g.RefuseConn(banned, now); got != tt.wantBanned {
				t.Errorf("RefuseConn(banned) = %v, want %v", got, tt.wantBanned)
			}
			if g.RefuseConn(clean, now) {
				t.Error("RefuseConn(clean) = true")
			}
		})
	}
}

// TestRegisteredStageFromGo: Go code sets a registered stage's blocks in
// Extra; a block the table cannot place is refused with its field, never
// left to run the stage with zero settings.
func TestRegisteredStageFromGo(t *testing.T) {
	base := func() *config.Config {
		cfg := mustConfig(t, "upstream: http://127.0.0.1:9\nroutes: [{path: /tea, upstream: default}]\nstages: []\n")
		cfg.Stages = []string{"teapot"}
		return cfg
	}
	cfg := base()
	cfg.Extra = map[string]config.StageConfig{"teapot": teapotConfig{Path: "/", Status: 418}}
	cfg.RouteStages = map[string]config.RouteStages{"/tea": {Extra: map[string]config.StageConfig{"teapot": teapotConfig{Path: "/", Status: 503}}}}
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if got := len(g.stages); got != 2 {
		t.Errorf("%d stage instances, want 2 (the shared teapot and the route's)", got)
	}

	for _, tt := range []struct {
		name string
		set  func(*config.Config)
		want string
	}{
		{"a block of another type", func(c *config.Config) {
			c.Extra = map[string]config.StageConfig{"teapot": config.StageConfig(c.WAF)}
		}, "teapot: block of type waf.Config, want edgeguard.teapotConfig"},
		{"a name no stage keeps there", func(c *config.Config) {
			c.Extra = map[string]config.StageConfig{"waf": c.WAF}
		}, "waf: no registered stage keeps its block in Extra under this name"},
		{"a route's block of another type", func(c *config.Config) {
			c.Extra = map[string]config.StageConfig{"teapot": teapotConfig{Status: 418}}
			c.RouteStages = map[string]config.RouteStages{"/tea": {Extra: map[string]config.StageConfig{"teapot": c.WAF}}}
		}, "route_stages./tea.teapot: block of type waf.Config, want edgeguard.teapotConfig"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base()
			tt.set(cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v\nwant an error containing %q", err, tt.want)
			}
		})
	}
}
