package main

import (
	"fmt"
	"io"
)

// goal is one acceptance figure of issue 16: the median over rounds of
// by(target on workload, ref on refWorkload), each pair measured in the
// same round, must reach min.
type goal struct {
	what             string
	workload, target string
	refWorkload, ref string
	by               func(r, b run) (float64, bool)
	min              float64
}

// goals are checked on every run, so that a re-run says by itself which
// are met. crs3 is the version of Debian's modsecurity-crs package the
// nginx-modsec-crs3 target ran, empty when unknown.
func goals(crs3 string) []goal {
	crs := "Debian's CRS"
	if crs3 != "" {
		crs += " " + crs3
	}
	return []goal{
		{"all stages ≥ 1.5× nginx + ModSecurity + " + crs + ", GET", "get", "edgeguard-all", "get", "nginx-modsec-crs3", faster, 1.5},
		{"all stages ≥ 1.5× nginx + ModSecurity + " + crs + ", JSON POST", "post", "edgeguard-all", "post", "nginx-modsec-crs3", faster, 1.5},
		{"cheap stages ≥ 0.9× bare Go proxy, GET", "get", "edgeguard-cheap", "get", "bare", faster, 0.9},
		{"cheap stages ≥ 0.9× bare Go proxy, JSON POST", "post", "edgeguard-cheap", "post", "bare", faster, 0.9},
		{"a denial ≥ 3× cheaper than a benign pass (cheap stages: CPU per request of GET ÷ of flood)", "flood", "edgeguard-cheap", "get", "edgeguard-cheap", cheaper, 3},
	}
}

// writeGoals prints each goal as met, not met, or not measured in this run.
func writeGoals(w io.Writer, res *results, crs3 string) {
	fmt.Fprintf(w, "Goals (issue 16), same-run ratios:\n\n")
	for _, g := range goals(crs3) {
		k, refKey := key{g.workload, g.target}, key{g.refWorkload, g.ref}
		r, ok := sameRound(res.runs[k], res.runs[refKey], g.by)
		switch {
		case res.spoiled(k) || res.spoiled(refKey):
			fmt.Fprintf(w, "- not measured (benign requests failed): %s\n", g.what)
		case !ok:
			fmt.Fprintf(w, "- not measured: %s\n", g.what)
		case r >= g.min:
			fmt.Fprintf(w, "- **met** (%.3f×): %s\n", r, g.what)
		default:
			fmt.Fprintf(w, "- **not met** (%.3f×): %s\n", r, g.what)
		}
	}
}
