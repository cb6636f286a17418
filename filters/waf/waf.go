// Package waf is the stage that stops application attacks: it runs each
// request (and, when asked, each response) through Coraza with the OWASP
// Core Rule Set v4 embedded, plus the operator's rule packs, and turns
// Coraza's interruptions into verdicts and audit events.
package waf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/corazawaf/coraza/v3"
	"github.com/corazawaf/coraza/v3/experimental"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"

	"github.com/edgeguard/edgeguard/filters"
)

// Name is the stage name, as in the config file.
const Name = "waf"

// Filter is the WAF stage. It is safe for concurrent use; one Filter holds
// one compiled rule set, and a reload builds a new Filter.
type Filter struct {
	cfg    Config // with defaults
	waf    coraza.WAF
	log    *slog.Logger
	audit  *auditSink
	stats  *stats
	budget *budget

	skipBody []string

	// onFinish, when set (tests, ReportMatches), sees every transaction's
	// matched rules after phase 5, before the transaction is closed.
	onFinish func(r *filters.Request, matched []types.MatchedRule)
}

// New builds the stage: Coraza with CRS, the settings of cfg and the packs
// it names. A pack that does not compile is reported as FILE:LINE: message.
func New(cfg Config, env filters.Env) (*Filter, error) {
	return newFilter(cfg, env, engineOptions{})
}

// engineOptions are knobs the tests and benchmarks turn; the config has no
// key for them.
type engineOptions struct {
	extra string
	stock bool
	// noPlan builds without the rule plan (plan.go), for comparison.
	noPlan bool
}

func newFilter(cfg Config, env filters.Env, opt engineOptions) (*Filter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err // field errors, each named below the block
	}
	cfg = cfg.withDefaults()
	s := engineSettings{cfg: cfg, extra: opt.extra, stock: opt.stock, noPlan: opt.noPlan}
	packs := make([]Pack, len(cfg.Packs))
	var errs []error
	for i, dir := range cfg.Packs {
		p, err := LoadPack(env.Dir, dir)
		if err != nil {
			errs = append(errs, filters.PrefixFields(fmt.Sprintf("packs[%d]", i), err))
			continue
		}
		packs[i] = p
		s.packFiles.add(p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	w, err := s.build()
	if err != nil {
		return nil, packField(err, packs)
	}
	log := env.Log(Name)
	sink, err := newAuditSink(cfg.Audit, env.Dir, log)
	if err != nil {
		closeWAF(w)
		return nil, &filters.FieldError{Field: "audit", Err: err}
	}
	if len(cfg.Exclusions) > 0 {
		// A non-canonical path has its exclusions dropped per transaction
		// (dropPathExclusions): refuse a Coraza that cannot do that rather
		// than apply them to paths they were not written for.
		tx := w.NewTransaction()
		_, ok := tx.(ruleRemover)
		_ = tx.Close()
		if !ok {
			closeWAF(w)
			_ = sink.close()
			return nil, errors.New("waf: exclusions: Coraza's transaction cannot remove a rule")
		}
	}
	f := &Filter{cfg: cfg, waf: w, log: log, audit: sink, stats: newStats(), skipBody: cfg.SkipBodyPaths}
	var prevBudget *budget
	if prev, ok := env.Previous.(*Filter); ok && prev != nil {
		// Counters are cumulative for Prometheus: a reload must not reset them.
		f.stats = prev.stats
		prevBudget = prev.budget
	}
	if f.budget, err = newBudget(cfg, prevBudget); err != nil {
		closeWAF(w)
		_ = sink.close()
		return nil, err
	}
	return f, nil
}

// packField puts an error about a pack file that does not compile under
// the key of its pack (packs[N]); any other build error is the block's.
func packField(err error, packs []Pack) error {
	var pe *packFileError
	if !errors.As(err, &pe) {
		return err
	}
	for i, p := range packs {
		if slices.Contains(slices.Concat(p.Config, p.Before, p.After, p.Rules), pe.file) {
			return &filters.FieldError{Field: fmt.Sprintf("packs[%d]", i), Err: err}
		}
	}
	return err
}

// Name returns "waf".
func (f *Filter) Name() string { return Name }

// Close releases the compiled rule set and the audit file.
func (f *Filter) Close() error {
	closeWAF(f.waf)
	return f.audit.close()
}

func closeWAF(w coraza.WAF) {
	if c, ok := w.(experimental.WAFCloser); ok {
		_ = c.Close()
	}
}

// txState is one request's transaction and what the stage learned about it.
type txState struct {
	f    *Filter
	tx   types.Transaction
	r    *filters.Request
	resp *responseInspector
	// verdict is what Check returned; overLimit marks a 413 decided by
	// edgeguard rather than by a rule, refused a 503 from the budget.
	verdict   filters.Verdict
	overLimit bool
	refused   bool
	// body is the inspected body, kept for the audit with audit_requests.
	body []byte
}

// Check runs phases 1 and 2 over r. The transaction stays open until
// r.Finish, which runs the response phases' end, phase 5 and the audit.
func (f *Filter) Check(r *filters.Request) filters.Verdict {
	f.stats.evaluations.Add(1)
	var tx types.Transaction
	if r.ID != "" {
		tx = f.waf.NewTransactionWithID(r.ID)
	} else {
		tx = f.waf.NewTransaction()
	}
	st := &txState{f: f, tx: tx, r: r}
	r.Defer(st.finish)
	if r.Explaining {
		defer noteMatches(r, tx) // before finish closes tx
	}
	if tx.IsRuleEngineOff() {
		return filters.Allow
	}
	it, err := st.processRequest()
	if err != nil {
		// The client went away or sent a broken body; nothing to forward.
		// A body the server could not hold says its own status (503).
		status := http.StatusBadRequest
		var se interface{ StatusCode() int }
		if errors.As(err, &se) {
			status = se.StatusCode()
		}
		st.verdict = filters.Verdict{Deny: true, Status: status, Reason: "request body: " + err.Error()}
		return st.verdict
	}
	if st.overLimit || st.refused {
		st.verdict.Shadow = f.cfg.Mode == filters.ModeShadow
		return st.verdict
	}
	if it == nil {
		it = detectionOnlyInterruption(tx)
	}
	if it != nil {
		st.verdict = f.verdictOf(tx, it)
		if st.verdict.Shadow && f.cfg.InspectResponse {
			st.wrapResponse()
		}
		return st.verdict
	}
	if f.cfg.InspectResponse {
		st.wrapResponse()
	}
	return filters.Allow
}

func (st *txState) wrapResponse() {
	st.r.WrapResponse(func(w http.ResponseWriter) http.ResponseWriter {
		st.resp = &responseInspector{w: w, st: st}
		return st.resp
	})
}

// processRequest feeds Coraza the connection, URI, headers and body of the
// request, stopping at the first interruption.
func (st *txState) processRequest() (*types.Interruption, error) {
	tx, r, h := st.tx, st.r, st.r.HTTP
	client := r.Client
	if !client.IsValid() {
		client = r.Peer.Addr()
	}
	var (
		serverIP   string
		serverPort int
	)
	if a, ok := h.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ta, ok := a.(*net.TCPAddr); ok {
			serverIP, serverPort = ta.IP.String(), ta.Port
		}
	}
	tx.ProcessConnection(client.Unmap().String(), int(r.ClientPort), serverIP, serverPort)
	uri := h.RequestURI
	if uri == "" {
		uri = h.URL.RequestURI()
	}
	tx.ProcessURI(uri, h.Method, h.Proto)
	// Exclusions and skip_body_paths match the decoded, cleaned path, but
	// the upstream routes on the raw one, and the two can disagree
	// (/api/..%2Fupload is /upload here, not to a backend that keeps %2F):
	// such a path gets the full inspection.
	canonical := canonicalPath(h.URL)
	if !canonical {
		st.f.dropPathExclusions(tx)
	}
	for k, vs := range h.Header {
		for _, v := range vs {
			tx.AddRequestHeader(k, v)
		}
	}
	// net/http lifts Host and Transfer-Encoding out of the header map; CRS's
	// protocol rules (920280, 920171, smuggling checks) need them back.
	if h.Host != "" {
		tx.AddRequestHeader("Host", h.Host)
		tx.SetServerName(hostOnly(h.Host))
	}
	for _, te := range h.TransferEncoding {
		tx.AddRequestHeader("Transfer-Encoding", te)
	}
	l := st.f.budget.laneFor(h.ContentLength)
	if !st.admit(l) {
		return nil, nil
	}
	if it := tx.ProcessRequestHeaders(); it != nil {
		st.f.budget.release(l)
		return it, nil
	}
	if h.Body == nil || h.Body == http.NoBody || !tx.IsRequestBodyAccessible() || st.f.skipsBody(h.URL.Path, canonical) {
		defer st.f.budget.release(l)
		return tx.ProcessRequestBody()
	}
	// No slot is held while the body arrives.
	st.f.budget.release(l)
	return st.processBody()
}

// processBody reads at most body_limit bytes (plus one, to tell "exactly
// the limit" from "over it"), gives them to Coraza and puts a body in place
// that replays them, then the unread rest, byte for byte.
func (st *txState) processBody() (*types.Interruption, error) {
	tx, h, cfg := st.tx, st.r.HTTP, st.f.cfg
	limit := int64(cfg.BodyLimit)
	if cfg.BodyLimitAction == BodyLimitReject && h.ContentLength > limit {
		st.rejectOverLimit()
		return nil, nil
	}
	orig := h.Body
	var buf bytes.Buffer
	buf.Grow(bodyBufferSize(h.ContentLength, limit))
	_, err := buf.ReadFrom(io.LimitReader(orig, limit+1))
	// Whatever happens next, the upstream must get what was read.
	h.Body = replayBody{Reader: io.MultiReader(bytes.NewReader(buf.Bytes()), orig), Closer: orig}
	if err != nil {
		return nil, err
	}
	inspect := buf.Bytes()
	if int64(len(inspect)) > limit {
		if cfg.BodyLimitAction == BodyLimitReject {
			st.rejectOverLimit()
			return nil, nil
		}
		inspect = inspect[:limit]
	}
	l := st.f.budget.laneFor(int64(len(inspect)))
	if !st.admit(l) {
		return nil, nil
	}
	defer st.f.budget.release(l)
	if cfg.AuditRequests {
		st.body = inspect
	}
	if it, _, err := tx.WriteRequestBody(inspect); it != nil || err != nil {
		return it, err
	}
	return tx.ProcessRequestBody()
}

func (st *txState) rejectOverLimit() {
	st.overLimit = true
	st.f.stats.bodyRejects.Add(1)
	st.verdict = filters.Verdict{Deny: true, Status: http.StatusRequestEntityTooLarge, Reason: "body over limit"}
}

// maxPreGrow bounds what a request's Content-Length reserves before any of
// its bytes have arrived: one read's worth. Past it the buffer grows (by
// doubling) only as bytes arrive, so a client that declares 60 KB and sends
// 3 bytes holds about a kilobyte, not 64 KiB, for as long as it stalls.
const maxPreGrow = bytes.MinRead

// bodyBufferSize is the capacity to reserve for reading a body the client
// says is contentLength bytes long: that, up to maxPreGrow (a claim is not
// bytes), plus room for the read that sees the end, so that an honest small
// body costs one allocation.
func bodyBufferSize(contentLength, limit int64) int {
	if contentLength <= 0 || contentLength > limit {
		return 0
	}
	return int(min(contentLength, maxPreGrow)) + bytes.MinRead
}

type replayBody struct {
	io.Reader
	io.Closer
}

// skipsBody reports whether the body of a request for urlPath is not read.
// A prefix other than "/" applies only to a canonical path.
func (f *Filter) skipsBody(urlPath string, canonical bool) bool {
	for _, p := range f.skipBody {
		if p == "/" || canonical && underPrefix(urlPath, p) {
			return true
		}
	}
	return false
}

// canonicalPath reports whether u's path is the same decoded or raw, and
// clean (a trailing slash allowed): the only paths on which the WAF's
// reading of the path and the upstream's are sure to agree.
func canonicalPath(u *url.URL) bool {
	return u.RawPath == "" && filters.MatchPath(u.Path) == u.Path
}

// ruleRemover is the method of Coraza's transaction behind
// ctl:ruleRemoveById: it removes a rule for one transaction.
type ruleRemover interface{ RemoveRuleByID(id int) }

// dropPathExclusions removes the generated exclusion rules from tx, except
// those for "/", which cover every path however it is spelled. newFilter
// has checked that tx is a ruleRemover.
func (f *Filter) dropPathExclusions(tx types.Transaction) {
	for i, e := range f.cfg.Exclusions {
		if e.Path != "/" {
			tx.(ruleRemover).RemoveRuleByID(exclusionIDBase + i)
		}
	}
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// detectionOnlyInterruption returns what Coraza would have done had the
// engine been On (shadow mode), or nil.
func detectionOnlyInterruption(tx types.Transaction) *types.Interruption {
	if d, ok := tx.(interface {
		DetectionOnlyInterruption() *types.Interruption
	}); ok {
		return d.DetectionOnlyInterruption()
	}
	return nil
}

// verdictOf translates an interruption into a verdict, honouring each of
// Coraza's disruptive actions.
func (f *Filter) verdictOf(tx types.Transaction, it *types.Interruption) filters.Verdict {
	v := filters.Verdict{Deny: true, Shadow: f.cfg.Mode == filters.ModeShadow || !tx.IsInterrupted()}
	v.Score = txScore(tx, "blocking_inbound_anomaly_score")
	for _, mr := range tx.MatchedRules() {
		if ruleLogged(mr) {
			v.RuleIDs = append(v.RuleIDs, mr.Rule().ID())
			v.RuleMessages = append(v.RuleMessages, mr.Message())
		}
	}
	switch it.Action {
	case "drop":
		v.Drop = true
	case "redirect":
		v.Status = it.Status
		if v.Status < 300 || v.Status > 399 {
			v.Status = http.StatusFound
		}
		v.Headers = http.Header{"Location": {it.Data}}
	default:
		v.Status = it.Status
		if v.Status == 0 {
			v.Status = http.StatusForbidden
		}
	}
	if isScoreRule(it.RuleID) {
		v.Reason = "anomaly score " + strconv.Itoa(v.Score)
	} else {
		v.Reason = "rule " + strconv.Itoa(it.RuleID)
	}
	return v
}

// isScoreRule reports whether id is one of CRS's blocking-evaluation rules,
// which deny because of the summed score rather than a single match.
func isScoreRule(id int) bool {
	return (id >= 949000 && id < 950000) || (id >= 959000 && id < 960000) || strconv.Itoa(id) == earlyBlockingID
}

// txScore reads a CRS score variable from the transaction's TX collection.
func txScore(tx types.Transaction, name string) int {
	vt, ok := tx.(interface {
		Variables() plugintypes.TransactionVariables
	})
	if !ok {
		return 0
	}
	vals := vt.Variables().TX().Get(name)
	if len(vals) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(vals[0])
	return n
}

// finish runs once the response is done or abandoned: it completes response
// inspection, runs phase 5, writes the audit event and closes the transaction.
func (st *txState) finish() {
	tx := st.tx
	if st.resp != nil {
		st.resp.finish()
	}
	tx.ProcessLogging()
	st.f.record(st)
	if st.f.onFinish != nil {
		st.f.onFinish(st.r, tx.MatchedRules())
	}
	if err := tx.Close(); err != nil {
		st.f.log.Warn("closing waf transaction", "request_id", st.r.ID, "err", err)
	}
}

// record counts and audits a transaction that was interrupted, would have
// been (shadow), or was refused for its body size.
func (f *Filter) record(st *txState) {
	tx := st.tx
	it := tx.Interruption()
	shadow := false
	if it == nil {
		if it = detectionOnlyInterruption(tx); it != nil {
			shadow = true
		}
	}
	if st.refused || it == nil && !st.overLimit && !st.verdict.Deny {
		// A refusal for want of capacity is counted, not audited: under
		// overload an audit line per refusal would add to the load.
		return
	}
	ev := auditEvent{
		RequestID: st.r.ID,
		Method:    st.r.HTTP.Method,
		URI:       st.r.HTTP.RequestURI,
		Inbound:   txScore(tx, "blocking_inbound_anomaly_score"),
		Outbound:  txScore(tx, "blocking_outbound_anomaly_score"),
		Shadow:    shadow || f.cfg.Mode == filters.ModeShadow,
	}
	if ev.URI == "" {
		ev.URI = st.r.HTTP.URL.RequestURI()
	}
	if c := st.r.Client; c.IsValid() {
		ev.Client = c.String()
	} else if st.r.Peer.IsValid() {
		ev.Client = st.r.Peer.Addr().String()
	}
	switch {
	case it != nil:
		ev.Action, ev.Status, ev.RuleID = it.Action, it.Status, it.RuleID
		if ev.Action == "deny" && ev.Status == 0 {
			ev.Status = http.StatusForbidden
		}
		f.stats.interrupted(it.RuleID, it.Action, ev.Shadow)
	case st.overLimit:
		ev.Action, ev.Status = "reject_body", http.StatusRequestEntityTooLarge
	default:
		ev.Action, ev.Status = "deny", st.verdict.StatusCode()
	}
	for _, mr := range tx.MatchedRules() {
		if !ruleLogged(mr) || mr.Rule().ID() == 0 {
			continue
		}
		ev.Rules = append(ev.Rules, auditRule{ID: mr.Rule().ID(), Message: mr.Message(), Severity: mr.Rule().Severity().String(), Vars: matchedVars(mr.MatchedDatas())})
		f.stats.matched(mr.Rule().ID())
	}
	if f.cfg.AuditRequests {
		ev.Request = sampleRequest(st.r.HTTP, st.body)
	}
	f.audit.write(ev)
}

// errBlocked is returned by Hijack on a response the WAF already answered.
var errBlocked = errors.New("waf: response blocked")

var (
	_ filters.Filter        = (*Filter)(nil)
	_ filters.Closer        = (*Filter)(nil)
	_ filters.MetricsSource = (*Filter)(nil)
)
