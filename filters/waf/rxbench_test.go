package waf

import (
	"net/http"
	"sync"
	"testing"

	txhttp "github.com/corazawaf/coraza/v3/http"

	"github.com/edgeguard/edgeguard/filters"
)

var (
	rxBenchOnce        sync.Once
	rxStock, rxFast    *Filter
	rxBenchErr         error
	rxBenchRegistered0 bool
)

// BenchmarkRx: Coraza's own middleware over stock Coraza ("coraza"), the
// stage over stock Coraza ("stock") and the stage as production builds it,
// with edgeguard's operators ("fast"), on the benign GET and the 2 KB JSON
// POST. The stock rule set must be parsed before anything in the process
// registers edgeguard's operators, so run this benchmark on its own, and
// interleave rounds from the shell:
//
//	go test -c -o /tmp/waf.test ./filters/waf
//	for i in 1 2 3 4 5; do taskset -c 1 /tmp/waf.test -test.run '^$' -test.bench '^BenchmarkRx$' -test.benchmem; done
func BenchmarkRx(b *testing.B) {
	rxBenchOnce.Do(func() {
		rxBenchRegistered0 = operatorsRegistered.Load()
		keepStockOperators.Store(true)
		rxStock, rxBenchErr = newFilter(Config{}, filters.Env{}, engineOptions{})
		keepStockOperators.Store(false)
		if rxBenchErr == nil {
			rxFast, rxBenchErr = newFilter(Config{}, filters.Env{}, engineOptions{})
		}
	})
	if rxBenchRegistered0 {
		b.Fatal("edgeguard's operators were registered before the stock rule set was built: run -test.bench '^BenchmarkRx$' on its own")
	}
	if rxBenchErr != nil {
		b.Fatal(rxBenchErr)
	}
	up := http.HandlerFunc(okUpstream)
	for _, c := range []benchCase{benignGET(), benignJSONPost(2048)} {
		b.Run(c.name+"/coraza", func(b *testing.B) { runBench(b, txhttp.WrapHandler(rxStock.waf, up), c) })
		b.Run(c.name+"/stock", func(b *testing.B) { runBench(b, stageHandler(rxStock, up), c) })
		b.Run(c.name+"/fast", func(b *testing.B) { runBench(b, stageHandler(rxFast, up), c) })
	}
}
