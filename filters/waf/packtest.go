package waf

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/edgeguard/edgeguard/filters"
)

// TestPacks runs the tests/*.yaml of each pack in dirs (go-ftw format, as
// CRS writes its own) through the real stage over a real 127.0.0.1
// listener. Each pack is tested on its own, loaded after CRS with the
// settings of cfg (paranoia, thresholds, limits, exclusions; the profile
// its pack.yaml names when cfg sets none), in block mode whatever cfg's
// mode says, since the tests assert what the rules decide.
// It prints one line per test and a final "N passed, M failed"; err reports
// a pack that could not be loaded or a test file that could not be read.
func TestPacks(w io.Writer, cfg Config, env filters.Env, dirs ...string) (passed, failed int, err error) {
	var errs []error
	for _, dir := range dirs {
		p, perr := runPackTests(w, cfg, env, dir)
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

type packCount struct{ passed, failed int }

func runPackTests(w io.Writer, cfg Config, env filters.Env, dir string) (packCount, error) {
	var n packCount
	pack, err := LoadPack(env.Dir, dir)
	if err != nil {
		return n, err
	}
	if len(pack.Tests) == 0 {
		return n, fmt.Errorf("%w: %s: no tests/*.yaml", ErrPack, dir)
	}
	cfg.Mode = filters.ModeBlock
	if cfg.Profile == ProfileNone {
		cfg.Profile = pack.Meta.Profile
	}
	cfg.Packs = []string{pack.Dir}
	cfg.Audit = ""
	env.Previous = nil
	env.Logger = nil
	f, err := New(cfg, env)
	if err != nil {
		return n, err
	}
	defer f.Close()
	srv, err := startFTWServer(f)
	if err != nil {
		return n, err
	}
	defer srv.close()
	for _, file := range pack.Tests {
		src, err := os.ReadFile(file)
		if err != nil {
			return n, fmt.Errorf("reading pack test: %w", err)
		}
		tests, err := parseFTW(src)
		if err != nil {
			return n, fmt.Errorf("%s: %w", file, err)
		}
		rel := filepath.Join(pack.Meta.Name, filepath.Base(file))
		for _, tc := range tests.Tests {
			var why []string
			for _, st := range tc.Stages {
				why = append(why, srv.run(st).failed...)
			}
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

// ValidatePacks checks every pack cfg names: layout, pack.yaml, every test
// file's syntax, and that the rules compile after CRS (FILE:LINE: message
// on a syntax error). It builds the WAF once and releases it.
func ValidatePacks(cfg Config, env filters.Env) error {
	var errs []error
	for _, dir := range cfg.Packs {
		p, err := LoadPack(env.Dir, dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, file := range p.Tests {
			src, err := os.ReadFile(file)
			if err == nil {
				_, err = parseFTW(src)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", file, err))
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	env.Previous = nil
	cfg.Audit = ""
	f, err := New(cfg, env)
	if err != nil {
		return err
	}
	return f.Close()
}
