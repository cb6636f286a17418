package bodymem

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestPoolCountsUntilStream: bytes read count against the pool until
// Stream, a read past the maximum fails with ErrFull and status 503 and is
// counted, and Release gives everything back.
func TestPoolCountsUntilStream(t *testing.T) {
	p := NewPool(10)
	calls := 0
	a := p.Wrap(io.NopCloser(strings.NewReader("123456")), func() { calls++ })
	b := p.Wrap(io.NopCloser(strings.NewReader("abcdefgh")), nil)
	buf := make([]byte, 6)
	if n, err := a.Read(buf); n != 6 || err != nil || p.Held() != 6 || calls != 1 {
		t.Fatalf("a: %d %v, held %d, progress calls %d", n, err, p.Held(), calls)
	}
	_, err := b.Read(buf)
	var se interface{ StatusCode() int }
	if !errors.Is(err, ErrFull) || !errors.As(err, &se) || se.StatusCode() != 503 || p.Refused() != 1 || p.Held() != 6 {
		t.Fatalf("b past the max: %v, held %d, refused %d", err, p.Held(), p.Refused())
	}
	ctx := NewContext(context.Background(), b)
	Stream(ctx)
	if n, _ := b.Read(buf); n == 0 || p.Held() != 6 {
		t.Fatalf("streaming read: %d bytes, held %d; want bytes and nothing more held", n, p.Held())
	}
	Stream(context.Background()) // no body: nothing happens
	a.Release()
	b.Release()
	if p.Held() != 0 {
		t.Fatalf("after Release: held %d", p.Held())
	}
	unlimited := NewPool(0)
	c := unlimited.Wrap(io.NopCloser(strings.NewReader(strings.Repeat("x", 1000))), nil)
	if n, err := io.Copy(io.Discard, c); n != 1000 || err != nil || unlimited.Held() != 1000 {
		t.Fatalf("no limit: %d %v held %d", n, err, unlimited.Held())
	}
}

// TestWrapContext: the context WrapContext returns carries its Body for
// Stream, answers every other key and its cancellation from the parent,
// and the two come in one allocation.
func TestWrapContext(t *testing.T) {
	type key struct{}
	p := NewPool(0)
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), key{}, "v"))
	ctx, b := p.WrapContext(parent, io.NopCloser(strings.NewReader("123456")), nil)
	if _, err := b.Read(make([]byte, 4)); err != nil || p.Held() != 4 {
		t.Fatalf("read: %v, held %d, want 4", err, p.Held())
	}
	Stream(ctx)
	if _, err := b.Read(make([]byte, 4)); err != nil || p.Held() != 4 {
		t.Fatalf("after Stream(ctx): %v, held %d, want the 4 read before", err, p.Held())
	}
	if ctx.Value(key{}) != "v" {
		t.Errorf("the parent's value is lost: %v", ctx.Value(key{}))
	}
	cancel()
	if ctx.Err() == nil {
		t.Error("the parent's cancellation does not reach the context")
	}
	var sink *Body
	if n := testing.AllocsPerRun(100, func() { _, sink = p.WrapContext(parent, nil, nil) }); n != 1 || sink == nil {
		t.Errorf("WrapContext: %v allocations, want 1", n)
	}
}

// TestBytesReadCountsEverything: BytesRead is every byte read, before and
// after Stream and after Release, found through the context as
// WrapContext leaves it; a context without a Body says so. Drained turns
// true with the read that meets the end, not with the last bytes.
func TestBytesReadCountsEverything(t *testing.T) {
	p := NewPool(0)
	ctx, b := p.WrapContext(context.Background(), io.NopCloser(strings.NewReader("0123456789")), nil)
	buf := make([]byte, 4)
	for _, step := range []struct {
		do      func()
		want    int64
		drained bool
	}{
		{func() {}, 0, false},
		{func() { b.Read(buf) }, 4, false},
		{func() { Stream(ctx); b.Read(buf) }, 8, false},
		{func() { b.Read(buf) }, 10, false}, // the last bytes, not yet the end
		{func() { io.Copy(io.Discard, b) }, 10, true},
		{func() { b.Release() }, 10, true},
	} {
		step.do()
		if n, ok := BytesRead(ctx); !ok || n != step.want {
			t.Fatalf("BytesRead = %d, %v; want %d", n, ok, step.want)
		}
		if b.Drained() != step.drained {
			t.Fatalf("after %d bytes Drained() = %v, want %v", step.want, b.Drained(), step.drained)
		}
	}
	if _, ok := BytesRead(context.Background()); ok {
		t.Error("BytesRead found a Body in a bare context")
	}
}
