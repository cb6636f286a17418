// Command crsattacks writes workloads/attacks.lua, the attack part of
// bench/run.sh's mix workload: one request for each paranoia-level-1 rule
// of OWASP CRS, taken from CRS's own regression tests (the first test that
// expects the rule to match and that wrk can send as it is written).
//
//	cd bench && go run ./cmd/crsattacks > workloads/attacks.lua
//
// The output is committed, so that a run measures fixed inputs; this
// program is how it was made and how to remake it for a new CRS.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/edgeguard/edgeguard/bench/internal/crs"
)

func main() {
	crsDir := flag.String("crs", "", "coraza-coreruleset module directory (default: from go list)")
	flag.Parse()
	if *crsDir == "" {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/corazawaf/coraza-coreruleset/v4").Output()
		if err != nil {
			log.Fatalf("crsattacks: locating coraza-coreruleset: %v", err)
		}
		*crsDir = strings.TrimSpace(string(out))
	}
	levels, err := crs.RuleLevels(filepath.Join(*crsDir, "rules", "@owasp_crs"))
	if err != nil {
		log.Fatal(err)
	}
	attacks, err := collect(filepath.Join(*crsDir, "tests"), levels)
	if err != nil {
		log.Fatal(err)
	}
	if err := writeLua(os.Stdout, attacks, filepath.Base(*crsDir)); err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stderr, "crsattacks: %d attacks\n", len(attacks))
}
