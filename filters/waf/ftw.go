package waf

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/corazawaf/coraza/v3/types"
	"github.com/goccy/go-yaml"

	"github.com/edgeguard/edgeguard/filters"
)

// This file runs regression tests in the go-ftw YAML format CRS uses
// (https://github.com/coreruleset/go-ftw): each test is written as a raw
// HTTP request to a real 127.0.0.1 listener that serves the stage the way
// edgeguard does, and the rules the transaction matched are checked against
// the test's expectations.

// ftwFile is one YAML test file.
type ftwFile struct {
	RuleID int       `yaml:"rule_id"`
	Tests  []ftwTest `yaml:"tests"`
}

type ftwTest struct {
	TestID int        `yaml:"test_id"`
	Desc   string     `yaml:"desc"`
	Stages []ftwStage `yaml:"stages"`
}

type ftwStage struct {
	Input  ftwInput  `yaml:"input"`
	Output ftwOutput `yaml:"output"`
}

type ftwInput struct {
	Method              *string       `yaml:"method"`
	URI                 *string       `yaml:"uri"`
	Version             *string       `yaml:"version"`
	Headers             yaml.MapSlice `yaml:"headers"`
	Data                *string       `yaml:"data"`
	EncodedRequest      string        `yaml:"encoded_request"`
	AutocompleteHeaders *bool         `yaml:"autocomplete_headers"`
}

type ftwOutput struct {
	Status       ftwStatus `yaml:"status"`
	ExpectError  bool      `yaml:"expect_error"`
	Log          ftwLog    `yaml:"log"`
	MatchRegex   string    `yaml:"match_regex"`
	NoMatchRegex string    `yaml:"no_match_regex"`
}

type ftwLog struct {
	ExpectIDs    []int  `yaml:"expect_ids"`
	NoExpectIDs  []int  `yaml:"no_expect_ids"`
	MatchRegex   string `yaml:"match_regex"`
	NoMatchRegex string `yaml:"no_match_regex"`
}

// ftwStatus is a status or a list of acceptable ones (older files).
type ftwStatus []int

func (s *ftwStatus) UnmarshalYAML(b []byte) error {
	var one int
	if err := yaml.Unmarshal(b, &one); err == nil {
		*s = ftwStatus{one}
		return nil
	}
	var many []int
	if err := yaml.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("status: want a number or a list of numbers: %w", err)
	}
	*s = many
	return nil
}

// parseFTW decodes one test file.
func parseFTW(src []byte) (ftwFile, error) {
	var f ftwFile
	if err := yaml.Unmarshal(src, &f); err != nil {
		return ftwFile{}, errors.New(yaml.FormatError(err, false, false))
	}
	for i, t := range f.Tests {
		if len(t.Stages) == 0 {
			return ftwFile{}, fmt.Errorf("tests[%d] (test_id %d): no stages", i, t.TestID)
		}
	}
	return f, nil
}

// rawRequest builds the bytes go-ftw would send for in.
func (in ftwInput) rawRequest() ([]byte, error) {
	if in.EncodedRequest != "" {
		raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(in.EncodedRequest), ""))
		if err != nil {
			return nil, fmt.Errorf("encoded_request: %w", err)
		}
		return raw, nil
	}
	method, uri, version := "GET", "/", "HTTP/1.1"
	if in.Method != nil {
		method = *in.Method
	}
	if in.URI != nil {
		uri = *in.URI
	}
	if in.Version != nil {
		version = *in.Version
	}
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte(' ')
	b.WriteString(uri)
	if version != "" {
		b.WriteByte(' ')
		b.WriteString(version)
	}
	b.WriteString("\r\n")
	seen := map[string]bool{}
	for _, kv := range in.Headers {
		name := fmt.Sprint(kv.Key)
		value := ""
		if kv.Value != nil {
			value = fmt.Sprint(kv.Value)
		}
		seen[strings.ToLower(name)] = true
		fmt.Fprintf(&b, "%s: %s\r\n", name, value)
	}
	data := ""
	if in.Data != nil {
		data = *in.Data
	}
	if in.AutocompleteHeaders == nil || *in.AutocompleteHeaders {
		if !seen["connection"] {
			b.WriteString("Connection: close\r\n")
		}
		if data != "" && !seen["content-length"] && !seen["transfer-encoding"] {
			fmt.Fprintf(&b, "Content-Length: %d\r\n", len(data))
		}
	}
	b.WriteString("\r\n")
	b.WriteString(data)
	return []byte(b.String()), nil
}

// ftwRecord is what one transaction matched.
type ftwRecord struct {
	ids  []int
	logs []string
}

// ftwServer is a 127.0.0.1 listener serving the stage in front of a small
// echo upstream, as the root package would: Check, deny or forward through
// the response wrappers, Finish.
type ftwServer struct {
	f        *Filter
	upstream http.Handler
	srv      *http.Server
	ln       net.Listener
	addr     string
	started  atomic.Uint64
	results  chan ftwRecord
	seq      atomic.Uint64
}

func startFTWServer(f *Filter) (*ftwServer, error) {
	return startStageServer(f, http.HandlerFunc(echoUpstream))
}

// startStageServer serves f in front of upstream on a 127.0.0.1 listener.
func startStageServer(f *Filter, upstream http.Handler) (*ftwServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for rule tests: %w", err)
	}
	s := &ftwServer{f: f, upstream: upstream, ln: ln, addr: ln.Addr().String(), results: make(chan ftwRecord, 64)}
	f.onFinish = func(_ *filters.Request, matched []types.MatchedRule) {
		var rec ftwRecord
		for _, mr := range matched {
			if ruleLogged(mr) {
				rec.ids = append(rec.ids, mr.Rule().ID())
				rec.logs = append(rec.logs, mr.ErrorLog())
			}
		}
		select {
		case s.results <- rec:
		default:
			// Nobody is waiting (a request the runner did not send, such as
			// the second of a pipelined pair): drop it rather than block.
		}
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *ftwServer) close() {
	_ = s.srv.Close()
}

func (s *ftwServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	s.started.Add(1)
	peer, _ := netip.ParseAddrPort(req.RemoteAddr)
	r := &filters.Request{
		HTTP: req, Peer: peer, Client: peer.Addr().Unmap(), ClientPort: peer.Port(),
		Key: filters.KeyOf(peer.Addr(), 64), Now: time.Now(), ID: "ftw-" + strconv.FormatUint(s.seq.Add(1), 10),
	}
	defer r.Finish()
	v := s.f.Check(r)
	if v.Deny && !v.Shadow {
		if v.Drop {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		for k, vs := range v.Headers {
			w.Header()[k] = vs
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(v.StatusCode())
		fmt.Fprintf(w, "blocked by edgeguard (%s), request id %s\n", Name, r.ID)
		return
	}
	s.upstream.ServeHTTP(r.ResponseWriter(w), req)
}

// echoUpstream stands in for the upstream the way CRS's test backend
// (albedo) does: POST /reflect answers with the status, headers and body the
// request describes, so response rules have something to inspect; anything
// else is answered 200 with the request body echoed.
func echoUpstream(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	w.Header().Set("Content-Type", "text/plain")
	if req.URL.Path == "/reflect" && len(body) > 0 {
		var spec struct {
			Status      int               `json:"status"`
			Headers     map[string]string `json:"headers"`
			Body        string            `json:"body"`
			EncodedBody string            `json:"encodedBody"`
		}
		if err := json.Unmarshal(body, &spec); err == nil {
			for k, v := range spec.Headers {
				w.Header().Set(k, v)
			}
			out := []byte(spec.Body)
			if spec.EncodedBody != "" {
				if dec, err := base64.StdEncoding.DecodeString(spec.EncodedBody); err == nil {
					out = dec
				}
			}
			if spec.Status == 0 {
				spec.Status = http.StatusOK
			}
			w.WriteHeader(spec.Status)
			_, _ = w.Write(out)
			return
		}
	}
	_, _ = w.Write(body)
}

// ftwResult is the outcome of one test.
type ftwResult struct {
	status int // 0: no response
	reqErr error
	rec    ftwRecord
	failed []string // why it failed; empty: passed
}

// run sends one stage's request and checks its outcome.
func (s *ftwServer) run(st ftwStage) ftwResult {
	var res ftwResult
	raw, err := st.Input.rawRequest()
	if err != nil {
		res.failed = append(res.failed, err.Error())
		return res
	}
	for len(s.results) > 0 {
		<-s.results // stale: from a request no test waited for
	}
	before := s.started.Load()
	res.status, res.reqErr = s.send(raw)
	handled := s.started.Load() > before
	if handled {
		select {
		case res.rec = <-s.results:
		case <-time.After(10 * time.Second):
			res.failed = append(res.failed, "transaction never finished")
		}
	}
	out := st.Output
	for _, id := range out.Log.ExpectIDs {
		if !slices.Contains(res.rec.ids, id) {
			res.failed = append(res.failed, fmt.Sprintf("expected rule %d did not match", id))
		}
	}
	for _, id := range out.Log.NoExpectIDs {
		if slices.Contains(res.rec.ids, id) {
			res.failed = append(res.failed, fmt.Sprintf("rule %d matched, expected not to", id))
		}
	}
	for _, re := range []string{out.Log.MatchRegex, out.MatchRegex} {
		if re != "" && !s.logMatches(res.rec, re) {
			res.failed = append(res.failed, fmt.Sprintf("no log line matches %q", re))
		}
	}
	for _, re := range []string{out.Log.NoMatchRegex, out.NoMatchRegex} {
		if re != "" && s.logMatches(res.rec, re) {
			res.failed = append(res.failed, fmt.Sprintf("a log line matches %q", re))
		}
	}
	if len(out.Status) > 0 && !slices.Contains(out.Status, res.status) {
		res.failed = append(res.failed, fmt.Sprintf("status %d, want %v", res.status, []int(out.Status)))
	}
	if out.ExpectError && res.reqErr == nil && res.status < 400 {
		res.failed = append(res.failed, fmt.Sprintf("expected an error, got status %d", res.status))
	}
	return res
}

var regexCache sync.Map

func (s *ftwServer) logMatches(rec ftwRecord, expr string) bool {
	re, ok := regexCache.Load(expr)
	if !ok {
		c, err := regexp.Compile(expr)
		if err != nil {
			return false
		}
		re, _ = regexCache.LoadOrStore(expr, c)
	}
	for _, l := range rec.logs {
		if re.(*regexp.Regexp).MatchString(l) {
			return true
		}
	}
	return false
}

// send writes raw to a new connection and reads one response; the status
// is 0 when the server closed the connection without one.
func (s *ftwServer) send(raw []byte) (int, error) {
	conn, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(raw); err != nil {
		return 0, err
	}
	// The method decides whether the response has a body (HEAD has none).
	method, _, _ := strings.Cut(string(raw[:min(len(raw), 64)]), " ")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
