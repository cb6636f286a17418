// Command corazaproxy is the "Coraza alone" target of bench/run.sh: Coraza
// v3's own http.WrapHandler with stock OWASP CRS v4 from coraza-coreruleset
// (the same module and version edgeguard embeds), paranoia level 1,
// blocking, in front of the same ReverseProxy as the bare baseline. It is
// what an operator gets by following Coraza's README, with no tuning.
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/corazawaf/coraza-coreruleset/v4"
	"github.com/corazawaf/coraza/v3"
	txhttp "github.com/corazawaf/coraza/v3/http"

	"github.com/edgeguard/edgeguard/bench/internal/proxykit"
)

// directives is the documented coraza-coreruleset setup. The recommended
// file sets SecRuleEngine DetectionOnly, hence On after it; CRS's own
// defaults give paranoia level 1 and an inbound threshold of 5.
const directives = `
Include @coraza.conf-recommended
SecRuleEngine On
Include @crs-setup.conf.example
Include @owasp_crs/*.conf
`

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve on")
	upstream := flag.String("upstream", "http://127.0.0.1:9000", "backend URL")
	flag.Parse()
	p, err := proxykit.New(*upstream)
	if err != nil {
		log.Fatal(err)
	}
	waf, err := coraza.NewWAF(coraza.NewWAFConfig().
		WithRootFS(coreruleset.FS).
		WithDirectives(directives))
	if err != nil {
		log.Fatalf("corazaproxy: loading CRS: %v", err)
	}
	log.Fatal(http.ListenAndServe(*listen, txhttp.WrapHandler(waf, p)))
}
