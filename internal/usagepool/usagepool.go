// Package usagepool shares a costly value, a Redis client or the sync that
// runs on one, among everything that asks for it under the same key, and
// closes it when the last of them lets go. A reload builds the new stage
// instances before it closes the old ones, so a value whose key has not
// changed passes from the old to the new without being closed or dialed
// again; instances that need the same Redis (a route's and the top level's)
// share one client instead of each dialing its own.
//
// It is the one reference count of the project: stages do not keep their
// own.
package usagepool

import (
	"io"
	"sync"
)

// Pool holds values by key, each with the count of its users. The zero
// Pool is ready to use; a Pool must not be copied after first use. It is
// safe for concurrent use.
type Pool[V io.Closer] struct {
	mu      sync.Mutex
	entries map[string]*entry[V]
}

type entry[V io.Closer] struct {
	value V
	users int
}

// Acquire returns the value under key and a release function, making the
// value with newValue when no one holds one (an error from newValue is
// returned as is, and nothing is stored). Each Acquire must be matched by
// one call of its release; further calls do nothing. The last release
// removes the value from the pool and closes it, returning Close's error.
//
// newValue runs with the pool locked: it must not block on the network
// (go-redis clients dial lazily) and must not use the pool.
func (p *Pool[V]) Acquire(key string, newValue func() (V, error)) (V, func() error, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.entries[key]
	if !ok {
		v, err := newValue()
		if err != nil {
			var zero V
			return zero, nil, err
		}
		e = &entry[V]{value: v}
		if p.entries == nil {
			p.entries = map[string]*entry[V]{}
		}
		p.entries[key] = e
	}
	e.users++
	var once sync.Once
	release := func() (err error) {
		once.Do(func() { err = p.release(key, e) })
		return err
	}
	return e.value, release, nil
}

func (p *Pool[V]) release(key string, e *entry[V]) error {
	p.mu.Lock()
	e.users--
	last := e.users == 0
	if last {
		delete(p.entries, key)
	}
	p.mu.Unlock()
	if !last {
		return nil
	}
	// Outside the lock: closing may wait for the value's goroutines, and
	// an Acquire of the same key meanwhile makes a fresh value.
	return e.value.Close()
}

// Users returns how many users hold the value under key; 0 when there is
// none.
func (p *Pool[V]) Users(key string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e, ok := p.entries[key]; ok {
		return e.users
	}
	return 0
}
