package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// refWorkload names, for a workload that the baseline does not run, the
// workload whose baseline figure its ratios are taken to: a flood is only
// meaningful against a target with a volumetric limit, and its cost is
// compared with a benign GET.
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
			fmt.Fprintf(w, "| %s | %s | %s |", name, thousands(median(pick(runs, rps))),
				ratio(runs, res.runs[key{ref, baseline}]))
			if ref != wl {
				fmt.Fprintf(w, " %s |", ratio(runs, res.runs[key{ref, t}]))
			}
			answered := slices.DeleteFunc(slices.Clone(runs), func(r run) bool { return r.requests == 0 })
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

// writeHead prints a workload's title and table head; a workload measured
// against another's baseline gets a column for its ratio to its own.
func writeHead(w io.Writer, wl, ref, baseline string) {
	fmt.Fprintf(w, "### %s\n\n", wl)
	ratioHead := "× " + baseline
	if ref != wl {
		ratioHead += " (" + ref + ")"
	}
	fmt.Fprintf(w, "| target | req/s | %s |", ratioHead)
	if ref != wl {
		fmt.Fprintf(w, " × own %s |", ref)
	}
	fmt.Fprintf(w, " p50 | p99 | failed / requests |\n|---|---:|---:|")
	if ref != wl {
		fmt.Fprint(w, "---:|")
	}
	fmt.Fprint(w, "---:|---:|---:|\n")
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

func pick(runs []run, f func(run) float64) []float64 {
	xs := make([]float64, len(runs))
	for i, r := range runs {
		xs[i] = f(r)
	}
	return xs
}

// ratio prints ratioOf, "–" when no round has both.
func ratio(runs, base []run) string {
	m, ok := ratioOf(runs, base)
	if !ok {
		return "–"
	}
	if m < 0.1 {
		return fmt.Sprintf("%.3f×", m)
	}
	return fmt.Sprintf("%.2f×", m)
}

// ratioOf is the median over rounds of runs' req/s to base's req/s in
// the same round; false when no round has both.
func ratioOf(runs, base []run) (float64, bool) {
	byRound := map[int]float64{}
	for _, b := range base {
		byRound[b.round] = b.rps
	}
	var rs []float64
	for _, r := range runs {
		if b, ok := byRound[r.round]; ok && b > 0 {
			rs = append(rs, r.rps/b)
		}
	}
	if len(rs) == 0 {
		return 0, false
	}
	return median(rs), true
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
