package quota

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed gcra.lua
var gcraLua string

// gcraScript is shared: go-redis's Script runs EVALSHA and falls back to
// EVAL (which loads the script again) when the server answers NOSCRIPT, as
// after a restart or SCRIPT FLUSH.
var gcraScript = redis.NewScript(gcraLua)

// RedisStore keeps GCRA state in Redis (single node, Sentinel or Cluster),
// one key per (policy, client), so every edge node sharing the Redis
// enforces one quota. A Take is one script call: one round trip.
type RedisStore struct {
	client redis.Scripter
	async  *redis.AutoPipeliner
	// callerClock makes the script decide at the caller's now instead of
	// the server's TIME. Only tests set it, to walk fixed instants through
	// the very script production runs.
	callerClock bool
}

// NewRedisStore returns a store over c, one script call per Take on c's
// connection pool.
func NewRedisStore(c redis.Scripter) *RedisStore {
	return &RedisStore{client: c}
}

// NewBatchedRedisStore returns a store whose Takes share pipelines with the
// other Takes in flight, through ap, which must be a client's
// AsyncAutoPipeline (go-redis's blocking face does not give up a batch when
// the caller's context ends; with the async face each Take waits for its
// own result only until ctx is done, so a dead Redis still costs a request
// no more than the timeout).
func NewBatchedRedisStore(ap *redis.AutoPipeliner) *RedisStore {
	return &RedisStore{client: ap, async: ap}
}

// Take implements Store. It decides at the Redis server's clock; now is
// ignored. The asks must share a hash tag (see Ask.Key). ctx bounds the
// call.
func (s *RedisStore) Take(ctx context.Context, now time.Time, asks []Ask, results []Result) (bool, error) {
	if err := checkAsks(asks, results); err != nil {
		return false, err
	}
	if len(asks) == 0 {
		return true, nil
	}
	keys := make([]string, len(asks))
	args := make([]any, 1, 1+4*len(asks))
	args[0] = int64(0)
	if s.callerClock {
		args[0] = now.UnixMicro()
	}
	for i := range asks {
		a := &asks[i]
		keys[i] = a.Key
		shadow := 0
		if a.Shadow {
			shadow = 1
		}
		args = append(args, a.Limit.GCRA(usTick).Interval, a.Limit.Burst, a.Cost, shadow)
	}
	reply, err := s.run(ctx, keys, args)
	if err != nil {
		return false, fmt.Errorf("%w: gcra script on %d keys (first %q): %w", ErrStore, len(keys), keys[0], err)
	}
	if len(reply) != 1+4*len(asks) {
		return false, fmt.Errorf("%w: gcra script answered %d numbers for %d keys", ErrStore, len(reply), len(keys))
	}
	for i := range asks {
		v := reply[1+4*i:]
		results[i] = Result{
			Allowed:    v[0] == 1,
			Remaining:  v[1],
			RetryAfter: time.Duration(v[2]) * time.Microsecond,
			ResetAfter: time.Duration(v[3]) * time.Microsecond,
		}
	}
	return reply[0] == 1, nil
}

// run is go-redis's Script.Run (EVALSHA, then EVAL on NOSCRIPT), through
// the async pipeliner when batching.
func (s *RedisStore) run(ctx context.Context, keys []string, args []any) ([]int64, error) {
	if s.async == nil {
		return gcraScript.Run(ctx, s.client, keys, args...).Int64Slice()
	}
	cmd, err := s.submit(ctx, "evalsha", gcraScript.Hash(), keys, args)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		cmd, err = s.submit(ctx, "eval", gcraLua, keys, args)
	}
	if err != nil {
		return nil, err
	}
	return cmd.Int64Slice()
}

func (s *RedisStore) submit(ctx context.Context, name, payload string, keys []string, args []any) (*redis.Cmd, error) {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, name, payload, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	a = append(a, args...)
	cmd := redis.NewCmd(ctx, a...)
	// After a context error the command may still be running in its batch:
	// its result must not be read.
	if err := s.async.Submit(ctx, cmd).WaitContext(ctx); err != nil {
		return nil, err
	}
	return cmd, nil
}

// Ping checks that Redis answers, for readiness probes.
func pingRedis(ctx context.Context, c redis.UniversalClient) error {
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("%w: ping redis: %w", ErrStore, err)
	}
	return nil
}

var _ Store = (*RedisStore)(nil)
