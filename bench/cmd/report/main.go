// Command report turns the raw results bench/run.sh collects into Markdown
// tables of medians, one table per workload, each target's throughput given
// as a ratio to the bare Go proxy measured in the same run.
//
// The input has one record a line, fields separated by tabs:
//
//	R	round	workload	target	req/s	p50 µs	p99 µs	non-2xx	requests
//	SKIP	target	reason
//	BROKEN	workload	target	reason
//	Q	target	kind	sent	refused	errors
//
// Q records (bench/cmd/wafquality, run.sh -quality) give a WAF's decisions
// on CRS's attack inputs by paranoia level and on a benign corpus; they
// make a table of their own.
//
// Ratios are medians of per-round ratios: rounds are measured interleaved,
// so a round's target and baseline shared the machine's state at the time,
// and pairing them cancels drift that medians taken apart would keep.
package main

import (
	"bufio"
	"flag"
	"log"
	"os"
)

func main() {
	baseline := flag.String("baseline", "bare", "target the ratios are taken to")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: report [-baseline TARGET] RESULTS.tsv")
	}
	f, err := os.Open(flag.Arg(0))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	res, err := parse(f)
	if err != nil {
		log.Fatalf("report: reading %s: %v", flag.Arg(0), err)
	}
	w := bufio.NewWriter(os.Stdout)
	write(w, res, *baseline)
	writeQuality(w, res)
	writeGoals(w, res)
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
}
