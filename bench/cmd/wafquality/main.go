// Command wafquality measures a running WAF's decisions over HTTP: it
// sends every sendable attack input of OWASP CRS's regression tests (the
// tests that expect a rule to match, grouped by the paranoia level of that
// rule) and every request of a benign corpus (go-ftw YAML files), and
// counts the refusals (status 403). bench/run.sh runs it against each WAF
// target with -quality; its output records are run.sh's Q lines:
//
//	Q <target> <kind> <sent> <refused> <errors>
//
// where kind is attack-pl1 … attack-pl4 or benign. Each request is written
// as the test spells it (method, URI, headers, body; go-ftw's defaults for
// Host, Content-Type and Content-Length) on a connection of its own, with a
// distinct X-Forwarded-For, so that a target that bans repeat offenders
// (edgeguard's reputation stage, behind the trusted loopback hop) judges
// every request on its own merits.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/edgeguard/edgeguard/bench/internal/crs"
)

// request is one input as go-ftw would send it.
type request struct {
	kind    string // attack-plN or benign
	id      string // rule-test, or file:test
	method  string
	uri     string
	version string
	headers [][2]string
	body    *string
}

func main() {
	target := flag.String("target", "", "address of the WAF under test (host:port)")
	name := flag.String("name", "", "target name for the records")
	crsDir := flag.String("crs", "", "coraza-coreruleset module directory (default: from go list)")
	benign := flag.String("benign", "", "comma-separated globs of go-ftw YAML files with benign requests")
	workers := flag.Int("workers", 4, "requests in flight")
	verbose := flag.Bool("v", false, "print each missed attack and each refused benign request on stderr")
	flag.Parse()
	if *target == "" || *name == "" {
		fmt.Fprintln(os.Stderr, "wafquality: -target and -name are required")
		os.Exit(2)
	}
	if *crsDir == "" {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/corazawaf/coraza-coreruleset/v4").Output()
		if err != nil {
			fmt.Fprintf(os.Stderr, "wafquality: locating coraza-coreruleset: %v\n", err)
			os.Exit(1)
		}
		*crsDir = strings.TrimSpace(string(out))
	}
	reqs, err := attacks(*crsDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wafquality:", err)
		os.Exit(1)
	}
	for _, g := range strings.Split(*benign, ",") {
		if g == "" {
			continue
		}
		b, err := benignRequests(g)
		if err != nil {
			fmt.Fprintln(os.Stderr, "wafquality:", err)
			os.Exit(1)
		}
		reqs = append(reqs, b...)
	}
	for _, rec := range measure(*target, *name, reqs, *workers, *verbose) {
		fmt.Println(rec)
	}
}

// attacks are the single-stage CRS regression tests that expect their own
// rule to match, from rules with a paranoia level, sent as written.
func attacks(dir string) ([]request, error) {
	levels, err := crs.RuleLevels(filepath.Join(dir, "rules", "@owasp_crs"))
	if err != nil {
		return nil, err
	}
	var out []request
	err = filepath.WalkDir(filepath.Join(dir, "tests"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		f, err := crs.ReadFile(path)
		if err != nil {
			return err
		}
		level := levels[f.RuleID]
		if level == 0 {
			return nil
		}
		for _, t := range f.Tests {
			if len(t.Stages) != 1 {
				continue
			}
			s := t.Stages[0]
			in := s.Input
			if s.Output.ExpectError || !slices.Contains(s.Output.Log.ExpectIDs, f.RuleID) ||
				in.EncodedRequest != "" || (in.Autocomplete != nil && !*in.Autocomplete) {
				continue
			}
			out = append(out, request{
				kind: fmt.Sprintf("attack-pl%d", level), id: fmt.Sprintf("%d-%d", f.RuleID, t.TestID),
				method: in.Method, uri: in.URI, version: in.Version, headers: pairs(in.Headers), body: in.Data,
			})
		}
		return nil
	})
	return out, err
}

// benignFile is a go-ftw file read for its inputs only.
type benignFile struct {
	Tests []struct {
		TestID int `yaml:"test_id"`
		Stages []struct {
			Input struct {
				Method  string        `yaml:"method"`
				URI     string        `yaml:"uri"`
				Version string        `yaml:"version"`
				Headers yaml.MapSlice `yaml:"headers"`
				Data    *string       `yaml:"data"`
			} `yaml:"input"`
		} `yaml:"stages"`
	} `yaml:"tests"`
}

func benignRequests(glob string) ([]request, error) {
	files, err := filepath.Glob(glob)
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("benign corpus %q: no files", glob)
	}
	var out []request
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		var f benignFile
		if err := yaml.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("benign corpus %s: %w", path, err)
		}
		for _, t := range f.Tests {
			for i, s := range t.Stages {
				in := s.Input
				out = append(out, request{
					kind: "benign", id: fmt.Sprintf("%s:%d/%d", filepath.Base(path), t.TestID, i),
					method: in.Method, uri: in.URI, version: in.Version, headers: pairs(in.Headers), body: in.Data,
				})
			}
		}
	}
	return out, nil
}

func pairs(m yaml.MapSlice) [][2]string {
	var out [][2]string
	for _, h := range m {
		out = append(out, [2]string{fmt.Sprint(h.Key), fmt.Sprint(h.Value)})
	}
	return out
}

// tally counts one kind's outcomes.
type tally struct{ sent, refused, errors atomic.Int64 }

// measure sends reqs from workers goroutines and returns the Q records in
// kind order.
func measure(target, name string, reqs []request, workers int, verbose bool) []string {
	tallies := map[string]*tally{}
	for _, r := range reqs {
		if tallies[r.kind] == nil {
			tallies[r.kind] = &tally{}
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(reqs) {
					return
				}
				r := reqs[i]
				t := tallies[r.kind]
				status, err := send(target, r, i)
				t.sent.Add(1)
				switch {
				case err != nil:
					t.errors.Add(1)
					if verbose {
						fmt.Fprintf(os.Stderr, "%s %s: %v\n", r.kind, r.id, err)
					}
				case status == http.StatusForbidden:
					t.refused.Add(1)
					if verbose && r.kind == "benign" {
						fmt.Fprintf(os.Stderr, "refused benign %s: %s %s\n", r.id, r.method, r.uri)
					}
				default:
					if verbose && r.kind != "benign" {
						fmt.Fprintf(os.Stderr, "missed %s %s: %d\n", r.kind, r.id, status)
					}
				}
			}
		})
	}
	wg.Wait()
	kinds := make([]string, 0, len(tallies))
	for k := range tallies {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var out []string
	for _, k := range kinds {
		t := tallies[k]
		out = append(out, fmt.Sprintf("Q\t%s\t%s\t%d\t%d\t%d", name, k, t.sent.Load(), t.refused.Load(), t.errors.Load()))
	}
	return out
}

// send writes r on a new connection and returns the response status. n
// numbers the request for its X-Forwarded-For (100.64.0.0/10 counting up).
func send(target string, r request, n int) (int, error) {
	raw, err := r.raw(target, fmt.Sprintf("100.%d.%d.%d", 64+n>>16&63, n>>8&255, n&255))
	if err != nil {
		return 0, err
	}
	c, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, fmt.Errorf("reading the answer: %w", err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// raw is the request as go-ftw sends it: the test's method (GET), URI (/),
// version (HTTP/1.1) and headers, with Host, a form Content-Type for a body
// without one, and Content-Length added when the test leaves them out, and
// Connection: close.
func (r request) raw(target, xff string) (string, error) {
	method, uri, version := r.method, r.uri, r.version
	if method == "" {
		method = "GET"
	}
	if uri == "" {
		uri = "/"
	}
	if version == "" {
		version = "HTTP/1.1"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\r\n", method, uri, version)
	has := map[string]bool{}
	for _, h := range r.headers {
		if strings.ContainsAny(h[0]+h[1], "\r\n") {
			return "", fmt.Errorf("header %q: a line break cannot be sent as written", h[0])
		}
		has[strings.ToLower(h[0])] = true
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	if strings.ContainsAny(method+uri+version, "\r\n") {
		return "", fmt.Errorf("request line %q: a line break cannot be sent as written", method+" "+uri)
	}
	if !has["host"] {
		fmt.Fprintf(&b, "Host: %s\r\n", target)
	}
	fmt.Fprintf(&b, "X-Forwarded-For: %s\r\n", xff)
	if !has["connection"] {
		b.WriteString("Connection: close\r\n")
	}
	body := ""
	if r.body != nil {
		body = *r.body
		if !has["content-type"] {
			b.WriteString("Content-Type: application/x-www-form-urlencoded\r\n")
		}
	}
	if !has["content-length"] && !has["transfer-encoding"] && (r.body != nil || method == "POST" || method == "PUT" || method == "PATCH") {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.String(), nil
}
