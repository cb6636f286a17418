package volumetric_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/filters/volumetric"
)

// An idle client at 10/s with burst 5 gets five requests through at once;
// the sixth waits exactly one interval. After idling 500ms (five intervals)
// the whole burst is back.
func ExampleLimiter_AllowAt() {
	l, err := volumetric.NewLimiter(volumetric.Config{
		Rate:  filters.Rate{Count: 10, Period: time.Second},
		Burst: 5,
	})
	if err != nil {
		panic(err)
	}
	key := filters.KeyOf(netip.MustParseAddr("192.0.2.1"), 64)
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for i := 1; i <= 6; i++ {
		ok, wait := l.AllowAt(now, key)
		fmt.Println(i, ok, wait)
	}
	ok, _ := l.AllowAt(now.Add(100*time.Millisecond), key)
	fmt.Println("after 100ms:", ok)
	// Silent from 100ms to 600ms.
	n := 0
	for {
		if ok, _ := l.AllowAt(now.Add(600*time.Millisecond), key); !ok {
			break
		}
		n++
	}
	fmt.Println("after 500ms idle:", n, "at once")
	// Output:
	// 1 true 0s
	// 2 true 0s
	// 3 true 0s
	// 4 true 0s
	// 5 true 0s
	// 6 false 100ms
	// after 100ms: true
	// after 500ms idle: 5 at once
}

func ExampleFilter_Check() {
	f, err := volumetric.New(volumetric.Config{Rate: filters.Rate{Count: 1, Period: time.Second}}, filters.Env{})
	if err != nil {
		panic(err)
	}
	addr := netip.MustParseAddr("2001:db8::7")
	r := &filters.Request{Client: addr, Key: filters.KeyOf(addr, 64), Now: time.Unix(1_800_000_000, 0)}
	f.Check(r)
	v := f.Check(r)
	fmt.Println(v.Deny, v.Status, v.Reason, v.RetryAfter)
	// Output:
	// true 429 rate 1s
}
