package filters

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Mode is how a stage acts on what it finds.
type Mode string

const (
	// ModeBlock enforces: a deny ends the chain.
	ModeBlock Mode = "block"
	// ModeShadow logs and counts what the stage would deny, and allows.
	ModeShadow Mode = "shadow"
	// ModeOff leaves the stage out of the chain.
	ModeOff Mode = "off"
)

// UnmarshalText accepts block, shadow or off; empty means block.
func (m *Mode) UnmarshalText(b []byte) error {
	if err := Mode(b).check(); err != nil {
		return fmt.Errorf("mode %w", err)
	}
	*m = Mode(b)
	if *m == "" {
		*m = ModeBlock
	}
	return nil
}

// Validate checks m as the mode field of a stage's block (or of a part of
// one, like a quota policy): nil for block, shadow, off and empty (block),
// a *FieldError for "mode" otherwise. A Config built in Go never passed
// UnmarshalText, so its Validate must ask.
func (m Mode) Validate() error {
	if err := m.check(); err != nil {
		return &FieldError{Field: "mode", Err: err}
	}
	return nil
}

func (m Mode) check() error {
	switch m {
	case "", ModeBlock, ModeShadow, ModeOff:
		return nil
	}
	return fmt.Errorf("%q: want block, shadow or off", string(m))
}

// Duration is a time.Duration written as Go writes durations: "50ms", "5s",
// "1m30s", "24h". A bare number is refused: its unit would be a guess.
type Duration time.Duration

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: want a number with a unit, like 50ms, 5s, 10m, 24h", b)
	}
	if v < 0 {
		return fmt.Errorf("duration %q: must not be negative", b)
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written with an optional unit: "512", "64KiB", "1MiB",
// "1GiB", or the decimal "1KB" / "1MB" / "1GB".
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

func (s *Size) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	mult := int64(1)
	num := text
	for _, u := range sizeUnits {
		if strings.HasSuffix(text, u.suffix) {
			mult, num = u.mult, strings.TrimSpace(strings.TrimSuffix(text, u.suffix))
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("size %q: want a whole number of bytes with an optional unit, like 1048576, 64KiB, 1MiB", b)
	}
	if n > math.MaxInt64/mult {
		return fmt.Errorf("size %q: too large", b)
	}
	*s = Size(n * mult)
	return nil
}

func (s Size) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(s), 10)), nil }

// Rate is a number of events per period, written "50/s", "600/m", "1000/h",
// "20000/d" or with an explicit period, "10/5s".
type Rate struct {
	Count  int64
	Period time.Duration
}

// ErrRate is wrapped by every Rate parse error.
var ErrRate = errors.New("filters: bad rate")

func (r *Rate) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		// The zero Rate's text (MarshalText): "not set", which each
		// stage's Validate refuses where a rate is required.
		*r = Rate{}
		return nil
	}
	parsed, err := ParseRate(string(b))
	if err != nil {
		return err
	}
	*r = parsed
	return nil
}

// ParseRate parses the text form of a Rate.
func ParseRate(s string) (Rate, error) {
	count, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Rate{}, fmt.Errorf("%w %q: want COUNT/PERIOD, like 50/s or 600/m", ErrRate, s)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(count), 10, 64)
	if err != nil || n <= 0 {
		return Rate{}, fmt.Errorf("%w %q: count must be a whole number above 0", ErrRate, s)
	}
	var period time.Duration
	switch per = strings.TrimSpace(per); per {
	case "s":
		period = time.Second
	case "m":
		period = time.Minute
	case "h":
		period = time.Hour
	case "d":
		period = 24 * time.Hour
	default:
		period, err = time.ParseDuration(per)
		if err != nil || period <= 0 {
			return Rate{}, fmt.Errorf("%w %q: period must be s, m, h, d or a positive duration like 5s", ErrRate, s)
		}
	}
	return Rate{Count: n, Period: period}, nil
}

// MarshalText writes the zero Rate (not set) as "", which UnmarshalText
// reads back: a config written as JSON (Caddy's) and read again is the
// same config.
func (r Rate) MarshalText() ([]byte, error) {
	if r == (Rate{}) {
		return nil, nil
	}
	return []byte(r.String()), nil
}

func (r Rate) String() string {
	switch r.Period {
	case time.Second:
		return fmt.Sprintf("%d/s", r.Count)
	case time.Minute:
		return fmt.Sprintf("%d/m", r.Count)
	case time.Hour:
		return fmt.Sprintf("%d/h", r.Count)
	case 24 * time.Hour:
		return fmt.Sprintf("%d/d", r.Count)
	}
	return fmt.Sprintf("%d/%s", r.Count, r.Period)
}

// IsZero reports whether the rate was never set.
func (r Rate) IsZero() bool { return r.Count == 0 }

// Interval returns the emission interval: the time one event "costs" at this
// rate (Period/Count), at least 1ns. Zero for an unset rate.
func (r Rate) Interval() time.Duration {
	if r.Count <= 0 {
		return 0
	}
	iv := r.Period / time.Duration(r.Count)
	if iv <= 0 {
		iv = 1
	}
	return iv
}

// FieldError is a validation error about one field of a stage's config.
// Field is the path below the stage's key in the config file, with dots and
// [index]: "burst", "policies[1].rate". The config loader turns it into
// FILE:LINE: message.
type FieldError struct {
	Field string
	Err   error
}

// Error is the field's path and what is wrong with it, each said once. A
// sentinel's text starts with its package's name ("filters: bad rate"),
// which tells a Go caller where the error came from; after a field path it
// only stutters ("volumetric.rate: filters: bad rate"), so an error that
// starts with the text of a sentinel it wraps loses that name here:
// `volumetric.rate: bad rate "50 per second": …`.
func (e *FieldError) Error() string { return e.Field + ": " + withoutPackage(e.Err) }
func (e *FieldError) Unwrap() error { return e.Err }

// withoutPackage is err's text without the "pkg: " its first words repeat
// from a sentinel it wraps; any other text is left as it is, so a file
// name ("deny.txt:3: …") is never taken for a package.
func withoutPackage(err error) string {
	msg := err.Error()
	for w := errors.Unwrap(err); w != nil; w = errors.Unwrap(w) {
		inner := w.Error()
		pkg, _, ok := strings.Cut(inner, ": ")
		if ok && strings.HasPrefix(msg, inner) && packageName(pkg) {
			return msg[len(pkg)+len(": "):]
		}
	}
	return msg
}

// packageName reports whether s can be a Go package name as error texts
// start with one: lower-case letters and digits, a letter first.
func packageName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// FieldErrorf returns a *FieldError for field with a formatted message.
func FieldErrorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// FieldErrors flattens a validation error (errors.Join trees, as Validate
// methods return) into its field errors, in order. A leaf that is not a
// *FieldError becomes one with an empty Field.
func FieldErrors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var fe *FieldError
		if errors.As(e, &fe) {
			out = append(out, fe)
			return
		}
		out = append(out, &FieldError{Err: e})
	}
	if err != nil {
		walk(err)
	}
	return out
}

// PrefixFields re-roots the field paths of a validation error under
// prefix: what a block's Validate returns about a nested block ("addrs[0]"
// of the redis block becomes "redis.addrs[0]"). Nil stays nil.
func PrefixFields(prefix string, err error) error {
	var out []error
	for _, fe := range FieldErrors(err) {
		field := prefix
		switch {
		case prefix == "":
			field = fe.Field
		case fe.Field != "":
			field = prefix + "." + fe.Field
		}
		out = append(out, &FieldError{Field: field, Err: fe.Err})
	}
	return errors.Join(out...)
}
