package admission

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func mustNew(t *testing.T, limit, room int, timeout time.Duration) *Gate {
	t.Helper()
	g, err := New(limit, room, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestNewRefusesBadSettings(t *testing.T) {
	tests := []struct {
		name          string
		limit, room   int
		timeout       time.Duration
		wantErrSubstr string
	}{
		{"no slots", 0, 1, time.Second, "limit 0"},
		{"negative room", 1, -1, time.Second, "waiting room -1"},
		{"room without timeout", 1, 2, 0, "positive timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.limit, tt.room, tt.timeout)
			if err == nil || !strings.Contains(err.Error(), tt.wantErrSubstr) {
				t.Fatalf("New(%d, %d, %v) = %v, want an error saying %q", tt.limit, tt.room, tt.timeout, err, tt.wantErrSubstr)
			}
		})
	}
	if _, err := New(1, 0, 0); err != nil {
		t.Fatalf("no room needs no timeout: %v", err)
	}
}

// Slots are handed to waiters first in first out, and one caller beyond
// limit+room is refused at once.
func TestGateFIFO(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustNew(t, 1, 3, time.Minute)
		if err := g.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
		order := make(chan int, 3)
		for i := range 3 {
			go func() {
				if err := g.Acquire(context.Background()); err == nil {
					order <- i
				}
			}()
			synctest.Wait() // waiter i is queued before i+1 starts
		}
		if err := g.Acquire(context.Background()); !errors.Is(err, ErrFull) {
			t.Fatalf("beyond limit+room: %v, want ErrFull", err)
		}
		for want := range 3 {
			g.Release()
			if got := <-order; got != want {
				t.Fatalf("slot went to waiter %d, want %d", got, want)
			}
		}
		g.Release()
		if s := g.State(); s.InFlight != 0 || s.Queued != 0 || s.Admitted != 4 || s.Full != 1 {
			t.Fatalf("state %+v, want nothing held or queued, 4 admitted, 1 full", s)
		}
	})
}

func TestGateWithoutRoom(t *testing.T) {
	g := mustNew(t, 2, 0, 0)
	for i, want := range []error{nil, nil, ErrFull, ErrFull} {
		if err := g.Acquire(context.Background()); !errors.Is(err, want) || (want == nil && err != nil) {
			t.Fatalf("acquire %d: %v, want %v", i, err, want)
		}
	}
	g.Release()
	if err := g.Acquire(context.Background()); err != nil {
		t.Fatalf("a freed slot was not given out: %v", err)
	}
	if s := g.State(); s.InFlight != 2 || s.Full != 2 {
		t.Fatalf("state %+v, want 2 in flight and 2 refused", s)
	}
}

// A waiter gives up after exactly the timeout, on the fake clock, and its
// place is freed.
func TestGateTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustNew(t, 1, 1, 250*time.Millisecond)
		if err := g.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		err := g.Acquire(context.Background())
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("waiter: %v, want ErrTimeout", err)
		}
		if waited := time.Since(start); waited != 250*time.Millisecond {
			t.Fatalf("waited %v, want the timeout, 250ms", waited)
		}
		if s := g.State(); s.Queued != 0 || s.TimedOut != 1 || s.InFlight != 1 {
			t.Fatalf("state %+v, want the holder only and 1 timed out", s)
		}
		g.Release()
		if s := g.State(); s.InFlight != 0 {
			t.Fatalf("after release: %+v", s)
		}
	})
}

func TestGateCanceled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustNew(t, 1, 1, time.Minute)
		if err := g.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- g.Acquire(ctx) }()
		synctest.Wait()
		cancel()
		err := <-done
		if !errors.Is(err, ErrCanceled) || !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled waiter: %v, want ErrCanceled wrapping context.Canceled", err)
		}
		if s := g.State(); s.Queued != 0 || s.Canceled != 1 {
			t.Fatalf("state %+v, want the waiter gone and counted", s)
		}
		// The room is free again.
		go func() { done <- g.Acquire(context.Background()) }()
		synctest.Wait()
		g.Release()
		if err := <-done; err != nil {
			t.Fatalf("next waiter: %v", err)
		}
		g.Release()
	})
}

// Many callers at once never hold more than limit slots (run with -race).
func TestGateNeverOverLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustNew(t, 3, 5, time.Second)
		var held, peak, ok, refused int
		var mu = make(chan struct{}, 1)
		done := make(chan struct{})
		for range 40 {
			go func() {
				defer func() { done <- struct{}{} }()
				if err := g.Acquire(context.Background()); err != nil {
					mu <- struct{}{}
					refused++
					<-mu
					return
				}
				mu <- struct{}{}
				held++
				ok++
				peak = max(peak, held)
				<-mu
				time.Sleep(10 * time.Millisecond) // fake clock: the work
				mu <- struct{}{}
				held--
				<-mu
				g.Release()
			}()
		}
		for range 40 {
			<-done
		}
		if peak != 3 || ok != 8 || refused != 32 {
			t.Fatalf("peak %d admitted %d refused %d, want 3, 8 (limit+room), 32", peak, ok, refused)
		}
	})
}
