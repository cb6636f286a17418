package waf

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	txhttp "github.com/corazawaf/coraza/v3/http"

	"github.com/edgeguard/edgeguard/filters"
)

var (
	rxBenchOnce        sync.Once
	rxStock, rxFast    *Filter
	rxBenchErr         error
	rxBenchRegistered0 bool
)

// BenchmarkRx reports cpu-ns/op besides ns/op: the process's CPU time per
// request (getrusage), which a loaded machine disturbs far less than the
// wall clock.
//
// BenchmarkRx: Coraza's own middleware over stock Coraza ("coraza"), the
// stage over stock Coraza ("stock") and the stage as production builds it,
// with edgeguard's operators and transformations ("fast"), on the benign GET and the 2 KB JSON
// POST. The stock rule set must be parsed before anything in the process
// registers edgeguard's operators, so run this benchmark on its own, and
// interleave rounds from the shell:
//
//	go test -c -o /tmp/waf.test ./filters/waf
//	for i in 1 2 3 4 5; do taskset -c 1 /tmp/waf.test -test.run '^$' -test.bench '^BenchmarkRx$' -test.benchmem; done
func BenchmarkRx(b *testing.B) {
	rxBenchOnce.Do(func() {
		rxBenchRegistered0 = pluginsRegistered.Load()
		rxStock, rxBenchErr = newFilter(Config{}, filters.Env{}, engineOptions{stock: true})
		if rxBenchErr == nil {
			rxFast, rxBenchErr = newFilter(Config{}, filters.Env{}, engineOptions{})
		}
	})
	if rxBenchRegistered0 {
		b.Fatal("edgeguard's operators or transformations were registered before the stock rule set was built: run -test.bench '^BenchmarkRx$' on its own")
	}
	if rxBenchErr != nil {
		b.Fatal(rxBenchErr)
	}
	up := http.HandlerFunc(okUpstream)
	for _, c := range []benchCase{benignGET(), benignJSONPost(2048)} {
		b.Run(c.name+"/coraza", func(b *testing.B) { runBenchCPU(b, txhttp.WrapHandler(rxStock.waf, up), c) })
		b.Run(c.name+"/stock", func(b *testing.B) { runBenchCPU(b, stageHandler(rxStock, up), c) })
		b.Run(c.name+"/fast", func(b *testing.B) { runBenchCPU(b, stageHandler(rxFast, up), c) })
	}
}

// runBenchCPU is runBench that also reports the process's CPU time (user
// and system, every thread: the garbage collector's work counts) per
// request.
func runBenchCPU(b *testing.B, h http.Handler, c benchCase) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, c.request())
	if rec.Code != http.StatusOK {
		b.Fatalf("%s: answered %d, want 200", c.name, rec.Code)
	}
	b.ReportAllocs()
	b.ResetTimer()
	before := processCPU()
	for i := 0; i < b.N; i++ {
		h.ServeHTTP(httptest.NewRecorder(), c.request())
	}
	b.ReportMetric(float64(processCPU()-before)/float64(b.N), "cpu-ns/op")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
