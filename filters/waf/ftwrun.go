package waf

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/corazawaf/coraza/v3/types"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/ftw"
)

// This file serves the stage for go-ftw tests (internal/ftw): each stage
// is written as a raw HTTP request to a real 127.0.0.1 listener that serves
// the stage the way edgeguard does, and the rules the transaction matched
// are reported back to be checked against the stage's output.

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
	status int // 0: no response
	rec    ftwRecord
	failed []string // why it failed; empty: passed
}

// sendFTW sends raw and waits for its transaction to finish: the
// ftw.Sender the pack runner and the tests use.
func (s *ftwServer) sendFTW(raw []byte) ftw.Result {
	for len(s.results) > 0 {
		<-s.results // stale: from a request no test waited for
	}
	before := s.started.Load()
	res := ftw.Exchange(s.addr, raw, ftwIOTimeout)
	if s.started.Load() > before {
		select {
		case rec := <-s.results:
			res.IDs, res.Logs = rec.ids, rec.logs
		case <-time.After(s.wait):
			res.Failed = append(res.Failed, "transaction never finished")
		}
	}
	return res
}

// run sends one stage's request and checks its outcome.
func (s *ftwServer) run(st ftw.Stage) ftwResult {
	res := st.Run(s.sendFTW, nil, isReportingRule)
	return ftwResult{status: res.Status, rec: ftwRecord{ids: res.IDs, logs: res.Logs}, failed: res.Failed}
}

// isReportingRule reports whether id is one of the rules that sum up or
// report on the others (CRS's blocking evaluation and correlation rules,
// edgeguard's early blocking), which match along with any attack rule.
func isReportingRule(id int) bool {
	return isScoreRule(id) || (id >= 980000 && id < 981000)
}

// send is Exchange for callers that need only the status.
func (s *ftwServer) send(raw []byte) (int, error) {
	res := ftw.Exchange(s.addr, raw, ftwIOTimeout)
	return res.Status, res.Err
}
