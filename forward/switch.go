package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrSwitch is wrapped by failures to change the fleet-wide closed switch.
var ErrSwitch = errors.New("forward: closed switch")

// fleetSwitch keeps a node's closedSet in step with the fleet. The Redis set
// is the truth; pub/sub messages carry each change so that nodes apply it
// within a round trip, and a full read on every (re)subscription and every
// resync period heals whatever a disconnected node missed.
type fleetSwitch struct {
	rdb     redis.UniversalClient
	owned   bool // built from config, so closed by us
	channel string
	setKey  string
	resync  time.Duration
	timeout time.Duration
	local   *closedSet
	log     *slog.Logger

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
						s.local.set(name, state == "1")
					}
				}
			}
		}
	}()
}

// load replaces the local copy with the Redis set.
func (s *fleetSwitch) load(ctx context.Context) {
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
	if s.owned {
		err = errors.Join(err, s.rdb.Close())
	}
	return err
}
