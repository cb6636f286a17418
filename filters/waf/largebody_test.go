package waf

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	txhttp "github.com/corazawaf/coraza/v3/http"

	"github.com/edgeguard/edgeguard/filters"
)

// stockProbeEnv makes TestLargeStringCost the child process that measures
// Coraza alone: Coraza's registries are global, so stock Coraza can only
// be measured in a process where nothing has replaced its functions.
const stockProbeEnv = "EDGEGUARD_WAF_STOCK_PROBE"

// cpuTime is the CPU time the process has used, all threads.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuOf runs one request through h and returns the CPU time it took.
func cpuOf(t *testing.T, h http.Handler, c benchCase) time.Duration {
	t.Helper()
	req := c.request()
	rec := httptest.NewRecorder()
	start := cpuTime(t)
	h.ServeHTTP(rec, req)
	took := cpuTime(t) - start
	if rec.Code != http.StatusOK {
		t.Fatalf("%s: answered %d, want 200", c.name, rec.Code)
	}
	return took
}

var probeLine = regexp.MustCompile(`stock-cpu-ns (\d+)`)

// TestLargeStringCost: a benign JSON body holding one 1 MB string costs at
// most 1 s of CPU in the stage, and at most a third of what Coraza alone
// (stock operators and transformations, its own middleware) spends on it.
func TestLargeStringCost(t *testing.T) {
	c := largeStringPost(1 << 20)
	cfg := Config{BodyLimit: 2 << 20}
	if os.Getenv(stockProbeEnv) != "" {
		f, err := newFilter(cfg, filters.Env{}, engineOptions{stock: true})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fmt.Printf("stock-cpu-ns %d\n", cpuOf(t, txhttp.WrapHandler(f.waf, http.HandlerFunc(okUpstream)), c))
		return
	}
	if testing.Short() || raceDetector {
		t.Skip("costs seconds of CPU: not in -short or -race")
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestLargeStringCost$")
	cmd.Env = append(os.Environ(), stockProbeEnv+"=1")
	out, err := cmd.CombinedOutput()
	m := probeLine.FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("stock probe: %v\n%s", err, out)
	}
	ns, _ := strconv.ParseInt(string(m[1]), 10, 64)
	stock := time.Duration(ns)

	f := newTestFilter(t, cfg)
	stage := cpuOf(t, stageHandler(f, http.HandlerFunc(okUpstream)), c)
	t.Logf("1 MB JSON string: stage %v of CPU, Coraza alone %v (%.2f×)", stage, stock, float64(stock)/float64(stage))
	if stage > time.Second {
		t.Errorf("stage: %v of CPU, want at most 1s", stage)
	}
	if 3*stage > stock {
		t.Errorf("stage: %v of CPU, more than a third of Coraza alone's %v", stage, stock)
	}
}
