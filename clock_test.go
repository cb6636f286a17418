package edgeguard

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters"
)

// stopwatchConfig builds a stage that records the r.Now each request
// reaches it with, under its own name so two can stand in one chain.
type stopwatchConfig struct {
	// Mode is block, shadow or off.
	Mode filters.Mode `yaml:"mode" json:"mode"`
}

func (c stopwatchConfig) Validate() error { return c.Mode.Validate() }

var stopwatchReadings = struct {
	sync.Mutex
	by map[string][]time.Time
}{by: map[string][]time.Time{}}

type stopwatch struct{ name string }

func (s stopwatch) Name() string { return s.name }

func (s stopwatch) Check(r *filters.Request) filters.Verdict {
	stopwatchReadings.Lock()
	stopwatchReadings.by[s.name] = append(stopwatchReadings.by[s.name], r.Now)
	stopwatchReadings.Unlock()
	// Work that takes time, as the WAF's does: at least until the clock
	// has moved past the instant this stage was handed.
	for !time.Now().After(r.Now) {
	}
	return filters.Allow
}

type lapConfig struct{ stopwatchConfig }

func (c stopwatchConfig) Build(filters.Env) (filters.Filter, error) {
	return stopwatch{"stopwatch"}, nil
}
func (c lapConfig) Build(filters.Env) (filters.Filter, error) { return stopwatch{"lap"}, nil }

func init() {
	config.Register(config.StageOf(config.Entry[stopwatchConfig]{
		Name: "stopwatch",
		Mode: func(c stopwatchConfig) filters.Mode { return c.Mode },
	}))
	config.Register(config.StageOf(config.Entry[lapConfig]{
		Name: "lap",
		Mode: func(c lapConfig) filters.Mode { return c.Mode },
	}))
}

// TestLaterStagesDecideAtTheirOwnInstant: a limiter behind a slow stage
// (the quota behind the WAF) is handed the time it runs at, not the
// arrival time, or requests that overtook a slow one would have used up
// its allowance before it is metered.
func TestLaterStagesDecideAtTheirOwnInstant(t *testing.T) {
	stopwatchReadings.Lock()
	clear(stopwatchReadings.by) // -count runs the test again in one process
	stopwatchReadings.Unlock()
	g := mustGuard(t, "stages: [stopwatch, lap]\n")
	r := httptest.NewRequest("GET", "http://example.test/", nil)
	r.RemoteAddr = "192.0.2.1:1000"
	g.Wrap(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), r)

	stopwatchReadings.Lock()
	defer stopwatchReadings.Unlock()
	first, second := stopwatchReadings.by["stopwatch"], stopwatchReadings.by["lap"]
	if len(first) != 1 || len(second) != 1 {
		t.Fatalf("readings %v / %v, want one each", first, second)
	}
	if !second[0].After(first[0]) {
		t.Fatalf("the second stage was handed %v, not after the first stage's %v", second[0], first[0])
	}
}
