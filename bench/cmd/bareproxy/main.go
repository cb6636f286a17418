// Command bareproxy is the baseline of bench/run.sh: the standard library's
// httputil.ReverseProxy and nothing else, configured as a careful operator
// would (Rewrite, X-Forwarded-* set, enough idle upstream connections for
// the benchmark's concurrency). Every other target is reported as a ratio
// to it.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/edgeguard/edgeguard/bench/internal/proxykit"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	upstream := flag.String("upstream", "http://127.0.0.1:9000", "backend URL")
	flag.Parse()
	p, err := proxykit.New(*upstream)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.ListenAndServe(*listen, p))
}
