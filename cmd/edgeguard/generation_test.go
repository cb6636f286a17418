package main

import (
	"sync"
	"sync/atomic"
	"testing"
)

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestGenerationRetire: a retired generation admits no request, and is
// idle exactly when the last request that entered before has left.
func TestGenerationRetire(t *testing.T) {
	gen := newGeneration(nil)
	if !gen.enter() || !gen.enter() {
		t.Fatal("a live generation refused a request")
	}
	gen.retire()
	if gen.enter() {
		t.Fatal("a retired generation admitted a request")
	}
	gen.leave()
	if isClosed(gen.Idle()) {
		t.Fatal("idle with a request still inside")
	}
	gen.leave()
	if !isClosed(gen.Idle()) {
		t.Fatal("not idle after the last request left")
	}

	empty := newGeneration(nil)
	empty.retire()
	if !isClosed(empty.Idle()) {
		t.Fatal("a generation retired with no request inside is not idle")
	}
}

// TestGenerationRetireRace: requests entering while the generation is
// retired either back out or are counted; once idle, none is inside and
// none gets in.
func TestGenerationRetireRace(t *testing.T) {
	for range 200 {
		gen := newGeneration(nil)
		var inside, afterIdle atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50 {
					if !gen.enter() {
						continue
					}
					if isClosed(gen.Idle()) {
						afterIdle.Add(1)
					}
					inside.Add(1)
					inside.Add(-1)
					gen.leave()
				}
			}()
		}
		gen.retire()
		<-gen.Idle()
		if n := inside.Load(); n != 0 {
			t.Fatalf("idle with %d requests inside", n)
		}
		wg.Wait()
		if n := afterIdle.Load(); n != 0 {
			t.Fatalf("%d requests entered after the generation went idle", n)
		}
	}
}
