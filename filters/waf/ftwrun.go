package waf

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/corazawaf/coraza/v3/types"

	"github.com/edgeguard/edgeguard/filters"
)

// This file runs decoded go-ftw tests: each stage is written as a raw HTTP
// request to a real 127.0.0.1 listener that serves the stage the way
// edgeguard does, and the rules the transaction matched are checked against
// the stage's output.

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
	// wait bounds how long run waits for a handled transaction to finish.
	// It is generous: under -race on a loaded machine CRS takes seconds,
	// and a finished transaction is announced, never polled for.
	wait time.Duration
}

func startFTWServer(f *Filter) (*ftwServer, error) {
	return startStageServer(f, http.HandlerFunc(echoUpstream))
}

// ftwWait is how long a stage may take, from the request's first byte to
// the transaction's end; ftwIOTimeout bounds the client's socket.
const (
	ftwWait      = 60 * time.Second
	ftwIOTimeout = 60 * time.Second
)

// startStageServer serves f in front of upstream on a 127.0.0.1 listener.
func startStageServer(f *Filter, upstream http.Handler) (*ftwServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for rule tests: %w", err)
	}
	s := &ftwServer{f: f, upstream: upstream, ln: ln, addr: ln.Addr().String(), results: make(chan ftwRecord, 64), wait: ftwWait}
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

// ftwResult is the outcome of one stage.
type ftwResult struct {
	status   int // 0: no response
	response []byte
	cookies  []*http.Cookie
	reqErr   error
	rec      ftwRecord
	failed   []string // why it failed; empty: passed
}

// runTest runs the stages of one test in order, carrying the cookies of
// stages that save them; it returns why the test failed (empty: passed).
func (s *ftwServer) runTest(tc ftwTest) []string {
	var (
		why []string
		jar []*http.Cookie
	)
	for _, st := range tc.Stages {
		res := s.runWithCookies(st, jar)
		if len(res.failed) > 0 && st.Output.RetryOnce {
			res = s.runWithCookies(st, jar)
		}
		why = append(why, res.failed...)
		if st.Input.SaveCookie {
			jar = append(jar, res.cookies...)
		}
	}
	return why
}

// run sends one stage's request and checks its outcome.
func (s *ftwServer) run(st ftwStage) ftwResult { return s.runWithCookies(st, nil) }

func (s *ftwServer) runWithCookies(st ftwStage, jar []*http.Cookie) ftwResult {
	var res ftwResult
	raw, err := st.Input.rawRequest()
	if err != nil {
		res.failed = append(res.failed, err.Error())
		return res
	}
	raw = withCookies(raw, jar)
	for len(s.results) > 0 {
		<-s.results // stale: from a request no test waited for
	}
	before := s.started.Load()
	res.status, res.response, res.cookies, res.reqErr = s.exchange(raw)
	if s.started.Load() > before {
		select {
		case res.rec = <-s.results:
		case <-time.After(s.wait):
			res.failed = append(res.failed, "transaction never finished")
		}
	}
	res.failed = append(res.failed, st.Output.verify(res)...)
	return res
}

// verify checks a stage's result against every assertion of o.
func (o ftwOutput) verify(res ftwResult) []string {
	var failed []string
	for _, id := range o.Log.ExpectIDs {
		if !slices.Contains(res.rec.ids, id) {
			failed = append(failed, fmt.Sprintf("expected rule %d did not match", id))
		}
	}
	for _, id := range o.Log.NoExpectIDs {
		if slices.Contains(res.rec.ids, id) {
			failed = append(failed, fmt.Sprintf("rule %d matched, expected not to", id))
		}
	}
	if o.Isolated && len(o.Log.ExpectIDs) == 1 {
		for _, id := range res.rec.ids {
			if id != o.Log.ExpectIDs[0] && !isReportingRule(id) {
				failed = append(failed, fmt.Sprintf("isolated: rule %d matched besides %d", id, o.Log.ExpectIDs[0]))
			}
		}
	}
	for _, re := range []string{o.Log.MatchRegex, o.LogContains} {
		if re != "" && !logMatches(res.rec, re) {
			failed = append(failed, fmt.Sprintf("no log line matches %q", re))
		}
	}
	for _, re := range []string{o.Log.NoMatchRegex, o.NoLogContains} {
		if re != "" && logMatches(res.rec, re) {
			failed = append(failed, fmt.Sprintf("a log line matches %q", re))
		}
	}
	if o.ResponseContains != "" && !bytes.Contains(res.response, []byte(o.ResponseContains)) {
		failed = append(failed, fmt.Sprintf("response does not contain %q", o.ResponseContains))
	}
	if len(o.Status) > 0 && !slices.Contains(o.Status, res.status) {
		failed = append(failed, fmt.Sprintf("status %d, want %v", res.status, []int(o.Status)))
	}
	if o.ExpectError && res.reqErr == nil && res.status < 400 {
		failed = append(failed, fmt.Sprintf("expected an error, got status %d", res.status))
	}
	return failed
}

// isReportingRule reports whether id is one of the rules that sum up or
// report on the others (CRS's blocking evaluation and correlation rules,
// edgeguard's early blocking), which match along with any attack rule.
func isReportingRule(id int) bool {
	return isScoreRule(id) || (id >= 980000 && id < 981000)
}

func logMatches(rec ftwRecord, expr string) bool {
	re, err := compileCached(expr)
	if err != nil {
		return false // decodeFTW refuses such a file; never reached from it
	}
	for _, l := range rec.logs {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// withCookies adds a Cookie header carrying jar after the request line.
func withCookies(raw []byte, jar []*http.Cookie) []byte {
	if len(jar) == 0 {
		return raw
	}
	i := bytes.Index(raw, []byte("\r\n"))
	if i < 0 {
		return raw
	}
	pairs := make([]string, 0, len(jar))
	for _, c := range jar {
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	out := slices.Clone(raw[:i+2])
	out = append(out, "Cookie: "+strings.Join(pairs, "; ")+"\r\n"...)
	return append(out, raw[i+2:]...)
}

// send is exchange for callers that need only the status.
func (s *ftwServer) send(raw []byte) (int, error) {
	status, _, _, err := s.exchange(raw)
	return status, err
}

// exchange writes raw to a new connection and reads one response: its
// status (0 when the server closed the connection without one), the
// response as received (status line, headers, body) and its cookies.
func (s *ftwServer) exchange(raw []byte) (int, []byte, []*http.Cookie, error) {
	conn, err := net.DialTimeout("tcp", s.addr, 5*time.Second)
	if err != nil {
		return 0, nil, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(ftwIOTimeout))
	if _, err := conn.Write(raw); err != nil {
		return 0, nil, nil, err
	}
	// The method decides whether the response has a body (HEAD has none).
	method, _, _ := strings.Cut(string(raw[:min(len(raw), 64)]), " ")
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	dump, err := httputil.DumpResponse(resp, true)
	if err != nil {
		return resp.StatusCode, nil, resp.Cookies(), err
	}
	return resp.StatusCode, dump, resp.Cookies(), nil
}
