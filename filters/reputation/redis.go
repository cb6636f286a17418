package reputation

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeguard/edgeguard/internal/usagepool"
	"github.com/gaissmai/bart"
	"github.com/redis/go-redis/v9"
)

// Fleet-wide bans live in one Redis hash, field = prefix, value = the ban as
// JSON with its expiry; every change is also published on a channel so that
// nodes apply it at once. A node loads the whole hash when it (re)connects
// and every resyncEvery, which repairs anything a dropped message missed.
// The hash also holds an "epoch" field, set once by whoever finds it absent:
// a changed epoch means Redis lost its data (a restart without
// persistence), and each node then writes its own active bans back. A node
// that had to drop a ban from its full queue writes back, at its next full
// sync, its active bans made since the first one it dropped.

const (
	epochField  = "epoch"
	resyncEvery = 30 * time.Second
	retryEvery  = time.Second
	syncTimeout = 5 * time.Second
	// maxPending bounds the bans queued while Redis is down; beyond it a ban
	// is not queued (counted as dropped) and the next full sync writes it
	// back. Unbans, which only operators make, are always queued: nothing
	// else would carry them.
	maxPending = 100_000
	// flushChunk bounds one pipeline.
	flushChunk = 1000
)

//go:embed prune.lua
var pruneSource string

var pruneScript = redis.NewScript(pruneSource)

// wire is a ban or unban as Redis holds and publishes it.
type wire struct {
	Op      string `json:"op,omitempty"` // "ban" or "unban"; messages only
	Target  string `json:"target"`
	Reason  string `json:"reason,omitempty"`
	Source  string `json:"source,omitempty"`
	Level   int    `json:"level,omitempty"`
	Created int64  `json:"created,omitempty"` // unix milliseconds
	Expires int64  `json:"expires,omitempty"` // unix milliseconds
	Node    string `json:"node,omitempty"`    // sender; messages only
}

func toWire(p netip.Prefix, b *Ban) wire {
	if b == nil {
		return wire{Op: "unban", Target: p.String()}
	}
	return wire{Op: "ban", Target: p.String(), Reason: b.Reason, Source: b.Source, Level: b.Level,
		Created: b.Created.UnixMilli(), Expires: b.Expires.UnixMilli()}
}

// decodeWire reads a message or hash value. The prefix must be canonical and
// the ban must have an expiry: Redis is shared, so its contents are checked
// like any other input.
func decodeWire(data []byte) (wire, netip.Prefix, *Ban, error) {
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return w, netip.Prefix{}, nil, fmt.Errorf("reputation: decoding a shared ban: %w", err)
	}
	p, err := netip.ParsePrefix(w.Target)
	if err != nil || p.Masked() != p || p.Addr().Zone() != "" || p.Addr().Is4In6() {
		return w, netip.Prefix{}, nil, fmt.Errorf("%w: shared ban target %q is not a canonical prefix", ErrTarget, w.Target)
	}
	if p.Bits() == 0 {
		// As ParseTarget: one bad writer must not ban every client of the fleet.
		return w, netip.Prefix{}, nil, fmt.Errorf("%w: shared ban target %q: a /0 would ban every address", ErrTarget, w.Target)
	}
	switch w.Op {
	case "unban":
		return w, p, nil, nil
	case "ban", "":
		if w.Expires <= 0 || w.Level < 0 || w.Level > 62 {
			return w, netip.Prefix{}, nil, fmt.Errorf("reputation: shared ban of %s: bad expiry or level", p)
		}
		return w, p, &Ban{Prefix: p, Reason: w.Reason, Source: w.Source, Level: w.Level,
			Created: time.UnixMilli(w.Created), Expires: time.UnixMilli(w.Expires)}, nil
	}
	return w, netip.Prefix{}, nil, fmt.Errorf("reputation: shared ban of %s: unknown op %q", p, w.Op)
}

// change is a ban (b != nil) or an unban waiting to be written to Redis.
type change struct {
	seq uint64
	ban *Ban
}

// syncer shares a banStore's bans through Redis. It is shared through
// syncers: a reloaded Filter that keeps the ban store and the Redis
// settings takes it over, and it stops when the last Filter using it is
// closed. Nothing on the request path waits
// for it: publish only queues, and mu is held only to read or change the
// queue and the sync's state, never across Redis calls or a rewrite of the
// ban table. (A strike ban still waits for the store's lock like any store
// write, the table rewrite of a full sync included.) Lock order: the
// store's, then mu (adopt reads the queue while the store replaces its
// bans); nothing takes the store's lock while holding mu.
type syncer struct {
	cfg     Config
	client  redis.UniversalClient
	key     string
	channel string
	node    string
	store   *banStore
	log     *slog.Logger
	clock   func() time.Time

	maxPending int // the constant maxPending; smaller in tests

	mu       sync.Mutex
	outbox   map[netip.Prefix]change // latest unwritten change per prefix
	seq      uint64
	needSync bool
	syncing  bool
	recent   map[netip.Prefix]bool // prefixes changed by messages during a sync
	epoch    string
	// droppedSince is the Created of the earliest ban dropped since the
	// last write-back; zero when none was.
	droppedSince time.Time

	wake chan struct{}
	// synced: the last full sync or write succeeded; subscribed: the
	// subscription is live. Bans are shared only while both hold.
	synced     atomic.Bool
	subscribed atomic.Bool
	errors     atomic.Uint64
	dropped    atomic.Uint64

	remoteBans, remoteUnbans atomic.Uint64

	ps     *redis.PubSub
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newSyncer(cfg Config, store *banStore, log *slog.Logger) *syncer {
	s := makeSyncer(cfg, store, log)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	// A PubSub with no channels yet does not dial: New never waits on Redis.
	s.ps = s.client.Subscribe(ctx)
	s.wg.Add(2)
	go s.subscribeLoop(ctx)
	go s.writeLoop(ctx)
	return s
}

// makeSyncer is newSyncer without the goroutines: its client dials nothing
// until used.
func makeSyncer(cfg Config, store *banStore, log *slog.Logger) *syncer {
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &syncer{
		cfg:        cfg,
		client:     cfg.Redis.NewClient(),
		key:        cfg.KeyPrefix + "bans",
		channel:    cfg.Channel,
		node:       hex.EncodeToString(id[:]),
		store:      store,
		log:        log.With("redis", cfg.Redis.Addrs),
		clock:      time.Now,
		maxPending: maxPending,
		outbox:     map[netip.Prefix]change{},
		needSync:   true,
		wake:       make(chan struct{}, 1),
	}
}

// syncers holds the process's syncers. A syncer serves one ban store, so
// its key names the store as well as the settings it syncs with.
var syncers usagepool.Pool[*syncer]

func syncerKey(cfg Config, store *banStore) string {
	return fmt.Sprintf("store=%p prefix=%q channel=%q redis=%s", store, cfg.KeyPrefix, cfg.Channel, cfg.Redis.Key())
}

// Close stops the syncer; changes still queued then are lost to the fleet
// (they stay in the local store). syncers calls it when the last Filter
// using the syncer lets go.
func (s *syncer) Close() error {
	s.cancel()
	_ = s.ps.Close() // interrupts a blocked receive
	s.wg.Wait()
	return s.client.Close()
}

// publish queues a ban (b != nil) or unban of p for the fleet. It never
// blocks. A ban that finds the queue full is dropped: it stays in the
// store, and the next full sync writes it back to Redis (a path the bound
// does not limit, the store being bounded itself) rather than delete it as
// a ban Redis does not know.
func (s *syncer) publish(p netip.Prefix, b *Ban) {
	s.mu.Lock()
	if _, queued := s.outbox[p]; !queued && b != nil && len(s.outbox) >= s.maxPending {
		if s.droppedSince.IsZero() || b.Created.Before(s.droppedSince) {
			s.droppedSince = b.Created
		}
		s.needSync = true
		s.mu.Unlock()
		s.dropped.Add(1)
		return
	}
	s.seq++
	s.outbox[p] = change{seq: s.seq, ban: b}
	s.mu.Unlock()
	s.poke()
}

func (s *syncer) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *syncer) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.outbox)
}

func (s *syncer) requestSync() {
	s.mu.Lock()
	s.needSync = true
	s.mu.Unlock()
	s.poke()
}

// connected reports whether bans are being shared right now.
func (s *syncer) connected() bool { return s.synced.Load() && s.subscribed.Load() }

func (s *syncer) failed(what string, err error, flag *atomic.Bool) {
	s.errors.Add(1)
	was := s.connected()
	flag.Store(false)
	if was {
		s.log.Warn("redis unreachable, bans stay local until it returns", "op", what, "err", err)
	}
}

// writeLoop writes queued changes and runs full syncs: at start, after a
// reconnect, every resyncEvery, and again every retryEvery while one fails.
func (s *syncer) writeLoop(ctx context.Context) {
	defer s.wg.Done()
	tick := time.NewTicker(retryEvery)
	defer tick.Stop()
	var lastSync time.Time
	for {
		s.mu.Lock()
		full := s.needSync || time.Since(lastSync) >= resyncEvery
		n := len(s.outbox)
		s.mu.Unlock()
		switch {
		case full:
			if err := s.fullSync(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.failed("sync", err, &s.synced)
			} else {
				lastSync = time.Now()
			}
		case n > 0:
			if err := s.flush(ctx); err != nil && ctx.Err() == nil {
				s.failed("write", err, &s.synced)
				// What else was missed is unknown: sync fully once back.
				s.mu.Lock()
				s.needSync = true
				s.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-tick.C:
		}
	}
}

// flush writes every queued change (set or delete in the hash, then
// publish) and drops from the queue those not superseded meanwhile.
func (s *syncer) flush(ctx context.Context) error {
	type item struct {
		p netip.Prefix
		c change
	}
	s.mu.Lock()
	items := make([]item, 0, len(s.outbox))
	for p, c := range s.outbox {
		items = append(items, item{p, c})
	}
	s.mu.Unlock()
	for len(items) > 0 {
		chunk := items[:min(len(items), flushChunk)]
		items = items[len(chunk):]
		pipe := s.client.Pipeline()
		for _, it := range chunk {
			w := toWire(it.p, it.c.ban)
			if it.c.ban != nil {
				stored := w
				stored.Op = ""
				v, _ := json.Marshal(stored)
				pipe.HSet(ctx, s.key, it.p.String(), v)
			} else {
				pipe.HDel(ctx, s.key, it.p.String())
			}
			w.Node = s.node
			msg, _ := json.Marshal(w)
			pipe.Publish(ctx, s.channel, msg)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("reputation: writing %d ban changes to redis: %w", len(chunk), err)
		}
		s.mu.Lock()
		for _, it := range chunk {
			if cur, ok := s.outbox[it.p]; ok && cur.seq == it.c.seq {
				delete(s.outbox, it.p)
			}
		}
		s.mu.Unlock()
	}
	return nil
}

// fullSync makes this node agree with Redis: it writes back its bans if
// Redis lost them (changed epoch) or it dropped some, writes its
// queued changes, then loads the hash and replaces its bans with it,
// keeping the prefixes changed locally or by messages since the sync began.
func (s *syncer) fullSync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	s.mu.Lock()
	s.needSync, s.syncing, s.recent = false, true, map[netip.Prefix]bool{}
	since := s.store.table.Load()
	s.mu.Unlock()
	ok := false
	defer func() {
		s.mu.Lock()
		s.syncing, s.recent = false, nil
		if !ok {
			s.needSync = true
		}
		s.mu.Unlock()
	}()

	var id [8]byte
	_, _ = rand.Read(id[:])
	if err := s.client.HSetNX(ctx, s.key, epochField, hex.EncodeToString(id[:])).Err(); err != nil {
		return fmt.Errorf("reputation: setting the ban epoch in %s: %w", s.key, err)
	}
	epoch, err := s.client.HGet(ctx, s.key, epochField).Result()
	if err != nil {
		return fmt.Errorf("reputation: reading the ban epoch of %s: %w", s.key, err)
	}
	now := s.clock()
	s.mu.Lock()
	if epoch != s.epoch || !s.droppedSince.IsZero() {
		// First contact, or Redis lost its data: what this node holds is
		// the best the fleet has; write it back. Redis kept its data but
		// this node dropped bans: write back those made since the first it
		// dropped, not the older ones, which Redis may have lifted since.
		var from time.Time
		if epoch == s.epoch {
			from = s.droppedSince
		}
		for _, b := range s.store.active(now) {
			if _, queued := s.outbox[b.Prefix]; !queued && !b.Created.Before(from) {
				s.seq++
				s.outbox[b.Prefix] = change{seq: s.seq, ban: b}
			}
		}
		s.epoch, s.droppedSince = epoch, time.Time{}
	}
	s.mu.Unlock()
	if err := s.flush(ctx); err != nil {
		return err
	}
	all, err := s.client.HGetAll(ctx, s.key).Result()
	if err != nil {
		return fmt.Errorf("reputation: loading bans from %s: %w", s.key, err)
	}
	want := make(map[netip.Prefix]*Ban, len(all))
	var expired [][2]string
	for field, v := range all {
		if field == epochField {
			continue
		}
		_, p, b, err := decodeWire([]byte(v))
		if err != nil || b == nil || p.String() != field {
			s.log.Warn("ignoring a malformed shared ban", "field", field, "err", err)
			continue
		}
		if !b.ActiveAt(now) {
			expired = append(expired, [2]string{field, v})
			continue
		}
		want[p] = b
	}
	added, removed := s.adopt(want, since, now)
	if !s.synced.Swap(true) {
		s.log.Info("bans synced with redis", "bans", len(want), "added", added, "removed", removed)
	}
	for _, e := range expired {
		if err := pruneScript.Run(ctx, s.client, []string{s.key}, e[0], e[1]).Err(); err != nil {
			s.log.Debug("pruning an expired shared ban", "field", e[0], "err", err)
		}
	}
	ok = true
	return nil
}

// adopt makes the store hold want, the active bans Redis held when a sync
// loaded them, except for the prefixes changed here since the sync began
// (since is the store's table then): queued for Redis, changed by a
// message, or changed in the store and not yet queued. The replace copies
// the queued and messaged prefixes under mu once it holds the store's lock,
// and releases mu before it rewrites the table: publish never waits for the
// rewrite. A change the copy misses is still kept: a local one was made in
// the store before it was queued, so the replace sees it against since, and
// a message's is made in the store after the replace, apply recording the
// prefix before it waits for the store's lock.
func (s *syncer) adopt(want map[netip.Prefix]*Ban, since *bart.Table[*Ban], now time.Time) (added, removed int) {
	return s.store.replace(want, since, now, func() map[netip.Prefix]bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		// After the sync's flush the queue holds only what was queued since.
		keep := make(map[netip.Prefix]bool, len(s.outbox)+len(s.recent))
		for p := range s.outbox {
			keep[p] = true
		}
		for p := range s.recent {
			keep[p] = true
		}
		return keep
	})
}

// subscribeLoop applies the fleet's messages. go-redis reconnects and
// resubscribes a PubSub by itself after an error; each (re)subscription
// confirmation triggers a full sync, since messages sent meanwhile are lost.
func (s *syncer) subscribeLoop(ctx context.Context) {
	defer s.wg.Done()
	ps := s.ps
	for ctx.Err() == nil {
		if err := ps.Subscribe(ctx, s.channel); err == nil {
			break
		} else if ctx.Err() == nil {
			s.failed("subscribe", err, &s.subscribed)
		}
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
	}
	for {
		msg, err := ps.ReceiveTimeout(ctx, 2*time.Second)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Quiet channel: make sure the connection is alive.
				if err := ps.Ping(ctx); err != nil {
					s.failed("ping", err, &s.subscribed)
				}
				continue
			}
			s.failed("subscribe", err, &s.subscribed)
			select {
			case <-ctx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				s.subscribed.Store(true)
				s.requestSync()
			}
		case *redis.Message:
			s.apply([]byte(m.Payload))
		}
	}
}

// apply applies another node's ban or unban.
func (s *syncer) apply(payload []byte) {
	w, p, b, err := decodeWire(payload)
	if err != nil {
		s.log.Warn("ignoring a malformed ban message", "err", err)
		return
	}
	if w.Node == s.node {
		return
	}
	s.mu.Lock()
	if s.recent != nil {
		s.recent[p] = true
	}
	s.mu.Unlock()
	if b == nil {
		s.store.remove(p)
		s.remoteUnbans.Add(1)
		return
	}
	if !b.ActiveAt(s.clock()) {
		return
	}
	s.store.put(b)
	s.remoteBans.Add(1)
}
