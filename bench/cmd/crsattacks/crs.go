package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
)

// errCRS is the sentinel for CRS files this program cannot read.
var errCRS = errors.New("crsattacks: unreadable CRS")

var (
	ruleID    = regexp.MustCompile(`\bid:(\d+)`)
	ruleTier  = regexp.MustCompile(`paranoia-level/(\d)`)
	ruleStart = regexp.MustCompile(`(?m)^Sec(?:Rule|Action)\b`)
	comment   = regexp.MustCompile(`(?m)^[ \t]*#.*$`)
)

// ruleLevels maps each rule id in the .conf files of dir to the paranoia
// level its tag names. A rule starts at a SecRule or SecAction at the
// start of a line; its chained rules are indented and belong to it.
func ruleLevels(dir string) (map[int]int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("%w: no rule files in %s", errCRS, dir)
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

// ftwFile is the part of a go-ftw regression test file that matters here.
type ftwFile struct {
	RuleID int `yaml:"rule_id"`
	Tests  []struct {
		TestID int `yaml:"test_id"`
		Stages []struct {
			Input struct {
				Method         string        `yaml:"method"`
				URI            string        `yaml:"uri"`
				Headers        yaml.MapSlice `yaml:"headers"`
				Data           *string       `yaml:"data"`
				EncodedRequest string        `yaml:"encoded_request"`
				Autocomplete   *bool         `yaml:"autocomplete_headers"`
			} `yaml:"input"`
			Output struct {
				ExpectError bool `yaml:"expect_error"`
				Log         struct {
					ExpectIDs []int `yaml:"expect_ids"`
				} `yaml:"log"`
			} `yaml:"output"`
		} `yaml:"stages"`
	} `yaml:"tests"`
}

// attack is one request of the mix's attack part.
type attack struct {
	rule, test int
	method     string
	uri        string
	headers    [][2]string
	body       *string
}

// collect walks the regression tests under dir and keeps, for each
// paranoia-level-1 rule, the first single-stage test that expects the rule
// to match and that is an ordinary GET or POST.
func collect(dir string, levels map[int]int) ([]attack, error) {
	var out []attack
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("reading tests: %w", err)
		}
		var f ftwFile
		if err := yaml.Unmarshal(b, &f); err != nil {
			return fmt.Errorf("%w: %s: %w", errCRS, path, err)
		}
		if levels[f.RuleID] != 1 {
			return nil
		}
		for _, t := range f.Tests {
			if len(t.Stages) != 1 {
				continue
			}
			s := t.Stages[0]
			if s.Output.ExpectError || !slices.Contains(s.Output.Log.ExpectIDs, f.RuleID) {
				continue
			}
			if s.Input.Autocomplete != nil && !*s.Input.Autocomplete {
				continue // it tests a request without the headers wrk always sends
			}
			if a, ok := sendable(f.RuleID, t.TestID, s.Input.Method, s.Input.URI, s.Input.Headers, s.Input.Data, s.Input.EncodedRequest); ok {
				out = append(out, a)
				break
			}
		}
		return nil
	})
	slices.SortFunc(out, func(a, b attack) int { return a.rule - b.rule })
	return out, err
}

// sendable builds the attack when wrk can send it as written: GET or POST,
// an origin-form URI and header values of printable ASCII, a body on one
// line, no raw or encoded request, no framing headers (wrk sets
// Content-Length and keeps connections open); Host is left to wrk; a POST body gets the form type go-ftw would add.
func sendable(rule, test int, method, uri string, hs yaml.MapSlice, data *string, encoded string) (attack, bool) {
	if method == "" {
		method = "GET"
	}
	if (method != "GET" && method != "POST") || encoded != "" || !strings.HasPrefix(uri, "/") || !printable(uri, false) {
		return attack{}, false
	}
	if data != nil && (method != "POST" || !printable(*data, true)) {
		return attack{}, false
	}
	a := attack{rule: rule, test: test, method: method, uri: uri, body: data}
	hasType := false
	for _, h := range hs {
		name, value := fmt.Sprint(h.Key), fmt.Sprint(h.Value)
		switch strings.ToLower(name) {
		case "host":
			continue // wrk sends its own
		case "content-length", "connection", "transfer-encoding":
			return attack{}, false // framing that wrk decides
		case "content-type":
			hasType = true
		}
		if !printable(name, false) || !printable(value, true) {
			return attack{}, false
		}
		a.headers = append(a.headers, [2]string{name, value})
	}
	if data != nil && !hasType {
		a.headers = append(a.headers, [2]string{"Content-Type", "application/x-www-form-urlencoded"})
	}
	return a, true
}

// printable reports whether s is visible ASCII (and spaces, if allowed).
func printable(s string, spaces bool) bool {
	for i := range len(s) {
		c := s[i]
		if c > '~' || c < '!' && !(spaces && c == ' ') {
			return false
		}
	}
	return true
}
