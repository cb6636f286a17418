// Package packtest runs the regression tests that rule packs carry
// (tests/**/*.yaml in go-ftw's format, read by internal/ftw) through the
// real WAF stage, served over a real 127.0.0.1 listener: what
// `edgeguard rules test` prints. It is a client of the stage, not a part
// of it: the stage only reports which rules each transaction matched
// (waf.Filter.ReportMatches).
package packtest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/waf"
	"github.com/edgeguard/edgeguard/internal/ftw"
)

// Run runs the tests of each pack in dirs. Each pack is tested on its own,
// loaded with CRS (a plugin's files at their plugin points) and the
// settings of cfg (paranoia, thresholds, limits, exclusions; the profile
// its pack.yaml names when cfg sets none), in block mode whatever cfg's
// mode says, since the tests assert what the rules decide. It prints one
// line per test and a final "N passed, M failed"; err reports a pack that
// could not be loaded or a test file that could not be read or decoded
// (FILE:LINE).
func Run(w io.Writer, cfg waf.Config, env filters.Env, dirs ...string) (passed, failed int, err error) {
	var errs []error
	for _, dir := range dirs {
		p, perr := runPack(w, cfg, env, dir)
		passed += p.passed
		failed += p.failed
		if perr != nil {
			errs = append(errs, perr)
			fmt.Fprintf(w, "ERROR %s: %v\n", dir, perr)
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", passed, failed)
	return passed, failed, errors.Join(errs...)
}

type packCount struct{ passed, failed, skipped int }

func runPack(w io.Writer, cfg waf.Config, env filters.Env, dir string) (packCount, error) {
	var n packCount
	pack, err := waf.LoadPack(env.Dir, dir)
	if err != nil {
		return n, err
	}
	if len(pack.Tests) == 0 {
		return n, fmt.Errorf("%w: %s: no tests/**/*.yaml", waf.ErrPack, dir)
	}
	cfg.Mode = filters.ModeBlock
	if cfg.Profile == waf.ProfileNone {
		cfg.Profile = pack.Meta.Profile
	}
	cfg.Packs = []string{pack.Dir}
	cfg.Audit = ""
	env.Previous = nil
	env.Logger = nil
	f, err := waf.New(cfg, env)
	if err != nil {
		return n, err
	}
	defer f.Close()
	srv := ftw.NewServer(f, nil)
	f.ReportMatches(srv.Finished)
	if err := srv.Start(); err != nil {
		return n, err
	}
	defer srv.Close()
	for _, file := range pack.Tests {
		src, err := os.ReadFile(file)
		if err != nil {
			return n, fmt.Errorf("reading pack test: %w", err)
		}
		tests, err := ftw.DecodePackTest(file, src)
		if err != nil {
			return n, err
		}
		rel, err := filepath.Rel(filepath.Join(pack.Dir, "tests"), file)
		if err != nil {
			rel = filepath.Base(file)
		}
		rel = filepath.Join(pack.Meta.Name, rel)
		if tests.Meta.Disabled() {
			n.skipped += len(tests.Tests)
			fmt.Fprintf(w, "SKIP %s: meta.enabled is false\n", rel)
			continue
		}
		for _, tc := range tests.Tests {
			why := tc.Run(srv.Send, waf.ReportingRule)
			name := fmt.Sprintf("%s %d-%d", rel, tests.RuleID, tc.TestID)
			if tc.Desc != "" {
				name += " (" + strings.TrimSpace(firstLine(tc.Desc)) + ")"
			}
			if len(why) > 0 {
				n.failed++
				fmt.Fprintf(w, "FAIL %s: %s\n", name, strings.Join(why, "; "))
				continue
			}
			n.passed++
			fmt.Fprintf(w, "PASS %s\n", name)
		}
	}
	return n, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// Validate checks every pack cfg names: layout, pack.yaml, every test
// file's syntax, and that the rules compile after CRS (FILE:LINE: message
// on a syntax error). It builds the WAF once and releases it.
func Validate(cfg waf.Config, env filters.Env) error {
	var errs []error
	for _, dir := range cfg.Packs {
		p, err := waf.LoadPack(env.Dir, dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, file := range p.Tests {
			src, err := os.ReadFile(file)
			if err == nil {
				_, err = ftw.DecodePackTest(file, src)
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	env.Previous = nil
	cfg.Audit = ""
	f, err := waf.New(cfg, env)
	if err != nil {
		return err
	}
	return f.Close()
}
