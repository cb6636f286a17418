package filters

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in       string
		want     Rate
		interval time.Duration
		err      bool
	}{
		{in: "50/s", want: Rate{50, time.Second}, interval: 20 * time.Millisecond},
		{in: "600/m", want: Rate{600, time.Minute}, interval: 100 * time.Millisecond},
		{in: "3600/h", want: Rate{3600, time.Hour}, interval: time.Second},
		{in: "1/d", want: Rate{1, 24 * time.Hour}, interval: 24 * time.Hour},
		{in: "10/5s", want: Rate{10, 5 * time.Second}, interval: 500 * time.Millisecond},
		{in: " 7 / s ", want: Rate{7, time.Second}, interval: time.Second / 7},
		{in: "", err: true},
		{in: "50", err: true},
		{in: "0/s", err: true},
		{in: "-1/s", err: true},
		{in: "x/s", err: true},
		{in: "5/fortnight", err: true},
		{in: "5/-1s", err: true},
		{in: "5/0s", err: true},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if tt.err {
			if err == nil || !errors.Is(err, ErrRate) {
				t.Errorf("ParseRate(%q) = %v, %v; want an ErrRate", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want || got.Interval() != tt.interval {
			t.Errorf("ParseRate(%q) = %v (interval %v), %v; want %v (interval %v)", tt.in, got, got.Interval(), err, tt.want, tt.interval)
		}
		back, err := ParseRate(got.String())
		if err != nil || back != got {
			t.Errorf("round trip of %v through %q = %v, %v", got, got.String(), back, err)
		}
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		err  bool
	}{
		{in: "512", want: 512},
		{in: "64KiB", want: 64 << 10},
		{in: "1MiB", want: 1 << 20},
		{in: "2 GiB", want: 2 << 30},
		{in: "1KB", want: 1000},
		{in: "3MB", want: 3e6},
		{in: "10B", want: 10},
		{in: "", err: true},
		{in: "-1", err: true},
		{in: "1.5MiB", err: true},
		{in: "1TiB", err: true},
		{in: "9999999999999GiB", err: true},
	}
	for _, tt := range tests {
		var s Size
		err := s.UnmarshalText([]byte(tt.in))
		if (err != nil) != tt.err || (!tt.err && s != tt.want) {
			t.Errorf("Size(%q) = %d, %v; want %d, err=%v", tt.in, s, err, tt.want, tt.err)
		}
	}
}

func TestDurationAndMode(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1m30s")); err != nil || d.D() != 90*time.Second {
		t.Errorf("1m30s = %v, %v", d, err)
	}
	for _, bad := range []string{"5", "-1s", "soon"} {
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("duration %q accepted", bad)
		}
	}
	var m Mode
	for in, want := range map[string]Mode{"block": ModeBlock, "shadow": ModeShadow, "off": ModeOff, "": ModeBlock} {
		if err := m.UnmarshalText([]byte(in)); err != nil || m != want {
			t.Errorf("mode %q = %q, %v", in, m, err)
		}
	}
	if err := m.UnmarshalText([]byte("detect")); err == nil {
		t.Error("mode detect accepted")
	}
}

// TestModeValidate: the one check every stage's Validate asks, for configs
// built in Go that never went through UnmarshalText.
func TestModeValidate(t *testing.T) {
	tests := []struct {
		m    Mode
		want string // "" for valid
	}{
		{m: ""}, {m: ModeBlock}, {m: ModeShadow}, {m: ModeOff},
		{m: "detect", want: `mode: "detect": want block, shadow or off`},
		{m: "Block", want: `mode: "Block": want block, shadow or off`},
	}
	for _, tt := range tests {
		err := tt.m.Validate()
		if tt.want == "" {
			if err != nil {
				t.Errorf("Mode(%q).Validate() = %v, want nil", tt.m, err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "mode" || err.Error() != tt.want {
			t.Errorf("Mode(%q).Validate() = %v, want the field error %q", tt.m, err, tt.want)
		}
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"50/s", "600/m", "10/5s", "0/s", "1/1ns", "9223372036854775807/s", "/", "x/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRate(s)
		if err != nil {
			return
		}
		if r.Count <= 0 || r.Period <= 0 || r.Interval() <= 0 {
			t.Fatalf("ParseRate(%q) = %+v: accepted a rate that is not positive", s, r)
		}
		back, err := ParseRate(r.String())
		if err != nil || back != r {
			t.Fatalf("round trip of %q: %+v -> %q -> %+v, %v", s, r, r.String(), back, err)
		}
	})
}

func FuzzSize(f *testing.F) {
	for _, s := range []string{"1MiB", "64KiB", "512", "1KB", "-1", "1.5GiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var sz Size
		if err := sz.UnmarshalText([]byte(s)); err == nil && sz < 0 {
			t.Fatalf("Size(%q) = %d: negative", s, sz)
		}
	})
}

func TestPrefixFields(t *testing.T) {
	inner := errors.Join(FieldErrorf("addrs[0]", "bad"), errors.New("plain"), errors.Join(FieldErrorf("db", "neg")))
	var got []string
	for _, fe := range FieldErrors(PrefixFields("quota.redis", inner)) {
		got = append(got, fe.Error())
	}
	want := []string{"quota.redis.addrs[0]: bad", "quota.redis: plain", "quota.redis.db: neg"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("field error %d = %q, want %q", i, got[i], want[i])
		}
	}
	if PrefixFields("x", nil) != nil || FieldErrors(nil) != nil {
		t.Error("nil must stay nil")
	}
}

// TestFieldErrorSaysThePackageOnce: under a field path, the package name a
// wrapped sentinel's text starts with is dropped; a file name or a text
// that only looks like "word: " without a sentinel behind it stays.
func TestFieldErrorSaysThePackageOnce(t *testing.T) {
	_, badRate := ParseRate("50 per second")
	sentinel := errors.New("quota: bad keys file")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{badRate, `rate: bad rate "50 per second": want COUNT/PERIOD, like 50/s or 600/m`},
		{fmt.Errorf("%w %q: no such file", sentinel, "k.txt"), `rate: bad keys file "k.txt": no such file`},
		{fmt.Errorf("%w: %v", errors.New("denylist"), "no such file"), `rate: denylist: no such file`},
		{fmt.Errorf("deny.txt:3: %w", sentinel), `rate: deny.txt:3: quota: bad keys file`},
		{errors.New("filters: not wrapped"), `rate: filters: not wrapped`},
		{fmt.Errorf("wrapped later: %w", badRate), `rate: wrapped later: filters: bad rate "50 per second": want COUNT/PERIOD, like 50/s or 600/m`},
	} {
		if got := (&FieldError{Field: "rate", Err: tc.err}).Error(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}
