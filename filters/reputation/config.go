package reputation

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/redisconf"
)

// Defaults for the optional fields of Config; the zero value of a field means
// its default.
const (
	DefaultThreshold     = 10
	DefaultWindow        = time.Minute
	DefaultBanTTL        = 10 * time.Minute
	DefaultMaxBanTTL     = 24 * time.Hour
	DefaultBanMemory     = 24 * time.Hour
	DefaultMaxTracked    = 100_000
	DefaultMaxBans       = 100_000
	DefaultWatchInterval = 5 * time.Second
	DefaultKeyPrefix     = "edgeguard:reputation:"
)

// Action is what a list does to the addresses it holds.
type Action string

const (
	// ActionDeny refuses the listed addresses with 403.
	ActionDeny Action = "deny"
	// ActionAllow lets the listed addresses through this stage whatever the
	// deny lists and the bans say.
	ActionAllow Action = "allow"
)

// Config is the reputation: block of the config file.
type Config struct {
	// Mode is block (refuse banned and deny-listed clients), shadow (count
	// strikes, log the bans it would make and the requests it would refuse,
	// refuse nothing) or off. Empty means block.
	Mode filters.Mode `yaml:"mode" json:"mode"`
	// Lists are files of addresses and prefixes, one a line, IPv4 or IPv6
	// ("203.0.113.7", "198.51.100.0/24", "2001:db8::/48"); "#" or ";"
	// starts a comment, blank lines are skipped and fields after the
	// address are ignored unless one is an address too (so the Spamhaus
	// DROP/EDROP and FireHOL files are read as published). A prefix with bits set past its
	// length ("10.1.2.3/8") is refused as a likely typo. Relative paths are
	// resolved against the config file's directory. Files are read again on
	// Reload (SIGHUP) and when their size or modification time changes; a
	// file with a malformed line is refused whole and its previous contents
	// stay in force. An allow entry wins over every deny entry and every ban,
	// however specific those are.
	//
	// A list may instead be followed by URL ({url: …, every: 1h}): fetched
	// with If-None-Match/If-Modified-Since when due, kept in CacheDir, and
	// used from there across restarts. A fetch that fails, or brings a
	// malformed or empty list, leaves the last good copy in force; without
	// any copy (the first start) the stage does not build, rather than run
	// with the list empty.
	Lists []List `yaml:"lists" json:"lists"`
	// CacheDir is where lists followed by URL are kept, one file each (and
	// its validators in FILE.meta). Relative to the config file's
	// directory. Default "lists-cache" in the directory $STATE_DIRECTORY
	// names (systemd sets it for the unit in dist/, the container image
	// sets /var/lib/edgeguard), else beside the config file.
	CacheDir string `yaml:"cache_dir" json:"cache_dir"`
	// Strikes says how many denies from the other stages, within what time,
	// earn a client a ban.
	Strikes Strikes `yaml:"strikes" json:"strikes"`
	// Ban sets how long bans last and how they grow on repeat.
	Ban BanPolicy `yaml:"ban" json:"ban"`
	// MaxTracked bounds how many clients' strike counts (and ban histories,
	// for escalation) are kept; the least recently struck are forgotten
	// first. Default 100000 (a few tens of MB at most).
	MaxTracked int `yaml:"max_tracked" json:"max_tracked"`
	// MaxBans bounds how many bans earned by strikes are held: this node's
	// and those shared by the fleet through Redis, an expired one counting
	// until it is swept (watch_interval). A client rotating its key (every
	// /64 of an IPv6 /48) earns one ban per key; this bounds what that costs
	// in memory, in the sweep, in the Redis sync and in /metrics. Once it is
	// reached a client that earns a ban is not banned (the denies that
	// earned it still stand); each refusal is counted in
	// reputation_bans_refused_total and one is logged per watch_interval.
	// Bans from the fleet are always applied, and operator bans (the admin
	// API) are always accepted and not counted. Default 100000.
	MaxBans int `yaml:"max_bans" json:"max_bans"`
	// Redis, when it has addresses, shares bans with every node using the
	// same Redis: bans are stored there with their expiry and published on
	// Channel. Empty means bans stay on this node. Redis being down never
	// delays a request: local bans keep working and the node catches up when
	// Redis returns.
	Redis redisconf.Config `yaml:"redis" json:"redis"`
	// KeyPrefix starts the name of the Redis hash holding the fleet's bans
	// (KeyPrefix + "bans"). Nodes that must share bans use the same prefix.
	// Default "edgeguard:reputation:".
	KeyPrefix string `yaml:"key_prefix" json:"key_prefix"`
	// Channel is the Redis pub/sub channel bans and unbans are announced on.
	// Default KeyPrefix + "events".
	Channel string `yaml:"channel" json:"channel"`
	// WatchInterval is how often list files are checked for changes (size
	// and modification time) and expired bans are swept. Default 5s.
	WatchInterval filters.Duration `yaml:"watch_interval" json:"watch_interval"`
}

// List is one list: a file, or a URL followed on a schedule.
type List struct {
	// File is the path of the list; relative to the config file's directory.
	File string `yaml:"file" json:"file"`
	// URL is an http(s) URL the list is fetched from, instead of File.
	URL string `yaml:"url" json:"url"`
	// Every is how often URL is fetched again (a failed fetch is retried
	// after at most 5m). Default 1h.
	Every filters.Duration `yaml:"every" json:"every"`
	// Action is deny or allow.
	Action Action `yaml:"action" json:"action"`
}

// Strikes sets the ban thresholds. Every deny another stage makes counts as a
// strike against the client's key (an IPv4 address, or an IPv6 address
// collapsed to the configured prefix). A count starts with its first strike
// and lasts Window; reaching Threshold within it bans the key. A stage named
// in PerStage counts on its own; the others share the global count. Denies
// of stages in shadow mode are counted in metrics but never ban.
type Strikes struct {
	// Threshold is the number of strikes that bans. Default 10.
	Threshold int `yaml:"threshold" json:"threshold"`
	// Window is how long a count runs from its first strike. Default 1m.
	Window filters.Duration `yaml:"window" json:"window"`
	// PerStage gives a stage (by its name: waf, volumetric, quota) its own
	// count and threshold, e.g. {waf: {threshold: 5, window: 1m},
	// volumetric: {threshold: 50, window: 1m}}.
	PerStage map[string]StrikeRule `yaml:"per_stage" json:"per_stage"`
}

// StrikeRule is one stage's threshold.
type StrikeRule struct {
	// Threshold is the number of this stage's denies that bans. Zero means
	// the global threshold.
	Threshold int `yaml:"threshold" json:"threshold"`
	// Window is how long this stage's count runs. Zero means the global
	// window.
	Window filters.Duration `yaml:"window" json:"window"`
}

// BanPolicy sets how long bans last.
type BanPolicy struct {
	// TTL is how long a first ban lasts. Default 10m.
	TTL filters.Duration `yaml:"ttl" json:"ttl"`
	// MaxTTL caps the doubling of repeat bans. Default 24h; set it equal to
	// TTL to turn escalation off.
	MaxTTL filters.Duration `yaml:"max_ttl" json:"max_ttl"`
	// Memory is how long after a ban ends a new ban of the same key still
	// counts as a repeat (and lasts twice the previous one). Default 24h.
	Memory filters.Duration `yaml:"memory" json:"memory"`
}

// Validate checks the config without touching the disk or the network.
func (c Config) Validate() error {
	var errs []error
	if err := c.Mode.Validate(); err != nil {
		errs = append(errs, err)
	}
	for i, l := range c.Lists {
		errs = append(errs, l.validateSource(fmt.Sprintf("lists[%d]", i)))
		switch l.Action {
		case ActionDeny, ActionAllow:
		case "":
			errs = append(errs, filters.FieldErrorf(fmt.Sprintf("lists[%d].action", i), "is required: deny or allow"))
		default:
			errs = append(errs, filters.FieldErrorf(fmt.Sprintf("lists[%d].action", i), "%q: want deny or allow", l.Action))
		}
	}
	if c.Strikes.Threshold < 0 {
		errs = append(errs, filters.FieldErrorf("strikes.threshold", "must not be negative"))
	}
	if c.Strikes.Window < 0 {
		errs = append(errs, filters.FieldErrorf("strikes.window", "must not be negative"))
	}
	for _, stage := range sortedKeys(c.Strikes.PerStage) {
		r := c.Strikes.PerStage[stage]
		field := "strikes.per_stage." + stage
		if stage == "" {
			errs = append(errs, filters.FieldErrorf("strikes.per_stage", "a stage name is empty"))
		}
		if stage == stageName {
			errs = append(errs, filters.FieldErrorf(field, "the reputation stage's own denies are never strikes"))
		}
		if r.Threshold < 0 {
			errs = append(errs, filters.FieldErrorf(field+".threshold", "must not be negative"))
		}
		if r.Window < 0 {
			errs = append(errs, filters.FieldErrorf(field+".window", "must not be negative"))
		}
	}
	if c.Ban.TTL < 0 {
		errs = append(errs, filters.FieldErrorf("ban.ttl", "must not be negative"))
	}
	if c.Ban.MaxTTL < 0 {
		errs = append(errs, filters.FieldErrorf("ban.max_ttl", "must not be negative"))
	}
	if c.Ban.Memory < 0 {
		errs = append(errs, filters.FieldErrorf("ban.memory", "must not be negative"))
	}
	if d := c.withDefaults(); d.Ban.MaxTTL < d.Ban.TTL {
		errs = append(errs, filters.FieldErrorf("ban.max_ttl", "%s is shorter than ban.ttl %s", d.Ban.MaxTTL.D(), d.Ban.TTL.D()))
	}
	if c.MaxTracked < 0 {
		errs = append(errs, filters.FieldErrorf("max_tracked", "must not be negative"))
	}
	if c.MaxBans < 0 {
		errs = append(errs, filters.FieldErrorf("max_bans", "must not be negative"))
	}
	if c.WatchInterval < 0 {
		errs = append(errs, filters.FieldErrorf("watch_interval", "must not be negative"))
	}
	if err := c.Redis.Validate(); err != nil {
		errs = append(errs, filters.PrefixFields("redis", err))
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

// withDefaults returns c with every zero optional field set to its default.
func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = filters.ModeBlock
	}
	if c.Strikes.Threshold == 0 {
		c.Strikes.Threshold = DefaultThreshold
	}
	if c.Strikes.Window == 0 {
		c.Strikes.Window = filters.Duration(DefaultWindow)
	}
	if c.Ban.TTL == 0 {
		c.Ban.TTL = filters.Duration(DefaultBanTTL)
	}
	if c.Ban.MaxTTL == 0 {
		c.Ban.MaxTTL = filters.Duration(max(DefaultMaxBanTTL, c.Ban.TTL.D()))
	}
	if c.Ban.Memory == 0 {
		c.Ban.Memory = filters.Duration(DefaultBanMemory)
	}
	if c.MaxTracked == 0 {
		c.MaxTracked = DefaultMaxTracked
	}
	if c.MaxBans == 0 {
		c.MaxBans = DefaultMaxBans
	}
	if c.WatchInterval == 0 {
		c.WatchInterval = filters.Duration(DefaultWatchInterval)
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.CacheDir == "" {
		c.CacheDir = DefaultCacheDir
	}
	c.Lists = slices.Clone(c.Lists)
	for i := range c.Lists {
		if c.Lists[i].URL != "" && c.Lists[i].Every == 0 {
			c.Lists[i].Every = filters.Duration(DefaultListEvery)
		}
	}
	if c.Channel == "" {
		c.Channel = c.KeyPrefix + "events"
	}
	return c
}

// validateSource checks that l names one source, file or URL.
func (l List) validateSource(field string) error {
	switch {
	case l.File == "" && l.URL == "":
		return filters.FieldErrorf(field+".file", "is required (or url, for a list fetched from the web)")
	case l.File != "" && l.URL != "":
		return filters.FieldErrorf(field, "file and url are two sources: set one")
	case l.File != "" && l.Every != 0:
		return filters.FieldErrorf(field+".every", "applies to url lists; a file is watched on disk (watch_interval)")
	case l.Every < 0:
		return filters.FieldErrorf(field+".every", "must not be negative")
	}
	if l.URL != "" {
		if u, err := url.Parse(l.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return filters.FieldErrorf(field+".url", "%q: want an http(s) URL", l.URL)
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
