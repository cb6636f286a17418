package main

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzParse: any input either parses, and then every target it measured
// shows up in the table, without a panic; or it is refused with errRecord.
// Seeds: testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, in string) {
		res, err := parse(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, errRecord) && !strings.Contains(err.Error(), "token too long") {
				t.Fatalf("parse(%q): error %v is not errRecord", in, err)
			}
			return
		}
		var b strings.Builder
		write(&b, res, "bare")
		for k := range res.runs {
			// A target whose benign requests failed is marked "⚠".
			if !strings.Contains(b.String(), "| "+k.target+" |") && !strings.Contains(b.String(), "| "+k.target+" ⚠ |") {
				t.Fatalf("parse(%q): target %q measured but not in the table:\n%s", in, k.target, b.String())
			}
		}
		write(io.Discard, res, "")
		writeGoals(io.Discard, res, "")
		var q strings.Builder
		writeQuality(&q, res)
		for _, tg := range res.qTargets {
			if !strings.Contains(q.String(), "| "+tg+" |") {
				t.Fatalf("parse(%q): target %q has quality records but no row:\n%s", in, tg, q.String())
			}
		}
	})
}
