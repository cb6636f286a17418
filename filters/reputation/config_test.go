package reputation

import (
	"strings"
	"testing"
	"time"

	"github.com/edgeguard/edgeguard/filters"
	"github.com/edgeguard/edgeguard/internal/redisconf"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Config
		fields []string // FieldError fields expected, in order
	}{
		{"zero is valid", Config{}, nil},
		{"full", Config{
			Mode:    filters.ModeShadow,
			Lists:   []List{{File: "a", Action: ActionDeny}, {File: "b", Action: ActionAllow}},
			Strikes: Strikes{Threshold: 5, Window: filters.Duration(time.Minute), PerStage: map[string]StrikeRule{"waf": {Threshold: 5}}},
			Ban:     BanPolicy{TTL: filters.Duration(time.Minute), MaxTTL: filters.Duration(time.Hour)},
			Redis:   redisconf.Config{Addrs: []string{"127.0.0.1:6379"}},
		}, nil},
		{"bad mode", Config{Mode: "enforce"}, []string{"mode"}},
		{"lists", Config{Lists: []List{{Action: ActionDeny}, {File: "x", Action: "block"}, {File: "y"}}},
			[]string{"lists[0].file", "lists[1].action", "lists[2].action"}},
		{"strikes", Config{Strikes: Strikes{Threshold: -1, Window: -1, PerStage: map[string]StrikeRule{
			"reputation": {}, "waf": {Threshold: -2, Window: -1}}}},
			[]string{"strikes.threshold", "strikes.window", "strikes.per_stage.reputation", "strikes.per_stage.waf.threshold", "strikes.per_stage.waf.window"}},
		{"ban", Config{Ban: BanPolicy{TTL: filters.Duration(time.Hour), MaxTTL: filters.Duration(time.Minute)}}, []string{"ban.max_ttl"}},
		{"ttl above default max is fine", Config{Ban: BanPolicy{TTL: filters.Duration(48 * time.Hour)}}, nil},
		{"negatives", Config{MaxTracked: -1, MaxBans: -1, WatchInterval: -1}, []string{"max_tracked", "max_bans", "watch_interval"}},
		{"redis", Config{Redis: redisconf.Config{Addrs: []string{"nohostport"}, DB: -1}}, []string{"redis.addrs[0]", "redis.db"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			var got []string
			for _, fe := range filters.FieldErrors(err) {
				got = append(got, fe.Field)
			}
			if strings.Join(got, " ") != strings.Join(tt.fields, " ") {
				t.Errorf("fields %v, want %v (err: %v)", got, tt.fields, err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	d := Config{}.withDefaults()
	if d.Mode != filters.ModeBlock || d.Strikes.Threshold != DefaultThreshold || d.Strikes.Window.D() != DefaultWindow ||
		d.Ban.TTL.D() != DefaultBanTTL || d.Ban.MaxTTL.D() != DefaultMaxBanTTL || d.Ban.Memory.D() != DefaultBanMemory ||
		d.MaxTracked != DefaultMaxTracked || d.MaxBans != DefaultMaxBans || d.WatchInterval.D() != DefaultWatchInterval ||
		d.KeyPrefix != DefaultKeyPrefix || d.Channel != DefaultKeyPrefix+"events" {
		t.Errorf("defaults: %+v", d)
	}
}

func TestStrikeMemoryIsBounded(t *testing.T) {
	f := newFilter(t, Config{MaxTracked: 100, Strikes: Strikes{Threshold: 1000}}, nil)
	for i := range 10_000 {
		a := filters.KeyOf(netipAddr("10.0.0.0"), 64)
		a[12], a[13], a[14] = byte(i>>16), byte(i>>8), byte(i)
		f.Observe(filters.Event{Request: &filters.Request{Client: a.Addr(), Key: a, Now: t0}, Verdict: filters.Verdict{Deny: true, Stage: "volumetric"}})
	}
	if n := f.strikes.len(); n != 100 {
		t.Errorf("tracking %d keys, want the bound 100", n)
	}
}
