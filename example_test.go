package edgeguard_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/edgeguard/edgeguard"
	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters"
)

// A Guard as middleware in front of your own handler: here a volumetric
// limit of 2 requests at once per client, then 1 a minute.
func ExampleGuard_Wrap() {
	cfg, err := config.Parse("inline", []byte(`
stages: [volumetric]
volumetric: {rate: "1/m", burst: 2}
log: {access: false}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := edgeguard.New(cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.Header.Get("X-Real-Ip"))
	})
	h := g.Wrap(app)
	for range 3 {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "192.0.2.10:50000"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("Retry-After"), w.Body.String()[:min(w.Body.Len(), 16)])
	}
	// Output:
	// 200  hello 192.0.2.10
	// 200  hello 192.0.2.10
	// 429 60 429 Too Many Req
}

// A config error names the file and the line.
func ExampleNew_badConfig() {
	_, err := config.Parse("edge.yaml", []byte("stages: [volumetric]\nvolumetric:\n  rate: fast\n"))
	fmt.Println(err)
	// Output:
	// edge.yaml:3: volumetric.rate: bad rate "fast": want COUNT/PERIOD, like 50/s or 600/m
}

// Wrapping a whole http.ServeMux: every route behind it is guarded, and
// the handlers read the resolved client from X-Real-Ip. The config is
// built in code from DefaultConfig (the demo's stages), with the WAF
// left out to keep the example quick.
func ExampleGuard_Wrap_serveMux() {
	cfg := edgeguard.DefaultConfig()
	cfg.Stages = []string{"reputation", "volumetric", "quota"}
	g, err := edgeguard.New(cfg, edgeguard.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s", r.Header.Get("X-Real-Ip"))
	})
	srv := httptest.NewServer(g.Wrap(mux))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/hello")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output:
	// 200 hello 127.0.0.1
}

// denyPathConfig is the settings block of a stage of your own: it refuses
// requests under one path prefix with 404, as if nothing were there.
type denyPathConfig struct {
	// Mode is block, shadow or off.
	Mode filters.Mode `yaml:"mode" json:"mode"`
	// Prefix is the path prefix refused.
	Prefix string `yaml:"prefix" json:"prefix"`
}

func (c denyPathConfig) Validate() error {
	if !strings.HasPrefix(c.Prefix, "/") {
		return filters.FieldErrorf("prefix", "%q: want a path starting with /", c.Prefix)
	}
	return c.Mode.Validate()
}

func (c denyPathConfig) Build(filters.Env) (filters.Filter, error) { return denyPath{c.Prefix}, nil }

// denyPath is the stage's filter.
type denyPath struct{ prefix string }

func (d denyPath) Name() string { return "deny_path" }

func (d denyPath) Check(r *filters.Request) filters.Verdict {
	if strings.HasPrefix(r.HTTP.URL.Path, d.prefix) {
		return filters.Verdict{Deny: true, Status: http.StatusNotFound, Reason: "deny_path"}
	}
	return filters.Allow
}

func init() {
	// Once, before any config is parsed: the stage is then a key of the
	// file and a name for stages:, like the built-in ones.
	config.Register(config.StageOf(config.Entry[denyPathConfig]{
		Name: "deny_path",
		Mode: func(c denyPathConfig) filters.Mode { return c.Mode },
	}))
}

// A custom Filter in the chain: a stage registered in the stage table runs
// where stages: puts it, and its denies are answered, logged and counted
// like the built-in stages' ones.
func ExampleGuard_Wrap_customFilter() {
	cfg, err := config.Parse("inline", []byte(`
stages: [deny_path, volumetric]
deny_path: {prefix: /wp-admin}
volumetric: {rate: "10/s"}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := edgeguard.New(cfg, edgeguard.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "app") }))
	for _, path := range []string{"/", "/wp-admin/setup.php"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		fmt.Println(path, w.Code)
	}
	// Output:
	// / 200
	// /wp-admin/setup.php 404
}

// Reading the chain's view downstream: the handler behind the Guard finds
// the request as the stages saw it (client, key, request id) in its
// context, and the quota stage's RateLimit headers (what remains) already
// on the response.
func ExampleGuard_Wrap_verdict() {
	cfg, err := config.Parse("inline", []byte(`
stages: [quota]
quota:
  store: memory
  key: [ip]
  policies: [{name: default, rate: "60/m", burst: 3}]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	g, err := edgeguard.New(cfg, edgeguard.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := filters.FromContext(r.Context())
		fmt.Printf("client %s, quota %s\n", req.Client, w.Header().Get("RateLimit"))
	}))
	for range 2 {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "198.51.100.4" // no port: accepted as the client
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	// Output:
	// client 198.51.100.4, quota "default";r=2;t=1
	// client 198.51.100.4, quota "default";r=1;t=2
}

// With a router that takes func(http.Handler) http.Handler middleware (chi's
// r.Use, alice, gorilla/mux's Use), Wrap is that function.
func ExampleGuard_Wrap_chiStyle() {
	cfg := edgeguard.DefaultConfig()
	cfg.Stages = []string{"volumetric"}
	cfg.Volumetric.Burst = 1
	g, err := edgeguard.New(cfg, edgeguard.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()

	var use []func(http.Handler) http.Handler // what r.Use(g.Wrap) keeps
	use = append(use, g.Wrap)
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	for i := len(use) - 1; i >= 0; i-- {
		h = use[i](h)
	}
	for range 2 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		fmt.Printf("%d Retry-After=%q\n", w.Code, w.Header().Get("Retry-After"))
	}
	// Output:
	// 200 Retry-After=""
	// 429 Retry-After="1"
}
