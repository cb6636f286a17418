package quota

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/redis/go-redis/v9"
)

// FleetSize is Config.FleetSize: a number of nodes, or 0 for auto.
type FleetSize int

// FleetAuto is fleet_size: auto, the count of the nodes that announce
// themselves in Redis.
const FleetAuto FleetSize = 0

// UnmarshalText reads "auto" or a whole number of nodes.
func (s *FleetSize) UnmarshalText(b []byte) error {
	if string(b) == "auto" {
		*s = FleetAuto
		return nil
	}
	n, err := strconv.Atoi(string(b))
	if err != nil || n < 1 {
		return fmt.Errorf("%q: want auto or a number of nodes, at least 1", b)
	}
	*s = FleetSize(n)
	return nil
}

// MarshalText writes "auto" or the number.
func (s FleetSize) MarshalText() ([]byte, error) {
	if s == FleetAuto {
		return []byte("auto"), nil
	}
	return []byte(strconv.Itoa(int(s))), nil
}

// Fleet tunes how the nodes of fleet_size: auto count each other.
type Fleet struct {
	// Announce is how often a node renews its entry in Redis. Default 2s.
	Announce filters.Duration `yaml:"announce,omitempty" json:"announce,omitempty"`
	// TTL is how long an entry counts without renewal: a node that stops
	// (or loses Redis) drops out of the others' count after it. Default
	// three announcements (6s), so one lost announcement drops nobody.
	TTL filters.Duration `yaml:"ttl,omitempty" json:"ttl,omitempty"`
	// Node names this node in Redis. Default the host name, the process
	// id and a random suffix: unique per process.
	Node string `yaml:"node,omitempty" json:"node,omitempty"`
}

// Defaults of Fleet.
const (
	DefaultFleetAnnounce = 2 * time.Second
	DefaultFleetTTLs     = 3 // TTL is this many announcements
)

// processNode is the default Fleet.Node: one per process, so the quota
// Filters of several routes and successive reloads are one node.
var processNode = sync.OnceValue(func() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
})

//go:embed fleet.lua
var fleetLua string

var fleetScript = redis.NewScript(fleetLua)

// fleet announces one node in a Redis sorted set and keeps the size of the
// fleet it last saw. The set is one key, scored by each member's expiry
// on the Redis server's clock: one key keeps the count one O(log N) call in
// a single Cluster slot (a key per node with a TTL would need a SCAN of
// every node to count), the server's clock keeps nodes with skewed clocks
// agreeing on who has expired, and expired members are removed by the
// next announcement of any node. The set itself expires with the TTL when
// every node is gone.
//
// A goroutine announces every interval until Close; size is read on the
// request path with one atomic load.
type fleet struct {
	client   redis.UniversalClient
	key      string
	node     string
	every    time.Duration
	ttl      time.Duration
	timeout  time.Duration
	log      *slog.Logger
	size     atomic.Int64 // the last count seen; 1 until Redis has answered
	failing  atomic.Bool
	stop     chan struct{}
	done     chan struct{}
	first    chan struct{} // closed once the first announcement has been tried
	stopOnce sync.Once
}

func newFleet(client redis.UniversalClient, key, node string, every, ttl, timeout time.Duration, log *slog.Logger) *fleet {
	f := &fleet{client: client, key: key, node: node, every: every, ttl: ttl, timeout: timeout, log: log,
		stop: make(chan struct{}), done: make(chan struct{}), first: make(chan struct{})}
	f.size.Store(1)
	return f
}

// start runs the announcements until Close.
func (f *fleet) start() *fleet {
	go f.run()
	return f
}

func (f *fleet) run() {
	defer close(f.done)
	t := time.NewTicker(f.every)
	defer t.Stop()
	for i := 0; ; i++ {
		f.announce(context.Background())
		if i == 0 {
			close(f.first)
		}
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
	}
}

// announce renews this node's entry and records the fleet's size. A
// failure keeps the last size: that is the count on_error: local divides by
// while Redis is gone.
func (f *fleet) announce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	n, err := fleetScript.Run(ctx, f.client, []string{f.key}, f.node, f.ttl.Microseconds()).Int64()
	if err != nil {
		if !f.failing.Swap(true) {
			f.log.Warn("fleet announcement failed: keeping the last size", "size", f.size.Load(), "err", err)
		}
		return
	}
	f.failing.Store(false)
	if old := f.size.Swap(max(n, 1)); old != n {
		f.log.Info("fleet size", "nodes", n, "was", old)
	}
}

// Size is the count of nodes last seen, at least 1.
func (f *fleet) Size() int64 { return f.size.Load() }

// Close stops the announcements and takes this node out of the set, so a
// node that stops cleanly leaves the count at once.
func (f *fleet) Close() error {
	f.stopOnce.Do(func() { close(f.stop) })
	<-f.done
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	if err := f.client.ZRem(ctx, f.key, f.node).Err(); err != nil {
		// Redis is away: the entry expires with its TTL instead.
		f.log.Info("leaving the fleet: entry left to expire", "node", f.node, "err", err)
	}
	return nil
}
