package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/quota"
	"github.com/edgeguard/edgeguard/internal/redisconf"
	"github.com/edgeguard/edgeguard/internal/redistest"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/throttled/throttled/v2"
	goredisstore "github.com/throttled/throttled/v2/store/goredisstore.v9"
)

// callers is the number of concurrent goroutines calling the limiter, the
// issue's figure of merit.
const callers = 64

// keys is how many distinct clients the callers spread over.
const keys = 1000

// commandCounter counts the commands a client sends (a pipeline counts
// each command in it), to report Redis commands per decision.
type commandCounter struct{ n atomic.Int64 }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

// run drives decide from callers goroutines and reports decisions/s and
// commands per decision. decide gets a key index and says whether the
// decision was an allow.
func run(b *testing.B, counter *commandCounter, decide func(k int) bool) {
	b.Helper()
	var denied atomic.Int64
	var next atomic.Int64
	b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	counter.n.Store(0)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		k := int(next.Add(1)) * 7919
		for pb.Next() {
			k++
			if !decide(k % keys) {
				denied.Add(1)
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "decisions/s")
	b.ReportMetric(float64(counter.n.Load())/float64(b.N), "cmds/op")
	if denied.Load() > 0 {
		b.Fatalf("%d of %d decisions denied; the benchmark measures allowed decisions", denied.Load(), b.N)
	}
}

func newClient(b *testing.B, addr string, counter *commandCounter) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr})
	c.AddHook(counter)
	b.Cleanup(func() { _ = c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkRedisGCRA compares one allowed GCRA decision against one local
// redis-server, 64 concurrent callers, in the same run: edgeguard's
// RedisStore (one EVALSHA; plain pool and with go-redis auto-pipelining),
// the whole quota stage (key hashing, headers, over-limit cache) on top of
// it, go-redis/redis_rate/v10 and throttled/v2.
func BenchmarkRedisGCRA(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	// A limit nobody reaches: every decision is an allow and writes state.
	const perSecond = 1_000_000_000

	keyNames := make([]string, keys)
	for i := range keyNames {
		keyNames[i] = fmt.Sprintf("bench:{k%d}", i)
	}
	storeBench := func(batch bool) func(b *testing.B) {
		return func(b *testing.B) {
			var counter commandCounter
			c := newClient(b, srv.Addr, &counter)
			s := quota.NewRedisStore(c)
			if batch {
				ap, err := c.AsyncAutoPipeline()
				if err != nil {
					b.Fatal(err)
				}
				s = quota.NewBatchedRedisStore(ap)
			}
			lim := filters.Limit{Rate: filters.Rate{Count: 1, Period: time.Nanosecond}, Burst: 1 << 30}
			run(b, &counter, func(k int) bool {
				res := make([]quota.Result, 1)
				ok, err := s.Take(ctx, time.Time{}, []quota.Ask{{Key: keyNames[k], Limit: lim, Cost: 1}}, res)
				if err != nil {
					b.Error(err)
				}
				return ok
			})
		}
	}
	b.Run("edgeguard-store", storeBench(false))
	b.Run("edgeguard-store-batch", storeBench(true))
	for _, batch := range []bool{false, true} {
		name := "edgeguard-stage"
		if batch {
			name += "-batch"
		}
		b.Run(name, func(b *testing.B) {
			f, err := quota.New(quota.Config{
				Store:    quota.StoreRedis,
				Redis:    redisconf.Config{Addrs: []string{srv.Addr}, Timeout: filters.Duration(time.Second)},
				Key:      []string{"header:X-API-Key"},
				Batch:    map[bool]string{true: quota.BatchOn, false: quota.BatchOff}[batch],
				Policies: []quota.Policy{{Name: "bench", Rate: filters.Rate{Count: 1_000_000, Period: time.Second}, Burst: 1 << 30}},
			}, filters.Env{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = f.Close() })
			reqs := make([]*filters.Request, keys)
			addr := netip.MustParseAddr("127.0.0.1")
			for i := range reqs {
				h := httptest.NewRequest("GET", "/", nil)
				h.Header.Set("X-API-Key", fmt.Sprint("key-", i))
				// Forwarded by a trusted proxy: an API key header is believed
				// without a keys file only there.
				reqs[i] = &filters.Request{HTTP: h, Client: addr, Key: filters.KeyOf(addr, 64), Source: filters.SourceHeader}
			}
			var counter commandCounter // the stage's client is its own; commands are counted in the quota tests
			run(b, &counter, func(k int) bool {
				r := *reqs[k]
				r.Now = time.Now()
				return !f.Check(&r).Deny
			})
		})
	}
	b.Run("redis_rate", func(b *testing.B) {
		var counter commandCounter
		l := redis_rate.NewLimiter(newClient(b, srv.Addr, &counter))
		lim := redis_rate.Limit{Rate: perSecond, Burst: perSecond, Period: time.Second}
		run(b, &counter, func(k int) bool {
			res, err := l.Allow(ctx, keyNames[k], lim)
			if err != nil {
				b.Error(err)
				return false
			}
			return res.Allowed > 0
		})
	})
	b.Run("throttled", func(b *testing.B) {
		var counter commandCounter
		st, err := goredisstore.NewCtx(newClient(b, srv.Addr, &counter), "throttled:")
		if err != nil {
			b.Fatal(err)
		}
		l, err := throttled.NewGCRARateLimiterCtx(st, throttled.RateQuota{MaxRate: throttled.PerSec(1_000_000), MaxBurst: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		run(b, &counter, func(k int) bool {
			limited, _, err := l.RateLimitCtx(ctx, keyNames[k], 1)
			if err != nil {
				b.Error(err)
				return false
			}
			return !limited
		})
	})
}
