package main

import (
	"fmt"
	"io"
	"os"

	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters/waf"
)

// cmdTune runs `edgeguard tune -audit FILE -out DIR [-config FILE]`: it
// reads the WAF audit events of a shadow run (waf.mode: shadow,
// waf.audit: FILE, waf.audit_requests: true for tests) or of real blocks,
// and writes a proposed exclusion pack to DIR for the operator to review,
// test (`edgeguard rules test -config FILE DIR`) and commit.
func cmdTune(args []string, stdout, stderr io.Writer) error {
	c := newCmdLine("tune", "tune -audit FILE -out DIR [-config FILE] [-name NAME] [-samples N]", 0, stdout, stderr)
	audit := c.fs.String("audit", "", "WAF audit events (JSON lines, waf.audit)")
	out := c.fs.String("out", "", "directory to write the proposed pack to (must not exist)")
	path := c.fs.String("config", "", "config file whose routes group the events")
	name := c.fs.String("name", "tuned", "the pack's name")
	samples := c.fs.Int("samples", 3, "sampled requests per rule and variable turned into tests")
	if _, err := c.parse(args); err != nil {
		return err
	}
	if *audit == "" || *out == "" {
		fmt.Fprintln(stderr, "edgeguard tune: -audit FILE and -out DIR are required")
		c.help(stderr)
		return errUsage
	}
	opt := waf.TuneOptions{Name: *name, Samples: *samples}
	if *path != "" {
		c, err := config.Load(*path)
		if err != nil {
			fmt.Fprintln(stdout, err)
			return errReported
		}
		for _, r := range c.Forward.Routes {
			if r.Path != "" {
				opt.Routes = append(opt.Routes, r.Path)
			}
		}
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("tune: %s exists: the proposed pack goes to a new directory", *out)
	}
	f, err := os.Open(*audit)
	if err != nil {
		return fmt.Errorf("tune: %w", err)
	}
	defer f.Close()
	sum, err := waf.Tune(f, opt)
	if err != nil {
		return fmt.Errorf("tune: %s: %w", *audit, err)
	}
	if err := sum.WritePack(*out, opt); err != nil {
		return fmt.Errorf("tune: %w", err)
	}
	fmt.Fprint(stdout, sum.Text())
	fmt.Fprintf(stdout, "\nproposed pack written to %s; review it, then: edgeguard rules test %s\n", *out, *out)
	return nil
}
