package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// refWorkload names, for a workload that the baseline does not run, the
// workload it is compared with: a flood is only meaningful against a target
// with a volumetric limit, and it runs at a fixed rate, so what it is
// compared by is the CPU time of a request: how many times cheaper a
// denial is than the target's own benign GET.
var refWorkload = map[string]string{"flood": "get"}

// write prints one Markdown table per workload, then what was skipped.
func write(w io.Writer, res *results, baseline string) {
	for _, wl := range res.workloads {
		ref := wl
		if r, ok := refWorkload[wl]; ok {
			ref = r
		}
		writeHead(w, wl, ref, baseline)
		var notes []string
		for _, t := range res.targets {
			k := key{wl, t}
			if why, ok := res.broken[k]; ok {
				fmt.Fprintf(w, "| %s | broken: %s |\n", t, cell(why))
				continue
			}
			runs := res.runs[k]
			if len(runs) == 0 {
				continue
			}
			failed, reqs := tally(runs)
			name := t
			if res.spoiled(k) {
				name += " ⚠"
				notes = append(notes, fmt.Sprintf("- ⚠ %s: %s of %s requests failed, more than the %d %% the workload allows: benign requests failed, and its figures measure refusals or errors, not the workload.\n",
					t, thousands(float64(failed)), thousands(float64(reqs)), failurePercent[wl]))
			}
			answered := slices.DeleteFunc(slices.Clone(runs), func(r run) bool { return r.requests == 0 })
			fmt.Fprintf(w, "| %s | %s |", name, thousands(median(pick(runs, rps))))
			if ref == wl {
				fmt.Fprintf(w, " %s | %s |", ratio(runs, res.runs[key{ref, baseline}], faster), cpuCell(answered))
			} else {
				fmt.Fprintf(w, " %s | %s |", cpuCell(answered), ratio(runs, res.runs[key{ref, t}], cheaper))
			}
			fmt.Fprintf(w, " %s | %s | %s / %s |\n", latency(answered, p50), latency(answered, p99),
				thousands(float64(failed)), thousands(float64(reqs)))
		}
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprint(w, n)
		}
		if len(notes) > 0 {
			fmt.Fprintln(w)
		}
	}
	for _, t := range slices.Sorted(maps.Keys(res.skipped)) {
		fmt.Fprintf(w, "- %s skipped: %s\n", t, res.skipped[t])
	}
	if len(res.skipped) > 0 {
		fmt.Fprintln(w)
	}
}

// writeHead prints a workload's title and table head. A workload measured
// against another (the flood against the GET) has no throughput ratio: its
// rate is fixed; it gets how many times cheaper its requests were than the
// target's own requests of the other workload.
func writeHead(w io.Writer, wl, ref, baseline string) {
	fmt.Fprintf(w, "### %s\n\n", wl)
	if ref == wl {
		fmt.Fprintf(w, "| target | req/s | × %s | CPU/req |", baseline)
	} else {
		fmt.Fprintf(w, "| target | req/s | CPU/req | × cheaper than own %s |", ref)
	}
	fmt.Fprint(w, " p50 | p99 | failed / requests |\n|---|---:|---:|---:|---:|---:|---:|\n")
}

// tally sums the failed and the completed requests over runs.
func tally(runs []run) (failed, requests int64) {
	for _, r := range runs {
		failed += r.non2xx
		requests += r.requests
	}
	return failed, requests
}

func rps(r run) float64 { return r.rps }
func p50(r run) float64 { return r.p50 }
func p99(r run) float64 { return r.p99 }

// cpuPerRequest is the CPU time, in microseconds, the target spent per
// completed request of r; callers leave out runs that completed none.
func cpuPerRequest(r run) float64 { return r.cpu / float64(r.requests) }

func pick(runs []run, f func(run) float64) []float64 {
	xs := make([]float64, len(runs))
	for i, r := range runs {
		xs[i] = f(r)
	}
	return xs
}

// ratio prints sameRound(runs, base, by), "–" when no round has both.
func ratio(runs, base []run, by func(r, b run) (float64, bool)) string {
	m, ok := sameRound(runs, base, by)
	if !ok {
		return "–"
	}
	if m < 0.1 {
		return fmt.Sprintf("%.3f×", m)
	}
	return fmt.Sprintf("%.2f×", m)
}

// sameRound is the median over rounds of by(r, b), r from runs and b from
// base measured in the same round, leaving out rounds where by has no
// answer; false when no round is left.
func sameRound(runs, base []run, by func(r, b run) (float64, bool)) (float64, bool) {
	byRound := map[int]run{}
	for _, b := range base {
		byRound[b.round] = b
	}
	var rs []float64
	for _, r := range runs {
		if b, ok := byRound[r.round]; ok {
			if x, ok := by(r, b); ok {
				rs = append(rs, x)
			}
		}
	}
	if len(rs) == 0 {
		return 0, false
	}
	return median(rs), true
}

// faster is r's throughput as a multiple of b's.
func faster(r, b run) (float64, bool) {
	return r.rps / b.rps, b.rps > 0
}

// cheaper is how many times more CPU time a request of b cost than one of
// r; no answer unless both completed requests and r used measurable CPU.
func cheaper(r, b run) (float64, bool) {
	if r.requests == 0 || b.requests == 0 || r.cpu == 0 {
		return 0, false
	}
	return cpuPerRequest(b) / cpuPerRequest(r), true
}

// cpuCell prints the median CPU time per request over runs, which must all
// have completed requests.
func cpuCell(runs []run) string {
	if len(runs) == 0 {
		return "–"
	}
	us := median(pick(runs, cpuPerRequest))
	if us < 100 {
		return fmt.Sprintf("%.1f µs", us)
	}
	return micros(us)
}

// micros prints a latency given in microseconds with a readable unit.
func micros(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2f s", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.2f ms", us/1e3)
	}
	return fmt.Sprintf("%.0f µs", us)
}

// thousands rounds x and groups its digits by three with commas.
func thousands(x float64) string {
	s := fmt.Sprintf("%.0f", x)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// cell keeps a free-text reason from breaking the table.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// latency is the median of one percentile over the runs that completed
// requests; a run in which nothing completed has no latency to report.
func latency(runs []run, f func(run) float64) string {
	if len(runs) == 0 {
		return "–"
	}
	return micros(median(pick(runs, f)))
}

// qualityKinds are the columns of the quality table, in order.
var qualityKinds = []struct{ kind, head string }{
	{"attack-pl1", "PL1 attacks refused"},
	{"attack-pl2", "PL2"},
	{"attack-pl3", "PL3"},
	{"attack-pl4", "PL4"},
	{"benign", "benign refused (false positives)"},
}

// writeQuality prints the WAF decision table, when there are Q records.
func writeQuality(w io.Writer, res *results) {
	if len(res.qTargets) == 0 {
		return
	}
	fmt.Fprintln(w, "### WAF decisions")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every sendable attack input of CRS's regression tests, by the paranoia level of the rule it is written for, and every request of the benign corpus, each on its own connection from its own address; refused means status 403.")
	fmt.Fprintln(w)
	fmt.Fprint(w, "| target |")
	for _, k := range qualityKinds {
		fmt.Fprintf(w, " %s |", k.head)
	}
	fmt.Fprint(w, "\n|---|")
	for range qualityKinds {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprintln(w)
	var notes []string
	for _, t := range res.qTargets {
		fmt.Fprintf(w, "| %s |", t)
		for _, k := range qualityKinds {
			d, ok := res.quality[key{k.kind, t}]
			if !ok || d.sent == 0 {
				fmt.Fprint(w, " – |")
				continue
			}
			fmt.Fprintf(w, " %s / %s (%.1f %%) |", thousands(float64(d.refused)), thousands(float64(d.sent)), 100*float64(d.refused)/float64(d.sent))
			if d.errors > 0 {
				notes = append(notes, fmt.Sprintf("- %s, %s: %d of %d inputs got no answer (counted as not refused).\n", t, k.kind, d.errors, d.sent))
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	for _, n := range notes {
		fmt.Fprint(w, n)
	}
	if len(notes) > 0 {
		fmt.Fprintln(w)
	}
}
