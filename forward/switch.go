package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/edgeguard/edgeguard/internal/redisconf"
	"github.com/edgeguard/edgeguard/internal/usagepool"
	"github.com/redis/go-redis/v9"
)

// ErrSwitch is wrapped by failures to change the fleet-wide closed switch.
var ErrSwitch = errors.New("forward: closed switch")

// switchClients holds the Redis clients of the closed switches built from
// closed_switch.redis, one per Redis setting: a reload builds the new
// Forwarder while the old one still holds the client, so the new switch
// subscribes on the same client instead of dialing another, and the last
// switch to close closes it.
var switchClients usagepool.Pool[redis.UniversalClient]

// switchClient returns the shared client for cfg and its release.
func switchClient(cfg redisconf.Config) (redis.UniversalClient, func() error, error) {
	return switchClients.Acquire(cfg.Key(), func() (redis.UniversalClient, error) { return cfg.NewClient(), nil })
}

// fleetSwitch keeps a node's closedSet in step with the fleet. The Redis set
// is the truth; pub/sub messages carry each change so that nodes apply it
// within a round trip, and a full read on every (re)subscription and every
// resync period heals whatever a disconnected node missed. A change made on
// this node while Redis failed is kept as a local override (closedSet) and
// written before each such read until Redis takes it.
type fleetSwitch struct {
	rdb     redis.UniversalClient
	release func() error // gives back a client from switchClients; nil: Env.Redis
	channel string
	setKey  string
	resync  time.Duration
	timeout time.Duration
	local   *closedSet
	log     *slog.Logger

	// wmu serialises writes of changes (change, flush), so that an
	// override retried by flush never lands after a newer change.
	wmu sync.Mutex

	ps     *redis.PubSub
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// start reads the closed routes once, so a node that starts in a sale
// knows what is closed before it serves, then follows the channel. Change
// messages are "1 NAME" (closed) and "0 NAME" (opened).
func (s *fleetSwitch) start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.load(ctx)
	s.ps = s.rdb.Subscribe(ctx, s.channel)
	msgs := s.ps.ChannelWithSubscriptions()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		tick := time.NewTicker(s.resync)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				s.load(ctx)
			case m, ok := <-msgs:
				if !ok {
					return
				}
				switch m := m.(type) {
				case *redis.Subscription:
					if m.Kind == "subscribe" {
						s.load(ctx)
					}
				case *redis.Message:
					state, name, ok := strings.Cut(m.Payload, " ")
					if ok && name != "" {
						s.local.setFromFleet(name, state == "1")
					}
				}
			}
		}
	}()
}

// load writes the local-only changes it can (flush), then replaces the
// local copy with the Redis set, with the changes still local on top.
func (s *fleetSwitch) load(ctx context.Context) {
	s.flush(ctx)
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	names, err := s.rdb.SMembers(ctx, s.setKey).Result()
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			s.log.Warn("closed switch: reading the closed routes failed; keeping the local copy", "key", s.setKey, "err", err)
		}
		return
	}
	s.local.replace(names)
}

// change records route's state in Redis and announces it. When that fails
// the change is kept as this node's override, for flush to retry.
func (s *fleetSwitch) change(ctx context.Context, route string, closed bool) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.set(ctx, route, closed); err != nil {
		s.local.keepLocal(route, closed)
		return err
	}
	// A local-only change of the route from before is superseded.
	s.local.setFromFleet(route, closed)
	return nil
}

// flush writes the local-only changes to Redis, dropping each one written;
// it stops at the first failure, leaving the rest for the next resync.
func (s *fleetSwitch) flush(ctx context.Context) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for route, closed := range s.local.overrides() {
		if err := s.set(ctx, route, closed); err != nil {
			if !errors.Is(err, context.Canceled) {
				s.log.Warn("closed switch: writing a change made on this node only failed; keeping it on this node", "route", route, "closed", closed, "err", err)
			}
			return
		}
		s.local.written(route, closed)
		s.log.Info("closed switch: wrote a change made on this node only; the fleet has it now", "route", route, "closed", closed)
	}
}

// set records route's state in Redis and announces it.
func (s *fleetSwitch) set(ctx context.Context, route string, closed bool) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	state := "0"
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if closed {
			state = "1"
			p.SAdd(ctx, s.setKey, route)
		} else {
			p.SRem(ctx, s.setKey, route)
		}
		p.Publish(ctx, s.channel, state+" "+route)
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: setting route %q closed=%v in %s: %w", ErrSwitch, route, closed, s.setKey, err)
	}
	return nil
}

func (s *fleetSwitch) close() error {
	s.cancel()
	err := s.ps.Close()
	s.wg.Wait()
	if s.release != nil {
		err = errors.Join(err, s.release())
	}
	return err
}
