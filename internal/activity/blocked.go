package activity

import (
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"
)

// BlockedSize is how many refused requests the recorder keeps.
const BlockedSize = 256

// The longest value of each kind a Blocked keeps; longer ones are cut (on
// a rune boundary, marked with "…"). They bound the ring's memory whatever
// a client sends.
const (
	maxPath     = 256
	maxID       = 128 // httpkit.MaxRequestIDLen
	maxRoute    = 128
	maxMethod   = 32
	maxSource   = 16
	maxReason   = 256
	maxStage    = 32
	maxMessage  = 160
	maxRules    = 16 // rules kept per refusal
	maxVerdicts = 8  // stage verdicts kept per refusal: the refusing one and those just before it
)

// Blocked is one refused request, as the console lists it. It holds no
// body, header, cookie, query string or credential: only what is needed to
// find the request in the logs and see why it was refused.
type Blocked struct {
	// ID is the request id (X-Request-Id).
	ID string
	// Time is when the request arrived.
	Time time.Time
	// Client is the resolved client address, Source how it was learned
	// (peer, proxy, header).
	Client netip.Addr
	Source string
	// Route is the route the request matched ("" for the default).
	Route string
	// Method and Path are the request's, the path without its query.
	Method, Path string
	// Stage refused the request with Status (0: the connection was
	// dropped without an answer) for Reason.
	Stage  string
	Status int
	Reason string
	// Rules are the WAF rules behind the refusal.
	Rules []Rule
	// Stages are the verdicts of the stages that ran, in chain order, the
	// refusing one last.
	Stages []StageVerdict
}

// Rule is a WAF rule and its message.
type Rule struct {
	ID      int
	Message string
}

// StageVerdict is what one stage decided about a refused request.
type StageVerdict struct {
	Stage string
	// Verdict is "allow", "shadow_deny" (a stage in shadow mode would have
	// refused) or "deny".
	Verdict string
	Reason  string
	Rules   []Rule
}

// The verdicts a StageVerdict names.
const (
	VerdictAllow      = "allow"
	VerdictShadowDeny = "shadow_deny"
	VerdictDeny       = "deny"
)

// blockedRing is the last BlockedSize refusals.
type blockedRing struct {
	mu   sync.Mutex
	ring [BlockedSize]Blocked
	next int  // where the next refusal goes
	full bool // every slot holds one
}

func (b *blockedRing) push(e Blocked) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ring[b.next] = e
	b.next = (b.next + 1) % BlockedSize
	b.full = b.full || b.next == 0
}

// newestFirst returns the refusals held, the latest first.
func (b *blockedRing) newestFirst() []Blocked {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.next
	if b.full {
		n = BlockedSize
	}
	out := make([]Blocked, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, b.ring[(b.next-i+BlockedSize)%BlockedSize])
	}
	return out
}

// find returns the latest refusal with request id id.
func (b *blockedRing) find(id string) (Blocked, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := 1; i <= BlockedSize; i++ {
		e := &b.ring[(b.next-i+BlockedSize)%BlockedSize]
		if e.ID == id && (e.ID != "" || !e.Time.IsZero()) {
			return *e, true
		}
	}
	return Blocked{}, false
}

// blockedBytes bounds the heap one Blocked holds beyond its slot in the
// ring: its strings at their longest (a cut adds the 3 bytes of "…"), its
// rules with their messages and its stage verdicts with their reasons (the
// refusing stage's rules are the Blocked's own, shared), each allocation
// rounded up as the allocator does (allocBytes).
func blockedBytes() int {
	n := 0
	for _, s := range []int{maxID, maxSource, maxRoute, maxMethod, maxPath, maxStage, maxReason} {
		n += allocBytes(s + 3)
	}
	n += allocBytes(maxRules*int(unsafe.Sizeof(Rule{}))) + maxRules*allocBytes(maxMessage+3)
	n += allocBytes(maxVerdicts*int(unsafe.Sizeof(StageVerdict{}))) + maxVerdicts*(allocBytes(maxStage+3)+allocBytes(maxReason+3))
	return n
}

// allocBytes bounds what an allocation of n bytes takes: Go rounds small
// ones up to a size class (at most an eighth more, plus a little for the
// smallest classes) and large ones to whole 8 KiB pages.
func allocBytes(n int) int {
	if n > 32<<10 {
		return (n + 8191) &^ 8191
	}
	return n + n/8 + 16
}

// cut returns s cut to at most n bytes on a rune boundary, marked with "…",
// and copied, so that the ring never holds on to a request's memory.
func cut(s string, n int) string {
	if len(s) <= n {
		return strings.Clone(s)
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// withoutQuery is path up to its first '?': a caller that hands over a
// request URI instead of the path must not leak the query into the ring.
func withoutQuery(path string) string {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		return path[:i]
	}
	return path
}
