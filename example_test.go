package edgeguard_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/edgeguard/edgeguard"
	"github.com/edgeguard/edgeguard/config"
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
	// edge.yaml:3: volumetric.rate: filters: bad rate "fast": want COUNT/PERIOD, like 50/s or 600/m
}
