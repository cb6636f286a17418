package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
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

// processed is the number of commands the redis-server at addr has
// executed, as it counts them (INFO stats total_commands_processed): each
// command of a pipeline, each redis.call inside a script, and the commands
// of clients the benchmark cannot hook (the quota stage's own). It is the
// work Redis does per decision, not the number of round trips.
func processed(b *testing.B, addr string) int64 {
	b.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(context.Background(), "stats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("INFO stats has no total_commands_processed")
	return 0
}

// run drives decide from callers goroutines and reports decisions/s and the
// Redis commands the server executed per decision (srv-cmds/op). decide gets a key index
// and says whether the decision was an allow.
func run(b *testing.B, addr string, decide func(k int) bool) {
	b.Helper()
	var denied atomic.Int64
	var next atomic.Int64
	b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	before := processed(b, addr)
	b.ResetTimer()
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
	// Minus one: the INFO that read the count before.
	cmds := processed(b, addr) - before - 1
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "decisions/s")
	b.ReportMetric(float64(cmds)/float64(b.N), "srv-cmds/op")
	if denied.Load() > 0 {
		b.Fatalf("%d of %d decisions denied; the benchmark measures allowed decisions", denied.Load(), b.N)
	}
}

func newClient(b *testing.B, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr})
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
// it, go-redis/redis_rate/v10 (plain pool and over go-redis's blocking
// auto-pipeliner, so that both sides are measured with and without
// pipelining) and throttled/v2.
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
			c := newClient(b, srv.Addr)
			s := quota.NewRedisStore(c)
			if batch {
				ap, err := c.AsyncAutoPipeline()
				if err != nil {
					b.Fatal(err)
				}
				s = quota.NewBatchedRedisStore(ap)
			}
			lim := filters.Limit{Rate: filters.Rate{Count: 1, Period: time.Nanosecond}, Burst: 1 << 30}
			run(b, srv.Addr, func(k int) bool {
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
				Batch:    map[bool]quota.Batch{true: quota.BatchOn, false: quota.BatchOff}[batch],
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
			run(b, srv.Addr, func(k int) bool {
				r := *reqs[k]
				r.Now = time.Now()
				return !f.Check(&r).Deny
			})
		})
	}
	rateBench := func(pipelined bool) func(b *testing.B) {
		return func(b *testing.B) {
			c := newClient(b, srv.Addr)
			var l *redis_rate.Limiter
			if pipelined {
				ap, err := c.AutoPipeline()
				if err != nil {
					b.Fatal(err)
				}
				l = redis_rate.NewLimiter(ap)
			} else {
				l = redis_rate.NewLimiter(c)
			}
			lim := redis_rate.Limit{Rate: perSecond, Burst: perSecond, Period: time.Second}
			run(b, srv.Addr, func(k int) bool {
				res, err := l.Allow(ctx, keyNames[k], lim)
				if err != nil {
					b.Error(err)
					return false
				}
				return res.Allowed > 0
			})
		}
	}
	b.Run("redis_rate", rateBench(false))
	b.Run("redis_rate-autopipeline", rateBench(true))
	b.Run("throttled", func(b *testing.B) {
		st, err := goredisstore.NewCtx(newClient(b, srv.Addr), "throttled:")
		if err != nil {
			b.Fatal(err)
		}
		l, err := throttled.NewGCRARateLimiterCtx(st, throttled.RateQuota{MaxRate: throttled.PerSec(1_000_000), MaxBurst: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		run(b, srv.Addr, func(k int) bool {
			limited, _, err := l.RateLimitCtx(ctx, keyNames[k], 1)
			if err != nil {
				b.Error(err)
				return false
			}
			return !limited
		})
	})
}
