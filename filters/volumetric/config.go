package volumetric

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"time"

	"github.com/edgeguard/edgeguard/filters"
)

// Defaults and bounds for Config.
const (
	// DefaultMaxClients is the number of clients tracked when MaxClients is 0.
	DefaultMaxClients = 1_000_000
	// DefaultShards is the shard count when Shards is 0 (doubled until it is
	// at least 4×GOMAXPROCS on machines with more than 24 CPUs). Not a power
	// of two on purpose: at the default MaxClients it puts 10,417 clients in
	// each shard, which fills the Go map inside each LRU to about 64% of its
	// tables; 64 shards (15,625 each) land just past a table doubling at 48%
	// and cost about 16 more bytes per client.
	DefaultShards = 96
	// MaxShards bounds Shards: more would only waste memory on mutexes.
	MaxShards = 4096
	// maxTolerance bounds burst×interval (the resolved burst), the longest
	// debt a bucket may hold, so that time arithmetic in nanoseconds cannot
	// overflow.
	maxTolerance = time.Duration(1 << 60) // about 36 years
)

// Config is the volumetric block of the config file:
//
//	volumetric: {rate: "50/s", burst: 100, max_clients: 1000000}
type Config struct {
	// Mode is block (refuse with 429), shadow (count and report what would
	// be refused, allow everything) or off (leave the stage out). Empty
	// means block.
	Mode filters.Mode `yaml:"mode" json:"mode"`

	// Rate is the steady rate each client may keep up forever: "50/s",
	// "3000/m", "10/5s". One request then "costs" the emission interval
	// period/count (20ms at 50/s). Required unless mode is off; the config
	// file defaults it to 50/s, with a burst of 100.
	Rate filters.Rate `yaml:"rate" json:"rate"`

	// Burst is how many requests a client that has been idle long enough
	// may send at the same instant: an idle client gets exactly burst
	// requests through back to back and the next one is refused. This is
	// the definition every limiter of the project uses (the quota stage's
	// too). 0, or leaving it out, means the rate's count: "50/s" lets an
	// idle client send 50 at once. 1 means strict pacing: two requests less
	// than one interval apart are refused. Each interval of silence gives
	// one request of headroom back; after burst intervals the client has
	// its whole burst again. Negative is an error.
	//
	// Worked example, rate "10/s" (interval 100ms) and burst 5: an idle
	// client sends 6 requests at t=0. Requests 1 to 5 pass; the 6th gets
	// 429 with Retry-After: 1 (the exact wait is 100ms, rounded up to a
	// whole second). At t=100ms one more passes; after idling 500ms, at
	// t=600ms, the full burst is back and five pass at once again. A client
	// sending exactly 10 per second, evenly spaced, is never refused; over
	// any window of length W at most burst + W/interval requests pass.
	//
	// The same number in other tools: golang.org/x/time/rate's bucket size
	// b, go-redis/redis_rate's Limit.Burst and Traefik's rateLimit "burst"
	// all mean what burst means here: burst: 5 is b = 5, Burst: 5 and
	// Traefik burst: 5. nginx "limit_req burst=N nodelay" and redis-cell
	// "CL.THROTTLE key N ..." (max_burst N) both allow N+1 requests at
	// once, so they equal burst: N+1 here (nginx burst=5 nodelay is
	// burst: 6). nginx without nodelay queues and delays the excess
	// instead of refusing it; this stage never delays.
	Burst int `yaml:"burst" json:"burst"`

	// MaxClients caps the number of clients whose buckets are kept (one
	// entry, about 120 bytes, each). 0 means DefaultMaxClients (1,000,000).
	// When the cap is reached, a new client takes the slot of a client
	// whose bucket has drained (which loses nothing) or, failing that among
	// the few least recently used, of the least recently used one.
	MaxClients int `yaml:"max_clients" json:"max_clients"`

	// Shards splits the clients over this many independently locked LRUs,
	// so that cores do not queue on one mutex; each shard holds an equal
	// share of MaxClients. 0 means DefaultShards (96, doubled until at
	// least 4×GOMAXPROCS on larger machines), never more than MaxClients.
	// At most MaxShards (4096).
	Shards int `yaml:"shards" json:"shards"`
}

// Validate checks c without building anything. Each problem is a
// *filters.FieldError naming the field; they come joined.
func (c Config) Validate() error {
	var errs []error
	if err := c.Mode.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.Rate.IsZero() && c.Mode == filters.ModeOff:
		// An unused stage need not say how fast it would be.
	case c.Rate.IsZero():
		errs = append(errs, filters.FieldErrorf("rate", "is required: the steady rate per client, like \"50/s\""))
	case c.Rate.Count < 0 || c.Rate.Period <= 0:
		errs = append(errs, filters.FieldErrorf("rate", "%s: count and period must be above 0", c.Rate))
	}
	switch b := c.resolvedBurst(); {
	case c.Burst < 0:
		errs = append(errs, filters.FieldErrorf("burst", "%d: must be 0 or more (0 means the rate's count)", c.Burst))
	case c.Rate.Count <= 0 || c.Rate.Period <= 0:
		// No valid rate to resolve against or to span; reported above.
	case b > int64(maxTolerance/c.Rate.Interval()) || b > math.MaxInt: // MaxInt: where int is 32 bits
		what := strconv.Itoa(c.Burst)
		if c.Burst == 0 {
			what = fmt.Sprintf("0 (the rate's count, %d)", b)
		}
		errs = append(errs, filters.FieldErrorf("burst", "%s at %s: the bucket would span more than %s", what, c.Rate, maxTolerance))
	}
	if c.MaxClients < 0 {
		errs = append(errs, filters.FieldErrorf("max_clients", "%d: must be 1 or more (0 means %d)", c.MaxClients, DefaultMaxClients))
	}
	if c.Shards < 0 || c.Shards > MaxShards {
		errs = append(errs, filters.FieldErrorf("shards", "%d: must be between 1 and %d (0 means the default)", c.Shards, MaxShards))
	}
	return errors.Join(errs...)
}

// Build makes the stage from c: New, for the stage table.
func (c Config) Build(env filters.Env) (filters.Filter, error) {
	f, err := New(c, env)
	if err != nil {
		return nil, err // not a nil *Filter inside a non-nil interface
	}
	return f, nil
}

// resolvedBurst is the burst c asks for: Burst, or the rate's count when
// Burst is 0 (0 too when the rate is unset).
func (c Config) resolvedBurst() int64 {
	if c.Burst == 0 {
		return c.Rate.Count
	}
	return int64(c.Burst)
}

// withDefaults returns c with zero optional fields replaced by their
// defaults (Burst resolved to the rate's count) and Shards clamped to
// MaxClients. Every comparison of two configs, such as a reload's "rate or
// burst changed", is made on its result.
func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = filters.ModeBlock
	}
	// Validate has checked that the resolved burst fits an int.
	c.Burst = int(c.resolvedBurst())
	if c.MaxClients == 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.Shards == 0 {
		c.Shards = defaultShards(runtime.GOMAXPROCS(0))
	}
	if c.Shards > c.MaxClients {
		c.Shards = c.MaxClients
	}
	return c
}

func defaultShards(procs int) int {
	n := DefaultShards
	for n < 4*procs && n < MaxShards {
		n *= 2
	}
	return min(n, MaxShards)
}
