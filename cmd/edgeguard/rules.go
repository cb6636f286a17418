package main

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/edgeguard/edgeguard/config"
	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/waf"
	"github.com/edgeguard/edgeguard/filters/waf/packtest"
)

// cmdRules runs `edgeguard rules test [-config FILE] [DIR...]`: the packs'
// own go-ftw tests, with the WAF settings of FILE (paranoia, thresholds,
// limits, profile) when given, CRS's defaults otherwise. Without DIR it
// tests the packs FILE names.
func cmdRules(args []string, stdout, stderr io.Writer) error {
	const synopsis = "rules test [-config FILE] DIR..."
	if len(args) == 1 && isHelp(args[0]) {
		fmt.Fprintln(stdout, "Usage: edgeguard "+synopsis)
		return errHelp
	}
	if len(args) < 1 || args[0] != "test" {
		fmt.Fprintln(stderr, "usage: edgeguard "+synopsis)
		return errUsage
	}
	c := newCmdLine("rules test", synopsis, -1, stdout, stderr)
	path := c.fs.String("config", "", "config file whose waf: settings the tests run with")
	named, err := c.parse(args[1:])
	if err != nil {
		return err
	}
	cfg := waf.Config{Mode: filters.ModeBlock}
	env := filters.Env{}
	dirs := named
	if *path != "" {
		c, err := config.Load(*path)
		if err != nil {
			fmt.Fprintln(stdout, err)
			return errReported
		}
		cfg, env.Dir = c.WAF, filepath.Dir(*path)
		if len(dirs) == 0 {
			dirs = cfg.Packs
		}
		// Directories named on the command line are the user's, relative
		// to where they stand, not to the config file.
		for i, d := range named {
			if abs, err := filepath.Abs(d); err == nil {
				dirs[i] = abs
			}
		}
	}
	if len(dirs) == 0 {
		fmt.Fprintln(stderr, "edgeguard rules test: name at least one pack DIR, or a -config whose waf.packs name some")
		c.help(stderr)
		return errUsage
	}
	passed, failed, err := packtest.Run(stdout, cfg, env, dirs...)
	if err != nil {
		return fmt.Errorf("rules test: %w", err)
	}
	if failed > 0 || passed == 0 {
		if passed == 0 && failed == 0 {
			fmt.Fprintln(stderr, "edgeguard rules test: the packs have no tests")
		}
		return errReported
	}
	return nil
}
