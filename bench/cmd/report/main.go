// Command report turns the raw results bench/run.sh collects into Markdown
// tables of medians, one table per workload, each target's throughput given
// as a ratio to the bare Go proxy measured in the same run.
//
// The input has one record a line, fields separated by tabs:
//
//	R	round	workload	target	req/s	p50 µs	p99 µs	non-2xx	requests	CPU µs
//	SKIP	target	reason
//	BROKEN	workload	target	reason
//	Q	target	kind	sent	refused	errors
//
// An R record's last field is the CPU time the target used during the
// load (run.sh reads it from /proc before and after wrk); divided by the
// requests, it is what one request costs whatever the rate: the flood runs
// at a fixed rate, where req/s says nothing about the cost of a denial.
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
	crs3 := flag.String("crs3", "", "version of Debian's modsecurity-crs package, for the goals' labels")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: report [-baseline TARGET] [-crs3 VERSION] RESULTS.tsv")
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
	writeGoals(w, res, *crs3)
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
}
