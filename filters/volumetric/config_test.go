package volumetric

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

func fieldsOf(err error) []string {
	var out []string
	for _, fe := range filters.FieldErrors(err) {
		if fe.Field != "" {
			out = append(out, fe.Field)
		}
	}
	slices.Sort(out)
	return out
}

func TestValidate(t *testing.T) {
	r := filters.Rate{Count: 50, Period: time.Second}
	for _, tc := range []struct {
		name   string
		cfg    Config
		fields []string
	}{
		{"minimal", Config{Rate: r}, nil},
		{"full", Config{Mode: filters.ModeShadow, Rate: r, Burst: 100, MaxClients: 1000, Shards: 8}, nil},
		{"off needs no rate", Config{Mode: filters.ModeOff}, nil},
		{"missing rate", Config{Burst: 1}, []string{"rate"}},
		{"negative rate", Config{Rate: filters.Rate{Count: -1, Period: time.Second}}, []string{"rate"}},
		{"zero period", Config{Rate: filters.Rate{Count: 5}}, []string{"rate"}},
		{"negative burst", Config{Rate: r, Burst: -1}, []string{"burst"}},
		{"burst spanning decades", Config{Rate: filters.Rate{Count: 1, Period: 24 * time.Hour}, Burst: 20_000}, []string{"burst"}},
		// burst×interval may reach maxTolerance (2^60ns) but not pass it.
		{"burst at the span bound", Config{Rate: filters.Rate{Count: 1, Period: 1 << 40}, Burst: 1 << 20}, nil},
		{"burst past the span bound", Config{Rate: filters.Rate{Count: 1, Period: 1 << 40}, Burst: 1<<20 + 1}, []string{"burst"}},
		// The bound applies to the resolved burst: 0 means the rate's count.
		{"default burst spanning decades", Config{Rate: filters.Rate{Count: 1, Period: 40 * 365 * 24 * time.Hour}}, []string{"burst"}},
		{"default burst too large", Config{Rate: filters.Rate{Count: 1 << 62, Period: time.Second}}, []string{"burst"}},
		{"strict pacing at a huge rate", Config{Rate: filters.Rate{Count: 1 << 62, Period: time.Second}, Burst: 1}, nil},
		{"default burst at a large rate", Config{Rate: filters.Rate{Count: 1_000_000_000, Period: time.Second}}, nil},
		{"burst with a bad rate names only the rate", Config{Rate: filters.Rate{Count: 1 << 62}}, []string{"rate"}},
		{"negative max_clients", Config{Rate: r, MaxClients: -5}, []string{"max_clients"}},
		{"too many shards", Config{Rate: r, Shards: MaxShards + 1}, []string{"shards"}},
		{"negative shards", Config{Rate: r, Shards: -1}, []string{"shards"}},
		{"bad mode", Config{Mode: "loud", Rate: r}, []string{"mode"}},
		{"everything wrong", Config{Mode: "x", Burst: -1, MaxClients: -1, Shards: -1}, []string{"burst", "max_clients", "mode", "rate", "shards"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if got := fieldsOf(err); !reflect.DeepEqual(got, tc.fields) {
				t.Fatalf("Validate() = %v; fields %v, want %v", err, got, tc.fields)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	c := Config{Rate: filters.Rate{Count: 1, Period: time.Second}}.withDefaults()
	if c.MaxClients != DefaultMaxClients || c.Mode != filters.ModeBlock || c.Shards < DefaultShards || c.Burst != 1 {
		t.Fatalf("defaults %+v", c)
	}
	if c := (Config{MaxClients: 10}).withDefaults(); c.Shards != 10 {
		t.Fatalf("shards not clamped to max_clients: %+v", c)
	}
	for procs, want := range map[int]int{1: 96, 2: 96, 24: 96, 25: 192, 64: 384, 100_000: MaxShards} {
		if got := defaultShards(procs); got != want {
			t.Errorf("defaultShards(%d) = %d, want %d", procs, got, want)
		}
	}
}

func TestConfigJSONKeys(t *testing.T) {
	var c Config
	in := `{"mode":"shadow","rate":"3000/m","burst":7,"max_clients":5000,"shards":16}`
	if err := json.Unmarshal([]byte(in), &c); err != nil {
		t.Fatal(err)
	}
	want := Config{Mode: filters.ModeShadow, Rate: filters.Rate{Count: 3000, Period: time.Minute}, Burst: 7, MaxClients: 5000, Shards: 16}
	if c != want {
		t.Fatalf("decoded %+v, want %+v", c, want)
	}
	out, err := json.Marshal(c)
	if err != nil || string(out) != in {
		t.Fatalf("encoded %s (%v), want %s", out, err, in)
	}
}

// TestBurstZeroResolvesToTheRateCount: burst 0 (or omitted) is the rate's
// count, as in the quota stage's LimitOf, and behaves exactly like it.
func TestBurstZeroResolvesToTheRateCount(t *testing.T) {
	for _, tc := range []struct {
		rate string
		want int
	}{
		{"50/s", 50}, {"3000/m", 3000}, {"10/5s", 10}, {"1/d", 1},
	} {
		t.Run(tc.rate, func(t *testing.T) {
			r := mustRate(t, tc.rate)
			if got := (Config{Rate: r}).withDefaults().Burst; got != tc.want {
				t.Fatalf("burst 0 at %s resolves to %d, want %d", tc.rate, got, tc.want)
			}
			if got := (Config{Rate: r, Burst: 7}).withDefaults().Burst; got != 7 {
				t.Fatalf("burst 7 at %s resolves to %d", tc.rate, got)
			}
			def := mustLimiter(t, Config{Rate: r})
			explicit := mustLimiter(t, Config{Rate: r, Burst: tc.want})
			if !def.sameBuckets(explicit) || def.gcra.Burst != int64(tc.want) {
				t.Fatalf("burst 0: interval %d span %d burst %d; burst %d: interval %d span %d",
					def.gcra.Interval, def.gcra.Span(), def.gcra.Burst, tc.want, explicit.gcra.Interval, explicit.gcra.Span())
			}
		})
	}
	// Off and without a rate there is nothing to resolve against.
	if got := (Config{Mode: filters.ModeOff}).withDefaults().Burst; got != 0 {
		t.Fatalf("burst without a rate resolves to %d", got)
	}
}

// TestBurstOneIsStrictPacing: burst 1 admits one request at a time and
// refuses anything less than one interval after the last.
func TestBurstOneIsStrictPacing(t *testing.T) {
	r := mustRate(t, "10/s")
	iv := r.Interval()
	l := mustLimiter(t, Config{Rate: r, Burst: 1})
	if l.gcra.Span() != l.gcra.Interval {
		t.Fatalf("burst 1: span %v, want one interval %v (tolerance 0)", time.Duration(l.gcra.Span()), time.Duration(l.gcra.Interval))
	}
	k := keyN(1)
	for i := range 20 {
		at := t0.Add(time.Duration(i) * iv)
		if ok, wait := l.AllowAt(at, k); !ok {
			t.Fatalf("request %d, one interval after the last, refused (wait %v)", i, wait)
		}
		if ok, wait := l.AllowAt(at, k); ok || wait != iv {
			t.Fatalf("second request at the instant of request %d: ok=%v wait=%v, want refused, %v", i, ok, wait, iv)
		}
		if ok, wait := l.AllowAt(at.Add(iv-time.Nanosecond), k); ok || wait != time.Nanosecond {
			t.Fatalf("request 1ns short of an interval after %d: ok=%v wait=%v, want refused, 1ns", i, ok, wait)
		}
	}
	if ok, wait := l.AllowNAt(t0.Add(time.Hour), k, 2); ok || wait != Never {
		t.Fatalf("two at once with burst 1: ok=%v wait=%v, want refused, Never", ok, wait)
	}
}
