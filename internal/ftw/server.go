package ftw

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

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/httpkit"
)

// Server serves one stage on a 127.0.0.1 listener in front of an upstream,
// the way edgeguard serves its chain: Check, then the refusal or the
// upstream through the stage's response wrappers, then Finish. Tests send
// it raw requests (Send). The stage reports what each transaction matched
// to Finished when the transaction ends, and Send waits for that report,
// so a result never belongs to another request.
type Server struct {
	stage    filters.Filter
	upstream http.Handler
	srv      *http.Server
	addr     string
	started  atomic.Uint64 // requests the handler has begun
	seq      atomic.Uint64
	matches  chan Result
	// wait bounds how long Send waits for a handled transaction to end.
	wait time.Duration
}

// Timeouts of Send. They are generous: under -race on a loaded machine CRS
// takes seconds, and an ended transaction is announced, never polled for.
const (
	// FinishWait is how long a stage may take, from the request's first
	// byte to the report of its transaction.
	FinishWait = 60 * time.Second
	// IOTimeout bounds the client's socket.
	IOTimeout = 60 * time.Second
)

// NewServer makes a Server for stage in front of upstream (Echo when
// nil). The caller wires the stage's end-of-transaction report to
// Finished, then calls Start, and closes the Server.
func NewServer(stage filters.Filter, upstream http.Handler) *Server {
	if upstream == nil {
		upstream = http.HandlerFunc(Echo)
	}
	s := &Server{stage: stage, upstream: upstream, matches: make(chan Result, 64), wait: FinishWait}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	return s
}

// Start serves on a new 127.0.0.1 listener.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("ftw: listening for rule tests: %w", err)
	}
	s.addr = ln.Addr().String()
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// Started counts the requests the stage's handler has begun: a count that
// does not move across an exchange means net/http answered it alone.
func (s *Server) Started() uint64 { return s.started.Load() }

// Addr is the listener's host:port.
func (s *Server) Addr() string { return s.addr }

// Close stops the listener and closes its connections.
func (s *Server) Close() error { return s.srv.Close() }

// Finished takes the stage's report of one ended transaction: the rules
// it matched that write to the log, and their log lines. A report nobody
// waits for (a request Send did not make, such as the second of a
// pipelined pair) is dropped rather than blocking the stage.
func (s *Server) Finished(_ *filters.Request, ids []int, logs []string) {
	select {
	case s.matches <- Result{IDs: ids, Logs: logs}:
	default:
	}
}

// StageRequest is what a stage sees of req in a test server on loopback:
// the peer is the client (no proxies to trust), keyed by its address, now.
func StageRequest(req *http.Request, id string) *filters.Request {
	peer, _ := netip.ParseAddrPort(req.RemoteAddr)
	return &filters.Request{
		HTTP: req, Peer: peer, Client: peer.Addr().Unmap(), ClientPort: peer.Port(),
		Key: filters.KeyOf(peer.Addr(), 64), Now: time.Now(), ID: id,
	}
}

// ServeHTTP serves one request through the stage.
func (s *Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	s.started.Add(1)
	r := StageRequest(req, "ftw-"+strconv.FormatUint(s.seq.Add(1), 10))
	defer r.Finish()
	v := s.stage.Check(r)
	if v.Deny && !v.Shadow {
		refuse(w, r, v)
		return
	}
	s.upstream.ServeHTTP(r.ResponseWriter(w), req)
}

// refuse answers a deny as the Guard does: the headers the stage asked
// for, then httpkit.WriteDeny.
func refuse(w http.ResponseWriter, r *filters.Request, v filters.Verdict) {
	for k, vs := range v.Headers {
		w.Header()[k] = vs
	}
	httpkit.WriteDeny(w, r.ID, v)
}

// Send writes raw to the stage and, when the stage handled it, waits for
// the transaction's report: the Sender that Test.Run and Stage.Run take.
func (s *Server) Send(raw []byte) Result {
	for len(s.matches) > 0 {
		<-s.matches // stale: from a request no one waited for
	}
	before := s.started.Load()
	res := Exchange(s.addr, raw, IOTimeout)
	if s.started.Load() > before {
		select {
		case m := <-s.matches:
			res.IDs, res.Logs = m.IDs, m.Logs
		case <-time.After(s.wait):
			res.Failed = append(res.Failed, "transaction never finished")
		}
	}
	return res
}

// Echo stands in for the upstream the way CRS's test backend (albedo)
// does: POST /reflect answers with the status, headers and body the
// request describes, so response rules have something to inspect; anything
// else is answered 200 with the request body echoed.
func Echo(w http.ResponseWriter, req *http.Request) {
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

var _ http.Handler = (*Server)(nil)
