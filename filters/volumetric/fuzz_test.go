package volumetric

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// FuzzAllowAt reads a limiter config and a schedule of arrivals from the
// input and checks every decision against the textbook GCRA. The first 4
// bytes are the config (data[3]%32 is the burst, 0 meaning the rate's
// count). Each arrival is 3 bytes: a key byte, a signed time step in units
// of interval/16 (negative: the clock went back), and a count n. Time only goes back
// while nothing can be evicted (the clock going back across a drained
// eviction is documented as inexact).
func FuzzAllowAt(f *testing.F) {
	f.Add([]byte{0, 10, 3, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1})
	f.Add([]byte{1, 0, 0, 4, 0, 0, 1, 0xf0, 1, 1, 0xff, 1, 2, 0x40, 1})
	f.Add([]byte{2, 200, 1, 3, 5, 0, 0, 7, 0x80, 2, 9, 0x7f, 1, 5, 0, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		cfg := Config{
			Rate:       filters.Rate{Count: 1 + int64(data[1]), Period: time.Duration(1+int(data[2])) * time.Millisecond},
			Burst:      int(data[3] % 32),
			MaxClients: 1 + int(data[0]%64),
			Shards:     1 + int(data[0]>>6),
		}
		l, err := NewLimiter(cfg)
		if err != nil {
			t.Fatalf("NewLimiter(%+v): %v", cfg, err)
		}
		evicting := cfg.MaxClients < 256 // keys come from one byte
		ref, burst := newTextbookGCRA(cfg)
		iv := ref.I
		now := t0.UnixNano()
		var forced uint64
		for p := data[4:]; len(p) >= 3; p = p[3:] {
			step := int64(int8(p[1])) * iv / 16
			if step < 0 && evicting {
				step = -step
			}
			now += step
			k := keyN(uint32(p[0]))
			n := 1 + int(p[2]%4)
			ok, wait := l.AllowNAt(time.Unix(0, now), k, n)
			// The reference takes n arrivals as all or nothing: try them
			// on a copy.
			want, wantWait := refN(ref, k, now, n, burst)
			if ok != want || wait != wantWait {
				t.Fatalf("cfg %+v, key %v, t=%d, n=%d: limiter ok=%v wait=%v, textbook ok=%v wait=%v", cfg, k, now, n, ok, wait, want, wantWait)
			}
			if st := l.Stats(); st.EvictedForced != forced {
				forced = st.EvictedForced
				for rk := range ref.tat {
					if !l.holds(rk) {
						delete(ref.tat, rk)
					}
				}
			}
			if l.Len() > cfg.MaxClients {
				t.Fatalf("%d clients held, cap %d", l.Len(), cfg.MaxClients)
			}
		}
	})
}

// refN applies n textbook arrivals at one instant, all or nothing; more
// than burst at one instant can never all conform.
func refN(g *textbookGCRA, k filters.Key, ta int64, n int, burst int64) (bool, time.Duration) {
	if int64(n) > burst {
		return false, Never
	}
	saved, had := g.tat[k]
	for range n {
		if ok, _ := g.arrive(k, ta); !ok {
			if had {
				g.tat[k] = saved
			} else {
				delete(g.tat, k)
			}
			// The wait for n is the wait until the last of them conforms.
			tat := max(saved, ta)
			if !had {
				tat = ta
			}
			return false, time.Duration(tat + int64(n-1)*g.I - g.L - ta)
		}
	}
	return true, 0
}

// FuzzConfigJSON decodes arbitrary JSON into a Config: Validate must
// never panic, and a config it accepts must build and admit exactly its
// burst (the rate's count when burst is 0) at once from an idle client.
func FuzzConfigJSON(f *testing.F) {
	f.Add(`{"rate":"50/s","burst":100,"max_clients":1000000}`)
	f.Add(`{"mode":"shadow","rate":"3000/m","burst":0,"max_clients":1,"shards":4096}`)
	f.Add(`{"rate":"1/d","burst":9223372036854775807}`)
	f.Add(`{"mode":"off"}`)
	f.Add(`{"rate":"4611686018427387904/s"}`)             // the default burst spans too long
	f.Add(`{"rate":"4611686018427387904/s","burst":1}`)   // strict pacing fits
	f.Add(`{"rate":"1/1099511627776ns","burst":1048576}`) // exactly at the span bound
	f.Fuzz(func(t *testing.T, in string) {
		var c Config
		if json.Unmarshal([]byte(in), &c) != nil {
			return
		}
		if c.MaxClients > 1<<16 {
			c.MaxClients = 1 << 16 // keep the fuzzer's memory bounded
		}
		err := c.Validate()
		if err != nil {
			var fe *filters.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate error %v names no field", err)
			}
			return
		}
		if c.Rate.IsZero() {
			return // mode off
		}
		l, err := NewLimiter(c)
		if err != nil {
			t.Fatalf("valid config %+v refused: %v", c, err)
		}
		var k filters.Key
		binary.BigEndian.PutUint64(k[8:], uint64(len(in)))
		if ok, _ := l.AllowAt(t0, k); !ok {
			t.Fatalf("first request of a new client refused with %+v", c)
		}
		burst := int64(c.Burst)
		if burst == 0 {
			burst = c.Rate.Count
		}
		k[0] = 1 // another idle client
		if ok, wait := l.AllowNAt(t0, k, int(burst)+1); ok || wait != Never {
			t.Fatalf("%d at once allowed (wait %v) with %+v: more than the burst", burst+1, wait, c)
		}
		if ok, wait := l.AllowNAt(t0, k, int(burst)); !ok {
			t.Fatalf("the whole burst of %d refused (wait %v) with %+v", burst, wait, c)
		}
		if ok, _ := l.AllowAt(t0, k); ok {
			t.Fatalf("request after the whole burst of %d allowed with %+v", burst, c)
		}
	})
}
