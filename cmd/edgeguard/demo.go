package main

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/edgeguard/edgeguard/config"
)

// demo.yaml is the embedded default: every stage on, state in memory, no
// Redis. The listen addresses and the upstream are filled in at start.
//
//go:embed demo.yaml
var demoYAML string

func demoConfig(listen, admin, upstream string) (*config.Config, error) {
	text := strings.NewReplacer("{{listen}}", listen, "{{admin}}", admin, "{{upstream}}", upstream).Replace(demoYAML)
	return config.Parse("demo.yaml", []byte(text))
}

// startDemoUpstream serves a tiny echo backend on a free loopback port: it
// answers with what reached it, so the demo shows the headers edgeguard adds.
func startDemoUpstream() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start the demo upstream: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(echo)}
	go srv.Serve(ln)
	return ln, nil
}

func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"upstream":          "edgeguard demo upstream",
		"method":            r.Method,
		"uri":               r.RequestURI,
		"x_real_ip":         r.Header.Get("X-Real-Ip"),
		"x_forwarded_for":   r.Header.Get("X-Forwarded-For"),
		"x_forwarded_proto": r.Header.Get("X-Forwarded-Proto"),
		"x_request_id":      r.Header.Get("X-Request-Id"),
		"body_bytes":        len(body),
	})
}

func printDemo(w io.Writer, edge, admin string) {
	fmt.Fprintf(w, `edgeguard demo: listening on http://%[1]s (admin http://%[2]s)
Try:
  curl -i http://%[1]s/                                   # allowed, echoed by the demo upstream
  curl -i 'http://%[1]s/?id=1%%27%%20OR%%20%%271%%27=%%271'     # SQL injection: 403 from the waf stage
  curl -i -X PATCH -H 'Content-Type: application/json' -d '{"name":"widget"}' http://%[1]s/items/7   # REST passes: waf.profile api
  curl -i -H 'X-Forwarded-For: 6.6.6.6' http://%[1]s/        # a spoofed header from an untrusted peer is ignored
  for i in $(seq 30); do curl -s -o /dev/null -w '%%{http_code} ' http://%[1]s/; done; echo   # 429s once the burst is spent
  curl -s http://%[2]s/metrics | grep ^edgeguard_requests_total
  curl -s http://%[2]s/v1/bans                               # 50 refusals within a minute ban a client for a minute
    # a banned client's connections are closed at accept: curl says "Empty reply from server".
    # Lift a ban with: curl -X DELETE http://%[2]s/v1/bans/127.0.0.1
Ctrl-C stops it.
`, edge, admin)
}
