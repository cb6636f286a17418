package activity

import (
	"net/netip"
	"strings"
	"time"
	"unsafe"

	"github.com/edgeguard/edgeguard/filters"
)

// DefaultK is how many clients (and rules) the top lists hold by default.
const DefaultK = 64

// Forwarded is the stage a request every stage let through is counted
// under, as in the metrics' requests counter.
const Forwarded = "forward"

// Recorder is the live picture of recent traffic: the per-second series,
// the top clients and rules and the last refusals. It is fed once per
// finished request (Record) and once per WAF verdict with rules
// (RulesFired), and is safe for concurrent use. Its memory is fixed at
// New: see MemoryBytes.
type Recorder struct {
	k        int
	series   *series
	clients  *topK[netip.Addr, struct{}] // by requests
	deniers  *topK[netip.Addr, struct{}] // by refusals
	rules    *topK[int, string]          // by firings, with the latest message
	refusals blockedRing
}

// New returns a Recorder whose top lists hold k keys (DefaultK when k ≤ 0).
func New(k int) *Recorder {
	if k <= 0 {
		k = DefaultK
	}
	return &Recorder{
		k:       k,
		series:  newSeries(),
		clients: newTopK[netip.Addr, struct{}](k, Window),
		deniers: newTopK[netip.Addr, struct{}](k, Window),
		rules:   newTopK[int, string](k, Window),
	}
}

// MemoryBytes is the most memory the Recorder holds, whatever it is fed:
// the series' fixed buckets, the top lists' slots and indexes, and the
// refusal ring with every string at its longest, each allocation rounded
// up as the allocator does.
func (r *Recorder) MemoryBytes() int {
	addrSlot := int(unsafe.Sizeof(slot[netip.Addr, struct{}]{}))
	ruleSlot := int(unsafe.Sizeof(slot[int, string]{}))
	// A map's table: its slots (key and index) and a control byte each,
	// at most twice as many slots as entries (Go grows at 7/8 full).
	index := func(key int) int { return allocBytes(2 * r.k * (key + 8 + 1)) }
	summaries := 2 * (allocBytes(r.k*addrSlot) + index(int(unsafe.Sizeof(netip.Addr{})))) * 2 // clients and deniers
	summaries += 2 * (allocBytes(r.k*ruleSlot) + index(8) + r.k*allocBytes(maxMessage+3))
	return allocBytes(int(unsafe.Sizeof(Recorder{}))) + // the refusal ring's slots are in it
		allocBytes(int(unsafe.Sizeof(series{}))) + allocBytes(maxStages*16) + maxStages*allocBytes(maxStage) +
		summaries + BlockedSize*blockedBytes()
}

// Entry is one finished request as Record takes it. Record copies what it
// keeps; the caller may reuse the Entry and everything it points to.
type Entry struct {
	// Arrived and End are when the request came in and when its answer
	// was finished.
	Arrived, End time.Time
	// Client is the resolved client, Source how it was learned.
	Client netip.Addr
	Source string
	// ID is the request id; Route, Method and Path the request's (Path
	// without the query: one that has one is cut at the '?').
	ID, Route, Method, Path string
	// Status is the answer's status (0 for none: the connection was
	// dropped).
	Status int
	// Stage is the stage that refused the request, "" when none did;
	// Reason, RuleIDs and RuleMessages (by index, may be shorter) its
	// reasons.
	Stage, Reason string
	RuleIDs       []int
	RuleMessages  []string
	// Chain is the stages the request went through (for the verdicts of
	// those before the refusing one), Notes its annotations (shadow
	// denies). Both are read only for a refused request.
	Chain []filters.Stage
	Notes []filters.Note
}

// shadowNote starts the note the chain adds for a shadow deny
// (filters.Chain.Run).
const shadowNote = "shadow deny: "

// outcome is what became of e's request.
func (e *Entry) outcome() Outcome {
	switch {
	case e.Stage != "":
		return Denied
	case e.Status >= 500:
		return Errored
	}
	for _, n := range e.Notes {
		if strings.HasPrefix(n.Text, shadowNote) {
			return Shadow
		}
	}
	return Allowed
}

// Record counts one finished request: in the series, the top clients, and
// for a refusal the top refused clients and the refusal ring. A request
// that allowed through costs a few atomic additions and one short lock,
// and allocates nothing.
func (r *Recorder) Record(e *Entry) {
	o := e.outcome()
	stage := Forwarded
	if o == Denied {
		stage = e.Stage
	}
	r.series.add(e.End, o, stage, e.End.Sub(e.Arrived))
	if e.Client.IsValid() {
		r.clients.add(e.End, e.Client, struct{}{})
		if o == Denied {
			r.deniers.add(e.End, e.Client, struct{}{})
		}
	}
	if o == Denied {
		r.refusals.push(e.blocked())
	}
}

// RulesFired counts the WAF rules of one verdict, deny or shadow deny, at
// now; messages holds the rules' messages by index (it may be shorter).
func (r *Recorder) RulesFired(now time.Time, ids []int, messages []string) {
	for i, id := range ids {
		if id == 0 {
			continue
		}
		msg := ""
		if i < len(messages) {
			msg = messages[i]
		}
		// Cut and copied: a WAF verdict costs far more than this.
		r.rules.add(now, id, cut(msg, maxMessage))
	}
}

// blocked is e as the refusal ring keeps it.
func (e *Entry) blocked() Blocked {
	b := Blocked{
		ID:     cut(e.ID, maxID),
		Time:   e.Arrived,
		Client: e.Client,
		Source: cut(e.Source, maxSource),
		Route:  cut(e.Route, maxRoute),
		Method: cut(e.Method, maxMethod),
		Path:   cut(withoutQuery(e.Path), maxPath),
		Stage:  cut(e.Stage, maxStage),
		Status: e.Status,
		Reason: cut(e.Reason, maxReason),
		Rules:  rulesOf(e.RuleIDs, e.RuleMessages),
	}
	b.Stages = e.verdicts(b)
	return b
}

func rulesOf(ids []int, messages []string) []Rule {
	out := make([]Rule, 0, min(len(ids), maxRules))
	for i, id := range ids[:min(len(ids), maxRules)] {
		rl := Rule{ID: id}
		if i < len(messages) {
			rl.Message = cut(messages[i], maxMessage)
		}
		out = append(out, rl)
	}
	return out
}

// verdicts are the stage verdicts of b's request: each stage of the chain
// before the refusing one allowed it (or, in shadow mode, would have
// refused it), and the refusing stage denied it. A refusal before the
// chain (at intake) has only its own.
func (e *Entry) verdicts(b Blocked) []StageVerdict {
	ran := len(e.Chain)
	for i, s := range e.Chain {
		if s.Filter.Name() == e.Stage {
			ran = i
			break
		}
	}
	if ran == len(e.Chain) {
		ran = 0 // refused before the chain: no stage ran
	}
	from := max(ran-(maxVerdicts-1), 0) // keep those just before the refusing stage
	out := make([]StageVerdict, 0, ran-from+1)
	for _, s := range e.Chain[from:ran] {
		name := s.Filter.Name()
		sv := StageVerdict{Stage: cut(name, maxStage), Verdict: VerdictAllow}
		for _, n := range e.Notes {
			if n.Stage == name && strings.HasPrefix(n.Text, shadowNote) {
				sv.Verdict, sv.Reason = VerdictShadowDeny, cut(strings.TrimPrefix(n.Text, shadowNote), maxReason)
			}
		}
		out = append(out, sv)
	}
	return append(out, StageVerdict{Stage: b.Stage, Verdict: VerdictDeny, Reason: b.Reason, Rules: b.Rules})
}
