package main

import (
	"fmt"
	"io"
)

// goal is one acceptance figure of issue 16: the median same-round ratio
// of target on workload to ref on refWorkload must reach min.
type goal struct {
	what             string
	workload, target string
	refWorkload, ref string
	min              float64
}

// goals are checked on every run, so that a re-run says by itself which
// are met.
var goals = []goal{
	{"all stages ≥ 1.5× nginx + ModSecurity + CRS 3.3.4, GET", "get", "edgeguard-all", "get", "nginx-modsec-crs3", 1.5},
	{"all stages ≥ 1.5× nginx + ModSecurity + CRS 3.3.4, JSON POST", "post", "edgeguard-all", "post", "nginx-modsec-crs3", 1.5},
	{"cheap stages ≥ 0.9× bare Go proxy, GET", "get", "edgeguard-cheap", "get", "bare", 0.9},
	{"cheap stages ≥ 0.9× bare Go proxy, JSON POST", "post", "edgeguard-cheap", "post", "bare", 0.9},
	{"a denial ≥ 3× cheaper than a benign pass (cheap stages: flood vs GET)", "flood", "edgeguard-cheap", "get", "edgeguard-cheap", 3},
}

// writeGoals prints each goal as met, not met, or not measured in this run.
func writeGoals(w io.Writer, res *results) {
	fmt.Fprintf(w, "Goals (issue 16), same-run ratios:\n\n")
	for _, g := range goals {
		k, refKey := key{g.workload, g.target}, key{g.refWorkload, g.ref}
		r, ok := ratioOf(res.runs[k], res.runs[refKey])
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
