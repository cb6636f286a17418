package rx

import (
	"fmt"
	"strings"
	"testing"

	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
)

// benignValues are what CRS's rules read from a benign browser GET and a
// JSON order: header values, path, arguments, JSON leaves, raw and
// lower-cased (t:lowercase is CRS's most common transformation).
func benignValues() []string {
	vs := []string{
		"/catalog/shoes", "/catalog/shoes?page=2&sort=price&color=blue", "page", "2", "sort", "price", "color", "blue",
		"shop.example.com", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
		"en-US,en;q=0.9", "gzip, deflate, br", "keep-alive", "https://shop.example.com/catalog",
		"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
		"session=s%3A412302353019.aZ9xQ; theme=dark", "s:412302353019.aZ9xQ", "dark",
		"c-1842", "Ada Lovelace", "ada@example.com", "leave at the door", "false", "19.99", "3",
	}
	for i := range 20 {
		vs = append(vs, fmt.Sprintf("SKU-%05d", i), fmt.Sprintf("json.items.%d.sku", i))
	}
	n := len(vs)
	for _, v := range vs[:n] {
		vs = append(vs, strings.ToLower(v))
	}
	return vs
}

// BenchmarkPrefilter evaluates every CRS pattern over benign values (the
// common case: nothing matches), match-only, with RE2 and the prefilter as
// shipped, with RE2 alone, and with Go's regexp alone (Coraza's own). Run
// the three interleaved:
//
//	go test -c -o /tmp/rx.test ./filters/waf/rx
//	for i in 1 2 3 4 5; do taskset -c 1 /tmp/rx.test -test.run '^$' -test.bench '^BenchmarkPrefilter$' -test.benchmem; done
func BenchmarkPrefilter(b *testing.B) {
	var shipped, re2Only, goOnly []*Matcher
	for _, p := range allCRSPatterns(b) {
		op, err := New(plugintypes.OperatorOptions{Arguments: p})
		if err != nil {
			b.Fatal(err)
		}
		m, ok := op.(*Matcher)
		if !ok {
			continue // byte patterns: binaryregexp either way
		}
		shipped = append(shipped, m)
		noPre := *m
		noPre.pre = nil
		re2Only = append(re2Only, &noPre)
		std := noPre
		std.fast = nil
		goOnly = append(goOnly, &std)
	}
	values := benignValues()
	tx := &captureTx{}
	for _, v := range []struct {
		name string
		ms   []*Matcher
	}{{"re2+prefilter", shipped}, {"re2", re2Only}, {"goregexp", goOnly}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, m := range v.ms {
					for _, s := range values {
						m.Evaluate(tx, s)
					}
				}
			}
		})
	}
}
