package quota_test

import (
	"fmt"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/quota"
)

// A limit of 10 per second with a burst of 3, walked over fixed instants.
func ExampleMemoryStore_TakeAt() {
	s := quota.NewMemoryStore(0)
	lim := filters.LimitOf(filters.Rate{Count: 10, Period: time.Second}, 3)
	asks := []quota.Ask{{Key: "api:{client-1}", Limit: lim, Cost: 1}}
	res := make([]quota.Result, 1)
	start := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	for _, at := range []time.Duration{0, 0, 0, 0, 100 * time.Millisecond} {
		ok, _ := s.TakeAt(start.Add(at), asks, res)
		fmt.Printf("+%v allowed=%v remaining=%d retry=%v\n", at, ok, res[0].Remaining, res[0].RetryAfter)
	}
	// Output:
	// +0s allowed=true remaining=2 retry=0s
	// +0s allowed=true remaining=1 retry=0s
	// +0s allowed=true remaining=0 retry=0s
	// +0s allowed=false remaining=0 retry=100ms
	// +100ms allowed=true remaining=0 retry=0s
}
