package usagepool

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

type value struct {
	id     int
	closed atomic.Int32
}

func (v *value) Close() error {
	v.closed.Add(1)
	return nil
}

type maker struct{ made int }

func (m *maker) new() (*value, error) {
	m.made++
	return &value{id: m.made}, nil
}

// TestSharedUntilLastRelease walks one key through its users: one value
// while anyone holds it, closed exactly once by the last release, and a
// fresh one for whoever comes after.
func TestSharedUntilLastRelease(t *testing.T) {
	var p Pool[*value]
	var m maker
	a, releaseA, err := p.Acquire("redis://a", m.new)
	if err != nil {
		t.Fatal(err)
	}
	b, releaseB, _ := p.Acquire("redis://a", m.new)
	other, releaseOther, _ := p.Acquire("redis://b", m.new)
	steps := []struct {
		name       string
		do         func() error
		wantUsers  int
		wantClosed int32
	}{
		{"two users, one value", func() error { return nil }, 2, 0},
		{"first release keeps it open", releaseA, 1, 0},
		{"a second call of the same release does nothing", releaseA, 1, 0},
		{"the last release closes it", releaseB, 0, 1},
		{"and only once", releaseB, 0, 1},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if a != b || p.Users("redis://a") != s.wantUsers || a.closed.Load() != s.wantClosed {
			t.Fatalf("%s: same value %v, users %d, closed %d; want users %d, closed %d",
				s.name, a == b, p.Users("redis://a"), a.closed.Load(), s.wantUsers, s.wantClosed)
		}
	}
	if other == a || other.closed.Load() != 0 || p.Users("redis://b") != 1 {
		t.Fatal("another key shares the value or was closed with it")
	}
	c, releaseC, _ := p.Acquire("redis://a", m.new)
	if c == a || c.closed.Load() != 0 {
		t.Fatal("an Acquire after the last release got the closed value")
	}
	releaseC()
	releaseOther()
	if m.made != 3 {
		t.Fatalf("made %d values, want 3", m.made)
	}
}

func TestNewValueErrorStoresNothing(t *testing.T) {
	var p Pool[*value]
	boom := errors.New("boom")
	_, release, err := p.Acquire("k", func() (*value, error) { return nil, boom })
	if !errors.Is(err, boom) || release != nil || p.Users("k") != 0 {
		t.Fatalf("err %v, release %v, users %d", err, release != nil, p.Users("k"))
	}
	var m maker
	if v, release, err := p.Acquire("k", m.new); err != nil || v == nil {
		t.Fatalf("after a failed make: %v, %v", v, err)
	} else {
		release()
	}
}

// TestConcurrentUsers: every value made is closed exactly once, and none
// while a user holds it.
func TestConcurrentUsers(t *testing.T) {
	var p Pool[*value]
	var mu sync.Mutex
	var made []*value
	newValue := func() (*value, error) {
		v := &value{}
		mu.Lock()
		made = append(made, v)
		mu.Unlock()
		return v, nil
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				v, release, _ := p.Acquire("k", newValue)
				if v.closed.Load() != 0 {
					t.Error("got a closed value")
				}
				release()
			}
		}()
	}
	wg.Wait()
	for i, v := range made {
		if v.closed.Load() != 1 {
			t.Fatalf("value %d closed %d times", i, v.closed.Load())
		}
	}
}
