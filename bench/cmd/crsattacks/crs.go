package main

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/edgeguard/edgeguard/bench/internal/crs"
)

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
		f, err := crs.ReadFile(path)
		if err != nil {
			return err
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
