package waf

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	crstests "github.com/corazawaf/coraza-coreruleset/v4/tests"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/goccy/go-yaml"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/ftw"
)

// The differential test runs the same requests through the stage as
// production builds it (with every operator and transformation edgeguard
// registers) and through stock Coraza with the same directives, and
// requires the same verdict and the same matched rules for each.
//
// Coraza's operator registry is global to the process and is read when
// rules are parsed, so the two sides cannot share a process once the
// first rule set is built. The stock side is this very test binary,
// re-executed by startChild: it runs only TestDifferentialStockChild,
// which keeps Coraza's own operators and transformations
// (engineOptions.stock) for everything it builds and checks that nothing
// was registered. Requests go to the child and outcomes come back as JSON
// files; both sides run at the same time. TestQualityReport runs plain
// Coraza the same way.

const (
	childInEnv  = "EDGEGUARD_WAF_CHILD_IN"  // the child's input file; its presence makes a child
	childOutEnv = "EDGEGUARD_WAF_CHILD_OUT" // where the child writes its output
)

// startChild re-executes this test binary to run only the test named
// test, with in as its input (childInput), and returns at once; wait
// waits for the child and decodes its output (childOutput) into out.
func startChild(t *testing.T, test string, in any) (wait func(out any)) {
	t.Helper()
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(inPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	child := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	child.Env = append(os.Environ(), childInEnv+"="+inPath, childOutEnv+"="+outPath)
	var childOut strings.Builder
	child.Stdout, child.Stderr = &childOut, &childOut
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	return func(out any) {
		t.Helper()
		if err := child.Wait(); err != nil {
			t.Fatalf("child %s: %v\n%s", test, err, childOut.String())
		}
		src, err := os.ReadFile(outPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(src, out); err != nil {
			t.Fatalf("child %s's output: %v", test, err)
		}
	}
}

// inChild reports whether this process is a child startChild made.
func inChild() bool { return os.Getenv(childInEnv) != "" }

// childInput decodes the parent's input into in; outside a child it skips
// the test, with why.
func childInput(t *testing.T, why string, in any) {
	t.Helper()
	if !inChild() {
		t.Skip(why)
	}
	src, err := os.ReadFile(os.Getenv(childInEnv))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(src, in); err != nil {
		t.Fatal(err)
	}
}

// childOutput writes out for the parent's wait.
func childOutput(t *testing.T, out any) {
	t.Helper()
	b, err := json.Marshal(out)
	if err == nil {
		err = os.WriteFile(os.Getenv(childOutEnv), b, 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// walkCRSFiles calls fn with every test file of CRS's regression suite
// (embedded in coraza-coreruleset), decoded, in path order.
func walkCRSFiles(fn func(path string, file ftwFile) error) error {
	return fs.WalkDir(crstests.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return err
		}
		src, err := fs.ReadFile(crstests.FS, p)
		if err != nil {
			return err
		}
		file, err := parseFTW(src)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		return fn(p, file)
	})
}

type diffRequest struct {
	Name string `json:"name"`
	Raw  []byte `json:"raw"`
}

// diffOutcome is what a request got from one configuration.
type diffOutcome struct {
	Status  int    `json:"status"` // 0: no response
	Handled bool   `json:"handled"`
	Deny    bool   `json:"deny"`
	Shadow  bool   `json:"shadow"`
	Reason  string `json:"reason"`
	Matched []int  `json:"matched"` // every matched rule, logged or not, in match order
}

// diffConfig is one configuration both sides build.
type diffConfig struct {
	name string
	cfg  Config
	opt  engineOptions
}

var shippedPacks = []string{"../../rules/api-hardening", "../../rules/crs-tuning-example"}

// diffConfigs: CRS's own test setup (paranoia 4, every rule evaluated,
// response inspection), and the production default (paranoia 1,
// blocking), both with the shipped packs.
func diffConfigs() []diffConfig {
	pl4 := crsTestConfig()
	pl4.Packs = shippedPacks
	return []diffConfig{
		{"pl4-detect", pl4, engineOptions{extra: crsTestSetup}},
		{"pl1-block", Config{Packs: shippedPacks}, engineOptions{}},
	}
}

// runDiff sends every request through each configuration, in order; stock
// keeps Coraza's own transformations too.
func runDiff(reqs []diffRequest, stock bool) (map[string][]diffOutcome, error) {
	out := map[string][]diffOutcome{}
	for _, c := range diffConfigs() {
		c.opt.stock = stock
		f, err := newFilter(c.cfg, filters.Env{Dir: "."}, c.opt)
		if err != nil {
			return nil, fmt.Errorf("building %s: %w", c.name, err)
		}
		srv, err := startDiffServer(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		for _, r := range reqs {
			out[c.name] = append(out[c.name], srv.run(r.Raw))
		}
		srv.close()
		f.Close()
	}
	return out, nil
}

// diffServer serves the stage on 127.0.0.1 in front of ftw.Echo, and
// records each transaction's verdict and every rule it matched, logged or
// not (ftw.Server reports the logged ones only).
type diffServer struct {
	f       *Filter
	srv     *http.Server
	addr    string
	started atomic.Uint64
	seq     atomic.Uint64
	mu      sync.Mutex
	verdict map[string]filters.Verdict
	results chan diffOutcome
}

func startDiffServer(f *Filter) (*diffServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the differential test: %w", err)
	}
	s := &diffServer{f: f, addr: ln.Addr().String(), verdict: map[string]filters.Verdict{}, results: make(chan diffOutcome, 1)}
	f.onFinish = func(r *filters.Request, matched []types.MatchedRule) {
		o := diffOutcome{Handled: true}
		for _, mr := range matched {
			o.Matched = append(o.Matched, mr.Rule().ID())
		}
		s.mu.Lock()
		v := s.verdict[r.ID]
		delete(s.verdict, r.ID)
		s.mu.Unlock()
		o.Deny, o.Shadow, o.Reason = v.Deny, v.Shadow, v.Reason
		select {
		case s.results <- o:
		default:
		}
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *diffServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	s.started.Add(1)
	r := ftw.StageRequest(req, "diff-"+strconv.FormatUint(s.seq.Add(1), 10))
	defer r.Finish()
	v := s.f.Check(r)
	s.mu.Lock()
	s.verdict[r.ID] = v
	s.mu.Unlock()
	if v.Deny && !v.Shadow {
		if v.Drop {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		w.WriteHeader(v.StatusCode())
		return
	}
	ftw.Echo(r.ResponseWriter(w), req)
}

func (s *diffServer) close() { _ = s.srv.Close() }

func (s *diffServer) run(raw []byte) diffOutcome {
	for len(s.results) > 0 {
		<-s.results
	}
	before := s.started.Load()
	status := ftw.Exchange(s.addr, raw, ftw.IOTimeout).Status
	var o diffOutcome
	if s.started.Load() > before {
		select {
		case o = <-s.results:
		case <-time.After(10 * time.Second):
			o.Reason = "transaction never finished"
		}
	}
	o.Status = status
	return o
}

// TestDifferentialStockChild is the stock side of TestDifferential; run on
// its own it skips.
func TestDifferentialStockChild(t *testing.T) {
	var reqs []diffRequest
	childInput(t, "the stock side of TestDifferential: runs only as its child", &reqs)
	out, err := runDiff(reqs, true)
	if err != nil {
		t.Fatal(err)
	}
	if pluginsRegistered.Load() {
		t.Fatal("the stock side registered edgeguard's operators or transformations")
	}
	childOutput(t, out)
}

// TestDifferential: CRS's regression inputs, the shipped packs' tests, a
// benign corpus and generated attacks, through the stage and through
// stock Coraza, under two configurations; every verdict and every list of
// matched rules must agree. Not in -short or -race (about a minute).
func TestDifferential(t *testing.T) {
	if testing.Short() || raceDetector {
		t.Skip("differential test: not in -short or -race")
	}
	if inChild() {
		t.Skip("in a child")
	}
	reqs := diffRequests(t)
	wait := startChild(t, "TestDifferentialStockChild", reqs)
	fast, err := runDiff(reqs, false)
	if err != nil {
		t.Fatal(err)
	}
	if !pluginsRegistered.Load() {
		t.Fatal("the optimised side runs without edgeguard's operators or transformations")
	}
	if chainRxBuilt.Load() == 0 {
		t.Fatal("the optimised side fused no CRS rule (@rxchain)")
	}
	var stock map[string][]diffOutcome
	wait(&stock)
	compareDiff(t, reqs, fast, stock)
}

func compareDiff(t *testing.T, reqs []diffRequest, fast, stock map[string][]diffOutcome) {
	t.Helper()
	for _, c := range diffConfigs() {
		f, s := fast[c.name], stock[c.name]
		if len(f) != len(reqs) || len(s) != len(reqs) {
			t.Fatalf("%s: %d and %d outcomes for %d requests", c.name, len(f), len(s), len(reqs))
		}
		var differ, denied, matched int
		for i, r := range reqs {
			if f[i].Deny {
				denied++ // or would be, in shadow mode
			}
			if len(f[i].Matched) > 0 {
				matched++
			}
			if !slices.Equal(f[i].Matched, s[i].Matched) || f[i].Status != s[i].Status || f[i].Deny != s[i].Deny ||
				f[i].Shadow != s[i].Shadow || f[i].Reason != s[i].Reason || f[i].Handled != s[i].Handled {
				differ++
				if differ <= 20 {
					t.Errorf("%s, %s: optimised %+v, stock %+v", c.name, r.Name, f[i], s[i])
				}
			}
		}
		t.Logf("%s: %d requests (%d denied or shadow-denied, %d with matched rules), %d differ", c.name, len(reqs), denied, matched, differ)
	}
}

// diffRequests gathers the four sets of the test.
func diffRequests(t *testing.T) []diffRequest {
	t.Helper()
	var reqs []diffRequest
	add := func(name string, in ftwInput) {
		raw, err := in.Request()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		reqs = append(reqs, diffRequest{name, raw})
	}
	addFile := func(label string, file ftwFile) {
		for _, tc := range file.Tests {
			for i, st := range tc.Stages {
				add(fmt.Sprintf("%s %d-%d/%d", label, file.RuleID, tc.TestID, i), st.Input)
			}
		}
	}
	var attacks []string
	err := walkCRSFiles(func(p string, file ftwFile) error {
		addFile("crs "+filepath.Base(p), file)
		attacks = append(attacks, attackPayloads(file)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	packTests, _ := filepath.Glob("../../rules/*/tests/*.yaml")
	benign, _ := filepath.Glob("testdata/benign/*.yaml")
	if len(packTests) == 0 || len(benign) == 0 {
		t.Fatalf("found %d pack test files and %d benign files", len(packTests), len(benign))
	}
	for _, p := range append(packTests, benign...) {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		file, err := parseFTW(src)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		addFile(p, file)
	}
	slices.Sort(attacks)
	attacks = slices.Compact(attacks)
	rng := rand.New(rand.NewPCG(12, 2026))
	for i := range 800 {
		add(fmt.Sprintf("generated %d", i), placeAttack(rng, attacks[rng.IntN(len(attacks))]))
	}
	return reqs
}

// attackPayloads are the argument values of a CRS test file's tests that
// expect a rule to match.
func attackPayloads(file ftwFile) []string {
	var out []string
	for _, tc := range file.Tests {
		for _, st := range tc.Stages {
			if len(st.Output.Log.ExpectIDs) == 0 {
				continue
			}
			in := st.Input
			var raw []string
			if in.URI != nil {
				if _, q, ok := strings.Cut(*in.URI, "?"); ok {
					raw = append(raw, q)
				}
			}
			if in.Data != nil {
				raw = append(raw, *in.Data)
			}
			for _, r := range raw {
				q, err := url.ParseQuery(r)
				if err != nil {
					continue
				}
				for _, vs := range q {
					for _, v := range vs {
						if len(v) >= 4 && len(v) < 2000 {
							out = append(out, v)
						}
					}
				}
			}
		}
	}
	return out
}

// placeAttack puts payload into a benign request: a JSON body leaf, a
// header, a cookie or a query value.
func placeAttack(rng *rand.Rand, payload string) ftwInput {
	method, uri := "GET", "/catalog/shoes?page=2&sort=price"
	headers := yaml.MapSlice{
		{Key: "Host", Value: "shop.example.com"},
		{Key: "User-Agent", Value: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"},
		{Key: "Accept", Value: "text/html,application/xhtml+xml,*/*;q=0.8"},
		{Key: "Accept-Language", Value: "en-US,en;q=0.9"},
	}
	var data *string
	oneLine := strings.NewReplacer("\r", " ", "\n", " ").Replace(payload)
	switch rng.IntN(4) {
	case 0:
		method, uri = "POST", "/api/orders"
		body := randomJSON(rng, payload, 3)
		data = &body
		headers = append(headers, yaml.MapItem{Key: "Content-Type", Value: "application/json"})
	case 1:
		// Never a second header of a name already sent: the stage's
		// outcome for repeated headers varies from run to run by itself.
		switch name := []string{"Referer", "X-Client-Note", "User-Agent", "X-Forwarded-Host"}[rng.IntN(4)]; name {
		case "User-Agent":
			headers[1].Value = oneLine
		default:
			headers = append(headers, yaml.MapItem{Key: name, Value: oneLine})
		}
	case 2:
		headers = append(headers, yaml.MapItem{Key: "Cookie", Value: "theme=dark; pref=" + strings.ReplaceAll(oneLine, ";", "%3B") + "; consent=no"})
	default:
		uri = fmt.Sprintf("/search?page=%d&q=%s&lang=en", rng.IntN(9)+1, url.QueryEscape(payload))
	}
	return ftwInput{Method: &method, URI: &uri, Headers: headers, Data: data}
}

// randomJSON is an object of benign leaves, nested up to depth, with
// payload at one random leaf.
func randomJSON(rng *rand.Rand, payload string, depth int) string {
	var leaves []any
	var build func(d int) any
	build = func(d int) any {
		n := rng.IntN(4) + 1
		obj := map[string]any{}
		for i := range n {
			key := fmt.Sprintf("f%d", i)
			switch {
			case d > 0 && rng.IntN(3) == 0:
				obj[key] = build(d - 1)
			case rng.IntN(4) == 0:
				obj[key] = []any{rng.IntN(100), "blue", true}
			default:
				obj[key] = "benign value " + strconv.Itoa(rng.IntN(1000))
				leaves = append(leaves, obj)
			}
		}
		return obj
	}
	root := build(depth).(map[string]any)
	target := root
	if len(leaves) > 0 {
		target = leaves[rng.IntN(len(leaves))].(map[string]any)
	}
	target["payload"] = payload
	b, _ := json.Marshal(root)
	return string(b)
}
