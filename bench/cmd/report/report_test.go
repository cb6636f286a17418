package main

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRefusesBadRecords(t *testing.T) {
	for _, in := range []string{
		"R\t1\tget\tbare\t100\t5\t9\t0\t10",        // a field short (no CPU time)
		"R\tone\tget\tbare\t100\t5\t9\t0\t10\t50",  // round not a number
		"R\t1\tget\tbare\tfast\t5\t9\t0\t10\t50",   // req/s not a number
		"R\t1\tget\tbare\t100\t-5\t9\t0\t10\t50",   // negative latency
		"R\t1\tget\tbare\t100\t5\t9\t0\t-1\t50",    // negative count
		"R\t1\tget\tbare\t100\t5\t9\t0\t10\t-50",   // negative CPU time
		"R\t1\tget\tbare\t100\t5\t9\t0\t10\tNaN",   // CPU time not a figure
		"R\t1\tget\tbare\t100\t5\t9\t0\t10\t50\t1", // a field too many
		"SKIP\tnginx",        // no reason
		"BROKEN\tget\tnginx", // no reason
		"X\t1",               // unknown kind
	} {
		if _, err := parse(strings.NewReader(in)); !errors.Is(err, errRecord) {
			t.Errorf("parse(%q) = %v, want errRecord", in, err)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{9, 1, 5}, 5},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		if got := median(tc.xs); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.xs, got, tc.want)
		}
	}
}

// TestWrite pins the table: medians per target, ratios as medians of
// same-round ratios (not ratios of medians), CPU time per request, the
// flood compared by CPU per request with the target's own GET, broken and
// skipped targets named, latencies and CPU only from runs that completed
// requests.
func TestWrite(t *testing.T) {
	in := strings.Join([]string{
		"R\t1\tget\tbare\t1000\t900\t5000\t0\t10000\t300000",
		"R\t1\tget\tedgeguard\t800\t1000\t6000\t0\t8000\t320000",
		"R\t2\tget\tbare\t2000\t800\t4000\t0\t20000\t500000",
		"R\t2\tget\tedgeguard\t1000\t1100\t7000\t0\t10000\t450000",
		"R\t3\tget\tbare\t1500\t850\t4500\t0\t15000\t420000",
		"R\t3\tget\tedgeguard\t1350\t1050\t6500\t0\t13500\t567000",
		"BROKEN\tget\tnginx\tprobe answered first 502",
		"R\t1\tflood\tedgeguard\t199\t300\t900\t1900\t1990\t19900",
		"R\t2\tflood\tedgeguard\t0\t0\t0\t0\t0\t0",
		"R\t3\tflood\tedgeguard\t198\t320\t950\t1880\t1980\t41580",
		"SKIP\tcoraza\tnot installed",
	}, "\n")
	res, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	write(&b, res, "bare")
	// edgeguard's rounds: 0.8, 0.5, 0.9 of bare: median 0.80, where the
	// ratio of medians would be 1000/1500 = 0.67. CPU per request: bare 30,
	// 25, 28 µs (median 28.0), edgeguard 40, 45, 42 µs (median 42.0). The
	// flood: 10 µs in round 1, nothing completed in round 2, 21 µs in round
	// 3 (median 15.5 µs); its GET cost 40/10 = 4.0× and 42/21 = 2.0× as much
	// in the same rounds, median 3.00×, where the ratio of medians would be
	// 42/15.5 = 2.71×.
	want := `### get

| target | req/s | × bare | CPU/req | p50 | p99 | failed / requests |
|---|---:|---:|---:|---:|---:|---:|
| bare | 1,500 | 1.00× | 28.0 µs | 850 µs | 4.50 ms | 0 / 45,000 |
| edgeguard | 1,000 | 0.80× | 42.0 µs | 1.05 ms | 6.50 ms | 0 / 31,500 |
| nginx | broken: probe answered first 502 |

### flood

| target | req/s | CPU/req | × cheaper than own get | p50 | p99 | failed / requests |
|---|---:|---:|---:|---:|---:|---:|
| edgeguard | 198 | 15.5 µs | 3.00× | 310 µs | 925 µs | 3,780 / 3,970 |

- coraza skipped: not installed

`
	if got := b.String(); got != want {
		t.Errorf("write:\n%s\nwant:\n%s", got, want)
	}
}

// TestGoals: a goal is met at its threshold, not met below it, and not
// measured when either side is missing from the run; the denial goal
// compares CPU time per request (the flood's rate is fixed, its req/s
// would say 0.22×), and the reference WAF's label names the CRS package
// the run had.
func TestGoals(t *testing.T) {
	for _, tc := range []struct {
		floodCPU, crs3 string
		want           []string
	}{
		{"2000", "3.3.4-1+deb12u3", []string{
			"- not measured: all stages ≥ 1.5× nginx + ModSecurity + Debian's CRS 3.3.4-1+deb12u3, GET\n",
			"- **met** (0.900×): cheap stages ≥ 0.9× bare Go proxy, GET\n",
			"- **not met** (0.899×): cheap stages ≥ 0.9× bare Go proxy, JSON POST\n",
			"- **met** (3.000×): a denial ≥ 3× cheaper than a benign pass (cheap stages: CPU per request of GET ÷ of flood)\n",
		}},
		{"2010", "", []string{
			"- not measured: all stages ≥ 1.5× nginx + ModSecurity + Debian's CRS, JSON POST\n",
			"- **not met** (2.985×): a denial ≥ 3× cheaper",
		}},
		{"0", "", []string{
			"- not measured: a denial ≥ 3× cheaper", // no CPU time measured
		}},
	} {
		in := strings.Join([]string{
			"R\t1\tget\tbare\t1000\t1\t1\t0\t1\t1",
			"R\t1\tget\tedgeguard-cheap\t900\t1\t1\t0\t1000\t30000",
			"R\t1\tpost\tbare\t1000\t1\t1\t0\t1\t1",
			"R\t1\tpost\tedgeguard-cheap\t899\t1\t1\t0\t1\t1",
			"R\t1\tflood\tedgeguard-cheap\t200\t1\t1\t190\t200\t" + tc.floodCPU,
		}, "\n")
		res, err := parse(strings.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		writeGoals(&b, res, tc.crs3)
		for _, want := range tc.want {
			if !strings.Contains(b.String(), want) {
				t.Errorf("flood CPU %s µs: goals lack %q:\n%s", tc.floodCPU, want, b.String())
			}
		}
	}
}

// TestSpoiled: failures beyond 1 % spoil a benign workload's figures
// (and the goals built on them), beyond 11 % the mix's (a tenth of it is
// attacks); on the flood failures are what a limiter is for.
func TestSpoiled(t *testing.T) {
	in := strings.Join([]string{
		"R\t1\tget\tbare\t1000\t1\t1\t10\t1000\t30000",
		"R\t1\tget\tedgeguard-cheap\t900\t1\t1\t11\t1000\t30000",
		"R\t1\tmix\tedgeguard-all\t50\t1\t1\t110\t1000\t30000",
		"R\t1\tmix\tcoraza\t50\t1\t1\t111\t1000\t30000",
		"R\t1\tflood\tedgeguard-cheap\t200\t1\t1\t1000\t1000\t3000",
	}, "\n")
	res, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[key]bool{
		{"get", "bare"}:              false,
		{"get", "edgeguard-cheap"}:   true,
		{"mix", "edgeguard-all"}:     false,
		{"flood", "edgeguard-cheap"}: false,
	} {
		if got := res.spoiled(k); got != want {
			t.Errorf("spoiled(%v) = %v, want %v", k, got, want)
		}
	}
	var b strings.Builder
	write(&b, res, "bare")
	writeGoals(&b, res, "")
	for _, want := range []string{
		"| edgeguard-cheap ⚠ | 900 |",
		"- ⚠ edgeguard-cheap: 11 of 1,000 requests failed, more than the 1 % the workload allows",
		"- not measured (benign requests failed): cheap stages ≥ 0.9× bare Go proxy, GET\n",
		"- not measured (benign requests failed): a denial ≥ 3× cheaper",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
}

func TestQualityTable(t *testing.T) {
	in := "Q\tcoraza\tattack-pl1\t2000\t1990\t0\nQ\tcoraza\tbenign\t1000\t160\t0\nQ\tedgeguard-all\tattack-pl1\t2000\t1997\t3\n"
	res, err := parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	writeQuality(&b, res)
	for _, want := range []string{
		"| coraza | 1,990 / 2,000 (99.5 %) | – | – | – | 160 / 1,000 (16.0 %) |",
		"| edgeguard-all | 1,997 / 2,000 (99.8 %) |",
		"edgeguard-all, attack-pl1: 3 of 2000 inputs got no answer",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
	for _, bad := range []string{
		"Q\tx\tbenign\t10\t11\t0\n",                        // more refused than sent
		"Q\tx\tbenign\t10\t1\n",                            // short
		"Q\tx\tbenign\t10\t1\t0\nQ\tx\tbenign\t10\t1\t0\n", // twice
		"Q\t\tbenign\t1\t1\t0\n",                           // unnamed
	} {
		if _, err := parse(strings.NewReader(bad)); !errors.Is(err, errRecord) {
			t.Errorf("parse(%q) = %v, want errRecord", bad, err)
		}
	}
}
