package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// errRecord is the sentinel for a line that does not parse.
var errRecord = errors.New("report: bad record")

// run is one wrk measurement of one target under one workload.
type run struct {
	round    int
	rps      float64
	p50, p99 float64 // microseconds
	non2xx   int64
	requests int64
	cpu      float64 // microseconds of CPU time the target used during the load
}

// key names a cell of the result: one workload on one target.
type key struct{ workload, target string }

// results is everything one run.sh invocation measured or refused to.
type results struct {
	workloads []string // in first-seen order
	targets   []string // in first-seen order
	runs      map[key][]run
	skipped   map[string]string // target → why
	broken    map[key]string    // why the target was not measured
	quality   map[key]decisions // WAF decisions by target and input kind
	qTargets  []string          // targets with quality records, in first-seen order
}

// decisions is one Q record: how many inputs of a kind (attack-pl1 …
// attack-pl4, benign) a WAF was sent, refused, and could not answer.
type decisions struct{ sent, refused, errors int64 }

// parse reads the records described in the package comment.
func parse(r io.Reader) (*results, error) {
	res := &results{runs: map[key][]run{}, skipped: map[string]string{}, broken: map[key]string{}, quality: map[key]decisions{}}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		if err := res.add(strings.Split(sc.Text(), "\t")); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
	}
	return res, sc.Err()
}

// add takes one record's fields.
func (res *results) add(f []string) error {
	switch {
	case f[0] == "R" && len(f) == 10:
		if !named(f[2]) || !named(f[3]) {
			return fmt.Errorf("%w: workload %q, target %q", errRecord, f[2], f[3])
		}
		var rn run
		var err error
		ints := []*int64{&rn.non2xx, &rn.requests}
		for i, s := range f[7:9] {
			if *ints[i], err = strconv.ParseInt(s, 10, 64); err != nil || *ints[i] < 0 {
				return fmt.Errorf("%w: count %q", errRecord, s)
			}
		}
		if rn.round, err = strconv.Atoi(f[1]); err != nil {
			return fmt.Errorf("%w: round %q", errRecord, f[1])
		}
		floats := []struct {
			p *float64
			s string
		}{{&rn.rps, f[4]}, {&rn.p50, f[5]}, {&rn.p99, f[6]}, {&rn.cpu, f[9]}}
		for _, x := range floats {
			if *x.p, err = strconv.ParseFloat(x.s, 64); err != nil || !(*x.p >= 0) || math.IsInf(*x.p, 1) {
				return fmt.Errorf("%w: figure %q", errRecord, x.s)
			}
		}
		k := key{f[2], f[3]}
		res.see(k)
		res.runs[k] = append(res.runs[k], rn)
	case f[0] == "Q" && len(f) == 6:
		if !named(f[1]) || !named(f[2]) {
			return fmt.Errorf("%w: target %q, kind %q", errRecord, f[1], f[2])
		}
		var d decisions
		for i, p := range []*int64{&d.sent, &d.refused, &d.errors} {
			n, err := strconv.ParseInt(f[3+i], 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("%w: count %q", errRecord, f[3+i])
			}
			*p = n
		}
		if d.refused+d.errors > d.sent {
			return fmt.Errorf("%w: %d refused and %d errors of %d sent", errRecord, d.refused, d.errors, d.sent)
		}
		k := key{workload: f[2], target: f[1]}
		if _, dup := res.quality[k]; dup {
			return fmt.Errorf("%w: a second quality record for %s %s", errRecord, f[1], f[2])
		}
		res.quality[k] = d
		if !slices.Contains(res.qTargets, f[1]) {
			res.qTargets = append(res.qTargets, f[1])
		}
	case f[0] == "SKIP" && len(f) == 3:
		res.skipped[f[1]] = f[2]
	case f[0] == "BROKEN" && len(f) == 4:
		if !named(f[1]) || !named(f[2]) {
			return fmt.Errorf("%w: workload %q, target %q", errRecord, f[1], f[2])
		}
		k := key{f[1], f[2]}
		res.see(k)
		res.broken[k] = f[3]
	default:
		return fmt.Errorf("%w: %q", errRecord, strings.Join(f, "\t"))
	}
	return nil
}

// named says whether s can name a workload or target in a Markdown table:
// run.sh writes names like "edgeguard-all"; blank names or a "|" would make
// a row that no reader can attribute.
func named(s string) bool {
	return strings.TrimSpace(s) != "" && !strings.ContainsAny(s, "|\n\r")
}

// see records the order in which workloads and targets first appear, which
// is the order run.sh was asked for.
func (res *results) see(k key) {
	if !slices.Contains(res.workloads, k.workload) {
		res.workloads = append(res.workloads, k.workload)
	}
	if !slices.Contains(res.targets, k.target) {
		res.targets = append(res.targets, k.target)
	}
}

// median of xs; NaN-free callers only. Even counts average the middle two.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// failurePercent is, for the workloads with benign requests, the share of
// failures in percent beyond which benign requests failed: 1 % slack on
// top of the mix's attacks, one request in ten.
var failurePercent = map[string]int64{"get": 1, "post": 1, "mix": 11}

// spoiled reports whether benign requests of the workload failed on the
// target beyond failurePercent: then its figures are those of refusals or
// errors (a client banned mid-run answers fast), not of the workload.
func (res *results) spoiled(k key) bool {
	limit, ok := failurePercent[k.workload]
	failed, reqs := tally(res.runs[k])
	return ok && failed*100 > reqs*limit
}
