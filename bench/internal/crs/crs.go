// Package crs reads what the bench tools need from OWASP CRS as
// coraza-coreruleset ships it: the paranoia level of each rule, and the
// go-ftw regression tests.
package crs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/goccy/go-yaml"
)

// ErrCRS is the sentinel for CRS files the bench tools cannot read.
var ErrCRS = errors.New("crs: unreadable CRS")

var (
	ruleID    = regexp.MustCompile(`\bid:(\d+)`)
	ruleTier  = regexp.MustCompile(`paranoia-level/(\d)`)
	ruleStart = regexp.MustCompile(`(?m)^Sec(?:Rule|Action)\b`)
	comment   = regexp.MustCompile(`(?m)^[ \t]*#.*$`)
)

// RuleLevels maps each rule id in the .conf files of dir to the paranoia
// level its tag names. A rule starts at a SecRule or SecAction at the
// start of a line; its chained rules are indented and belong to it.
func RuleLevels(dir string) (map[int]int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("%w: no rule files in %s", ErrCRS, dir)
	}
	levels := map[int]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("reading rules: %w", err)
		}
		text := comment.ReplaceAllString(string(b), "")
		for _, rule := range ruleStart.Split(text, -1) {
			id, tier := ruleID.FindStringSubmatch(rule), ruleTier.FindStringSubmatch(rule)
			if id == nil || tier == nil {
				continue
			}
			n, _ := strconv.Atoi(id[1])
			levels[n], _ = strconv.Atoi(tier[1])
		}
	}
	return levels, nil
}

// File is the part of a go-ftw regression test file the bench tools read.
type File struct {
	RuleID int `yaml:"rule_id"`
	Tests  []struct {
		TestID int `yaml:"test_id"`
		Stages []struct {
			Input struct {
				Method         string        `yaml:"method"`
				Version        string        `yaml:"version"`
				URI            string        `yaml:"uri"`
				Headers        yaml.MapSlice `yaml:"headers"`
				Data           *string       `yaml:"data"`
				EncodedRequest string        `yaml:"encoded_request"`
				Autocomplete   *bool         `yaml:"autocomplete_headers"`
			} `yaml:"input"`
			Output struct {
				ExpectError bool `yaml:"expect_error"`
				Log         struct {
					ExpectIDs   []int `yaml:"expect_ids"`
					NoExpectIDs []int `yaml:"no_expect_ids"`
				} `yaml:"log"`
			} `yaml:"output"`
		} `yaml:"stages"`
	} `yaml:"tests"`
}

// ReadFile parses one go-ftw test file.
func ReadFile(path string) (File, error) {
	var f File
	b, err := os.ReadFile(path)
	if err != nil {
		return f, fmt.Errorf("reading tests: %w", err)
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("%w: %s: %w", ErrCRS, path, err)
	}
	return f, nil
}
