package reputation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// stageName is the stage's name in the config and in verdicts.
const stageName = "reputation"

// Reasons of this stage's denies.
const (
	ReasonBanned   = "banned"
	ReasonDenyList = "deny list"
)

var (
	verdictBanned   = filters.Verdict{Deny: true, Status: 403, Reason: ReasonBanned}
	verdictDenyList = filters.Verdict{Deny: true, Status: 403, Reason: ReasonDenyList}
)

// Filter is the reputation stage. Check and RefuseConn answer from the
// lists and the bans with a few lock-free table lookups; Observe turns the
// other stages' denies into strikes and bans. It is safe for concurrent use.
// New starts a goroutine that watches the list files and sweeps expired
// bans, and with Redis two more that share bans; Close stops them.
type Filter struct {
	cfg    Config // defaults applied
	v6Bits int
	log    *slog.Logger
	rules  rules
	clock  func() time.Time // for the admin handler and background work only

	reloadMu sync.Mutex // serialises list reloads; guards files
	files    []*listFile
	lists    atomic.Pointer[lists]

	bans    *banStore
	strikes *strikeTable
	stats   *stats
	sync    *syncer // nil without Redis
	// releaseSync gives sync back to syncers.
	releaseSync func() error

	stop      chan struct{}
	cancel    context.CancelFunc // ends a fetch in progress at Close
	ctx       context.Context
	done      chan struct{}
	closeOnce sync.Once
}

// New builds the stage: it reads every list file (an unreadable or malformed
// one fails New), takes over bans, strike counts, counters and, when the
// Redis settings are unchanged, the Redis connection from env.Previous, and
// starts the background work.
func New(cfg Config, env filters.Env) (*Filter, error) {
	return build(cfg, env, time.Now)
}

// build is New with the clock the admin API and the ban sweeper read.
func build(cfg Config, env filters.Env, clock func() time.Time) (*Filter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("reputation: config: %w", err)
	}
	cfg = cfg.withDefaults()
	f := &Filter{
		cfg:    cfg,
		v6Bits: env.IPv6Prefix,
		log:    env.Log(stageName),
		rules:  newRules(cfg.Strikes),
		clock:  clock,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if err := f.openLists(cfg, env.Dir); err != nil {
		f.cancel()
		return nil, fmt.Errorf("reputation: loading lists: %w", err)
	}
	f.lists.Store(buildLists(f.files))

	prev, _ := env.Previous.(*Filter)
	if prev != nil {
		f.bans, f.strikes, f.stats = prev.bans, prev.strikes, prev.stats
		f.bans.resize(cfg.MaxTracked, cfg.MaxBans)
		f.strikes.resize(cfg.MaxTracked)
	} else {
		f.bans = newBanStore(cfg.MaxTracked, cfg.MaxBans)
		f.strikes = newStrikeTable(cfg.MaxTracked)
		f.stats = &stats{}
	}
	if !cfg.Redis.IsZero() {
		// The store is prev's when there is one, so a reload with the
		// same settings shares prev's syncer.
		f.sync, f.releaseSync, _ = syncers.Acquire(syncerKey(cfg, f.bans), func() (*syncer, error) {
			return newSyncer(cfg, f.bans, f.log), nil
		})
	}
	go f.maintain()
	return f, nil
}

// openLists reads every list file, and every list followed by URL from its
// copy on disk or, without one, from its URL.
func (f *Filter) openLists(cfg Config, dir string) error {
	cacheDir := resolvePath(dir, cfg.CacheDir)
	client := &http.Client{Timeout: fetchTimeout}
	var errs []error
	for _, l := range cfg.Lists {
		lf := &listFile{path: resolvePath(dir, l.File), action: l.Action}
		f.files = append(f.files, lf)
		if l.URL == "" {
			if _, err := lf.load(true); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		lf.path = filepath.Join(cacheDir, cacheName(l.URL))
		lf.remote = &remote{url: l.URL, every: l.Every.D(), cache: lf.path, client: client}
		if err := openRemote(f.ctx, lf, f.clock()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Name returns "reputation".
func (f *Filter) Name() string { return stageName }

// decision is what the lists and the bans say about an address.
type decision uint8

const (
	clean decision = iota
	allowed
	banned
	denyListed
)

func (f *Filter) decide(addr netip.Addr, now time.Time) decision {
	d, _ := f.standing(addr, now)
	return d
}

// standing is decide with the ban in force when the decision is banned.
func (f *Filter) standing(addr netip.Addr, now time.Time) (decision, *Ban) {
	l := f.lists.Load()
	if l.allow.Contains(addr) {
		return allowed, nil
	}
	if b, ok := f.bans.lookup(addr, now); ok {
		return banned, b
	}
	if l.deny.Contains(addr) {
		return denyListed, nil
	}
	return clean, nil
}

// Status is what the stage holds about one address: which of its lists
// or bans decides for it.
type Status struct {
	// State is StatusNone, StatusAllowListed, StatusBanned or
	// StatusDenyListed, in the order they are looked at: an allow list
	// entry wins over a ban, a ban over a deny list entry.
	State StatusState
	// Ban is the ban in force when State is StatusBanned.
	Ban *Ban
}

// StatusState names an address's standing.
type StatusState uint8

// The states of a Status.
const (
	StatusNone StatusState = iota
	StatusAllowListed
	StatusBanned
	StatusDenyListed
)

func (s StatusState) String() string {
	switch s {
	case StatusAllowListed:
		return "allowlisted"
	case StatusBanned:
		return "banned"
	case StatusDenyListed:
		return "denylisted"
	default:
		return "none"
	}
}

// StatusAt reports what the stage holds about addr at now, whatever its
// mode: what Check would decide on it, with the ban behind a ban. It
// reads the same lock-free tables as Check.
func (f *Filter) StatusAt(now time.Time, addr netip.Addr) Status {
	d, b := f.standing(addr.Unmap(), now)
	switch d {
	case allowed:
		return Status{State: StatusAllowListed}
	case banned:
		return Status{State: StatusBanned, Ban: b}
	case denyListed:
		return Status{State: StatusDenyListed}
	}
	return Status{}
}

// clientAddr is the address decisions are made on: the resolved client, or
// the key's address when the owner did not fill Client in.
func clientAddr(r *filters.Request) netip.Addr {
	if a := r.Client.Unmap(); a.IsValid() {
		return a
	}
	if r.Key == (filters.Key{}) {
		return netip.Addr{} // nothing known about the client: no decision
	}
	return r.Key.Addr()
}

// Check refuses (403) a client that is banned or on a deny list and not on
// an allow list. In shadow mode the deny comes back marked Shadow.
func (f *Filter) Check(r *filters.Request) filters.Verdict {
	var v filters.Verdict
	switch f.decide(clientAddr(r), r.Now) {
	case banned:
		f.stats.deniedBanned.Add(1)
		v = verdictBanned
	case denyListed:
		f.stats.deniedList.Add(1)
		v = verdictDenyList
	default:
		return filters.Allow
	}
	v.Shadow = f.cfg.Mode == filters.ModeShadow
	return v
}

// RefuseConn reports whether a connection from addr (after PROXY protocol)
// is to be closed at accept time: the address is banned or deny-listed and
// not allow-listed, and the stage is in block mode. The owner must only ask
// when addr is the client itself, not a trusted proxy in front of clients.
func (f *Filter) RefuseConn(addr netip.Addr, now time.Time) bool {
	if f.cfg.Mode != filters.ModeBlock {
		return false
	}
	switch f.decide(addr.Unmap(), now) {
	case banned, denyListed:
		f.stats.connRefused.Add(1)
		return true
	}
	return false
}

// Observe counts a deny of another stage as a strike against the client's
// key and bans the key when a threshold is reached. Shadow denies are
// counted in metrics only; this stage's own denies, denies for want of
// capacity (Verdict.Overload), denies counted against another identity
// (Verdict.NotClient, a quota on an API key), allow-listed clients and
// clients already banned are not counted. Time comes from the request.
func (f *Filter) Observe(e filters.Event) {
	r := e.Request
	if r == nil || !e.Verdict.Attributable() || e.Verdict.Stage == stageName || f.cfg.Mode == filters.ModeOff {
		return
	}
	stage := e.Verdict.Stage
	if e.Verdict.Shadow {
		f.stats.strikesShadow.inc(stage)
		return
	}
	f.stats.strikes.inc(stage)
	addr := clientAddr(r)
	if !addr.IsValid() {
		return
	}
	if f.lists.Load().allow.Contains(addr) {
		return
	}
	if _, ok := f.bans.lookup(addr, r.Now); ok {
		return
	}
	if !f.strikes.strikeAt(r.Now, r.Key, f.rules.index(stage), f.rules) {
		return
	}
	f.strikeBan(r.Now, keyPrefix(r.Key.Addr(), f.v6Bits), stage, e.Verdict.Reason)
}

// strikeBan bans p for the escalated ttl, or in shadow mode logs the ban it
// would make. With max_bans strike bans held it bans nothing, counts the
// refusal and logs it at most once per watch_interval of request time.
func (f *Filter) strikeBan(now time.Time, p netip.Prefix, source, reason string) {
	enforce := f.cfg.Mode == filters.ModeBlock
	b, what := f.bans.escalate(p, now, f.cfg.Ban.TTL.D(), f.cfg.Ban.MaxTTL.D(), f.cfg.Ban.Memory.D(), source, reason, enforce)
	switch what {
	case banInForce:
		return
	case banRefused:
		n := f.stats.bansRefused.Add(1)
		if f.stats.refusalLogDue(now, f.cfg.WatchInterval.D()) {
			f.log.Warn("ban refused: max_bans strike bans are held", "target", formatPrefix(p), "source", source,
				"reason", reason, "max_bans", f.cfg.MaxBans, "refused_total", n)
		}
		return
	}
	ttl := b.Expires.Sub(b.Created)
	if !enforce {
		f.stats.wouldBan.inc(source)
		f.log.Info("would ban (shadow mode)", "target", formatPrefix(p), "source", source, "reason", reason, "ttl", ttl, "level", b.Level)
		return
	}
	f.stats.bans.inc(source)
	f.log.Info("ban", "target", formatPrefix(p), "source", source, "reason", reason, "ttl", ttl, "level", b.Level, "expires", b.Expires)
	if f.sync != nil {
		f.sync.publish(p, b)
	}
}

// BanAt bans p from now for ttl on the operator's word, replacing any ban of
// exactly p, and shares the ban with the fleet when Redis is configured.
func (f *Filter) BanAt(now time.Time, p netip.Prefix, ttl time.Duration, reason string) (*Ban, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("reputation: banning %s: ttl %s must be positive", p, ttl)
	}
	if !p.IsValid() || p.Bits() == 0 || p.Masked() != p {
		return nil, fmt.Errorf("%w: banning %s: want a valid, masked prefix longer than /0", ErrTarget, p)
	}
	if reason == "" {
		reason = "operator"
	}
	b := &Ban{Prefix: p, Reason: reason, Source: SourceOperator, Created: now, Expires: now.Add(ttl)}
	f.bans.put(b)
	f.stats.bans.inc(SourceOperator)
	f.log.Info("ban", "target", formatPrefix(p), "source", SourceOperator, "reason", reason, "ttl", ttl, "expires", b.Expires)
	if f.sync != nil {
		f.sync.publish(p, b)
	}
	return b, nil
}

// UnbanAt lifts the ban of exactly p and forgets the strikes counted against
// it. It reports whether a ban of p was in force here at now; with Redis the
// unban is announced to the fleet either way, since another node may hold a
// ban this one missed.
func (f *Filter) UnbanAt(now time.Time, p netip.Prefix) (*Ban, bool) {
	b, ok := f.bans.remove(p)
	if p.IsSingleIP() || (p.Addr().Is6() && p.Bits() == keyPrefix(p.Addr(), f.v6Bits).Bits()) {
		f.strikes.forget(filters.KeyOf(p.Addr(), f.v6Bits))
	}
	if f.sync != nil {
		f.sync.publish(p, nil)
	}
	if ok && b.ActiveAt(now) {
		f.log.Info("unban", "target", formatPrefix(p))
		return b, true
	}
	return nil, false
}

// BansAt returns the bans in force at now, sorted by prefix.
func (f *Filter) BansAt(now time.Time) []*Ban { return f.bans.active(now) }

// Reload reads every list file again. A file that cannot be read or has a
// malformed line keeps its previous contents; the errors are returned
// (FILE:LINE: message) and logged.
func (f *Filter) Reload() error { return f.reloadLists(true) }

func (f *Filter) reloadLists(force bool) error {
	f.reloadMu.Lock()
	defer f.reloadMu.Unlock()
	var errs []error
	changed := false
	for _, lf := range f.files {
		c, err := lf.load(force)
		switch {
		case err == nil:
			lf.lastErr = ""
		case force || err.Error() != lf.lastErr:
			// A poll reports a broken or missing file once, not every tick.
			lf.lastErr = err.Error()
			errs = append(errs, err)
		}
		changed = changed || c
	}
	if changed {
		f.lists.Store(buildLists(f.files))
		f.log.Info("lists reloaded", "entries", f.lists.Load().sizes)
	}
	err := errors.Join(errs...)
	if err != nil {
		f.stats.listErrors.Add(1)
		f.log.Error("list refused, previous contents kept", "err", err)
	}
	return err
}

// maintain polls the list files and sweeps expired bans until Close.
func (f *Filter) maintain() {
	defer close(f.done)
	t := time.NewTicker(f.cfg.WatchInterval.D())
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			_ = f.reloadLists(false)
			f.refreshRemote(f.ctx, f.clock())
			f.bans.sweep(f.clock())
		}
	}
}

// Close stops the background work. Bans, strike counts and a Redis
// connection taken over by a newer Filter stay with it.
func (f *Filter) Close() error {
	f.closeOnce.Do(func() {
		close(f.stop)
		f.cancel()
		<-f.done
		if f.releaseSync != nil {
			_ = f.releaseSync()
		}
	})
	return nil
}

// RedisConnected reports whether the fleet's bans are being shared right
// now: false without Redis, or while Redis is unreachable.
func (f *Filter) RedisConnected() bool { return f.sync != nil && f.sync.connected() }

// CollectMetrics reports list sizes, bans held, bans made by source, bans
// refused at max_bans, strikes by stage, denies, early connection refusals
// and the Redis link. It costs the same however many bans are held.
func (f *Filter) CollectMetrics(emit func(filters.Sample)) {
	l := f.lists.Load()
	for i, lf := range f.files {
		emit(gauge("reputation_list_entries", "Entries in a reputation list file.", float64(l.sizes[i]), "file", lf.name(), "action", string(lf.action)))
	}
	emit(gauge("reputation_bans_active", "Bans held: in force, or expired within the last watch_interval and not yet swept.", float64(f.bans.held())))
	emit(counter("reputation_bans_refused_total", "Strike bans not made because max_bans strike bans were held.", f.stats.bansRefused.Load()))
	f.stats.bans.each(func(src string, v uint64) {
		emit(counter("reputation_bans_total", "Bans made on this node, by the stage whose strikes earned them or operator.", v, "source", src))
	})
	f.stats.wouldBan.each(func(src string, v uint64) {
		emit(counter("reputation_shadow_bans_total", "Bans shadow mode would have made, by source stage.", v, "source", src))
	})
	f.stats.strikes.each(func(stage string, v uint64) {
		emit(counter("reputation_strikes_total", "Denies of other stages counted as strikes, by stage.", v, "stage", stage, "shadow", "false"))
	})
	f.stats.strikesShadow.each(func(stage string, v uint64) {
		emit(counter("reputation_strikes_total", "Denies of other stages counted as strikes, by stage.", v, "stage", stage, "shadow", "true"))
	})
	emit(gauge("reputation_strikes_tracked", "Client keys with strike counts in memory.", float64(f.strikes.len())))
	emit(counter("reputation_denies_total", "Requests refused by the reputation stage.", f.stats.deniedBanned.Load(), "reason", ReasonBanned))
	emit(counter("reputation_denies_total", "Requests refused by the reputation stage.", f.stats.deniedList.Load(), "reason", ReasonDenyList))
	emit(counter("reputation_conn_refused_total", "Connections closed at accept time for a banned or deny-listed client.", f.stats.connRefused.Load()))
	emit(counter("reputation_list_errors_total", "List reloads that refused a file.", f.stats.listErrors.Load()))
	if s := f.sync; s != nil {
		up := 0.0
		if s.connected() {
			up = 1
		}
		emit(gauge("reputation_redis_connected", "1 while bans are shared through Redis.", up))
		emit(gauge("reputation_redis_pending", "Ban changes waiting to be written to Redis.", float64(s.pending())))
		emit(counter("reputation_redis_errors_total", "Failed Redis operations of the reputation stage.", s.errors.Load()))
		emit(counter("reputation_remote_updates_total", "Bans and unbans applied from other nodes.", s.remoteBans.Load(), "op", "ban"))
		emit(counter("reputation_remote_updates_total", "Bans and unbans applied from other nodes.", s.remoteUnbans.Load(), "op", "unban"))
		emit(counter("reputation_redis_dropped_total", "Ban changes not shared because the pending queue was full.", s.dropped.Load()))
	}
}

var (
	_ filters.Filter        = (*Filter)(nil)
	_ filters.Observer      = (*Filter)(nil)
	_ filters.ConnFilter    = (*Filter)(nil)
	_ filters.Closer        = (*Filter)(nil)
	_ filters.MetricsSource = (*Filter)(nil)
)
