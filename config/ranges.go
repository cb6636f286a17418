package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/edgeguard/edgeguard/filters"
)

// intProblem is a word where an integer goes: the problem's place among
// those found, the field, and what the walk said.
type intProblem struct {
	at    int
	field string
	kind  *kindErr
}

// intRange is the integers a field accepts: lo to hi, where an end at the
// type's own limit (min, max) is no bound at all. The zero value is a
// range nothing is known about.
type intRange struct {
	known    bool
	lo, hi   int64
	min, max int64
}

// String is the range as it follows "want an integer": " 1-4",
// " 0 or more", or "" when every integer will do or nothing is known.
func (r intRange) String() string {
	if !r.known {
		return ""
	}
	switch loOpen, hiOpen := r.lo == r.min, r.hi == r.max; {
	case loOpen && hiOpen:
		return ""
	case hiOpen:
		return fmt.Sprintf(" %d or more", r.lo)
	case loOpen:
		return fmt.Sprintf(" %d or less", r.hi)
	case r.lo < 0:
		return fmt.Sprintf(" from %d to %d", r.lo, r.hi)
	}
	return fmt.Sprintf(" %d-%d", r.lo, r.hi)
}

// intRange finds the integers field accepts by asking validation itself:
// it sets the field to trial values and watches whether Validate refuses
// them. The range so has one source, the blocks' own rules, and no table
// here can drift from them. It assumes that what a field accepts is one
// interval, as every bound in the config is; the rest of the file stays as
// it is, so a bound that depends on another setting is the one that holds
// for this file. The field is left as it was.
func (c *Config) intRange(field string) intRange {
	get, set, bits, ok := intAt(reflect.ValueOf(c).Elem(), splitPath(field))
	if !ok {
		return intRange{}
	}
	old := get()
	defer set(old)
	// 0 is what a field holds when the file leaves it out, and every
	// block reads it as "the default", not as a setting: the range is of
	// the values one writes (paranoia 1-4, not 0-4).
	accepts := func(x int64) bool {
		if x == 0 {
			return false
		}
		set(x)
		return c.accepts(field)
	}
	r := intRange{min: -1 << (bits - 1), max: 1<<(bits-1) - 1}
	for _, x := range []int64{1, 2, 10, 100, 1000, 1 << 16, 1 << 30, -1} {
		if x >= r.min && x <= r.max && accepts(x) {
			r.known, r.lo, r.hi = true, x, x
			break
		}
	}
	if !r.known {
		return intRange{}
	}
	good := r.lo
	r.lo, r.hi = r.min, r.max
	if !accepts(r.min) {
		r.lo = edge(r.min, good, accepts)
	}
	if !accepts(r.max) {
		r.hi = edge(r.max, good, accepts)
	}
	return r
}

// edge returns the accepted value farthest from good towards bad, by
// binary search between bad, refused, and good, accepted. Differences are
// taken unsigned: max-min overflows int64.
func edge(bad, good int64, accepts func(int64) bool) int64 {
	for {
		var mid int64
		if bad < good {
			d := uint64(good) - uint64(bad)
			if d <= 1 {
				return good
			}
			mid = bad + int64(d/2)
		} else {
			d := uint64(bad) - uint64(good)
			if d <= 1 {
				return good
			}
			mid = good + int64(d/2)
		}
		if accepts(mid) {
			good = mid
		} else {
			bad = mid
		}
	}
}

// accepts reports whether validation has nothing to say about field.
// A rule that panics on an odd trial value counts as a refusal.
func (c *Config) accepts(field string) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	for _, fe := range filters.FieldErrors(errors.Join(c.Validate(), c.ValidateEdge())) {
		if fe.Field == field {
			return false
		}
	}
	return true
}

// intAt finds the signed integer at path below v (path segments as
// splitPath makes them) and returns how to read and set it and its size in
// bits; ok is false when the path leads elsewhere (through an interface,
// a nil pointer, a missing element). A value inside a map is set on a
// copy that is stored back.
func intAt(v reflect.Value, path []string) (get func() int64, set func(int64), bits int, ok bool) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, nil, 0, false
		}
		v = v.Elem()
	}
	if len(path) == 0 {
		switch v.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			if v.CanSet() {
				return v.Int, v.SetInt, v.Type().Bits(), true
			}
		}
		return nil, nil, 0, false
	}
	seg, rest := path[0], path[1:]
	switch v.Kind() {
	case reflect.Struct:
		if f, found := fieldValue(v, seg); found {
			return intAt(f, rest)
		}
	case reflect.Slice:
		i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(seg, "["), "]"))
		if strings.HasPrefix(seg, "[") && err == nil && i >= 0 && i < v.Len() {
			return intAt(v.Index(i), rest)
		}
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			break
		}
		key := reflect.ValueOf(seg).Convert(v.Type().Key())
		elem := v.MapIndex(key)
		if !elem.IsValid() {
			break
		}
		cp := reflect.New(elem.Type()).Elem()
		cp.Set(elem)
		g, s, b, found := intAt(cp, rest)
		if !found {
			break
		}
		return g, func(x int64) { s(x); v.SetMapIndex(key, cp) }, b, true
	}
	return nil, nil, 0, false
}

// fieldValue is the field of struct v whose yaml tag names key, looking
// into inlined structs too (fieldByTag's, for a value).
func fieldValue(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if strings.Contains(opts, "inline") {
			if fv, ok := fieldValue(v.Field(i), key); ok {
				return fv, true
			}
			continue
		}
		if name == key && name != "-" && f.IsExported() {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}
