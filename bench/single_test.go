package bench

import (
	"context"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/quota"
	"github.com/edgeguard/edgeguard/internal/redistest"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// BenchmarkRedisGCRASerial is one caller at a time: the latency a lone
// request pays, where batching can only cost.
func BenchmarkRedisGCRASerial(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	lim := filters.Limit{Rate: filters.Rate{Count: 1, Period: time.Nanosecond}, Burst: 1 << 30}
	for _, batch := range []bool{false, true} {
		name := "edgeguard-store"
		if batch {
			name += "-batch"
		}
		b.Run(name, func(b *testing.B) {
			c := redis.NewClient(&redis.Options{Addr: srv.Addr})
			defer c.Close()
			s := quota.NewRedisStore(c)
			if batch {
				ap, err := c.AsyncAutoPipeline()
				if err != nil {
					b.Fatal(err)
				}
				s = quota.NewBatchedRedisStore(ap)
			}
			asks := []quota.Ask{{Key: "serial:{k}", Limit: lim, Cost: 1}}
			res := make([]quota.Result, 1)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Take(ctx, time.Time{}, asks, res); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("redis_rate", func(b *testing.B) {
		c := redis.NewClient(&redis.Options{Addr: srv.Addr})
		defer c.Close()
		l := redis_rate.NewLimiter(c)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := l.Allow(ctx, "serial:k", redis_rate.PerSecond(1_000_000_000)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
