// Package bodymem bounds, process-wide, the memory that request bodies hold
// while the stages inspect them, and keeps a body that makes no progress
// from holding its connection.
//
// A body read before the request is forwarded (the WAF reads up to its
// body_limit to inspect it) stays in memory until the request ends; a body
// streamed to the upstream after the stages have passed it does not. So a
// Body counts what is read from it until Stream is called, against one
// Pool for the process, and gives it back on Release. A read that would
// take the pool past its maximum fails with an error whose StatusCode is
// 503: the server is out of room, not the client at fault. The bytes are
// counted as they arrive, never as a Content-Length claims: a slow client
// declaring a large body holds only what it has sent.
package bodymem

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
)

// ErrFull is returned (wrapped in an error whose StatusCode is 503) by a
// Read that would take the pool past its maximum.
var ErrFull = errors.New("bodymem: request bodies in memory are at their limit")

// Pool is the memory request bodies may hold at once, shared by every Body
// it wraps. It is safe for concurrent use.
type Pool struct {
	max     int64
	held    atomic.Int64
	refused atomic.Uint64
}

// NewPool returns a pool of max bytes; max <= 0 means no limit (bytes are
// still counted).
func NewPool(max int64) *Pool { return &Pool{max: max} }

// Held is the number of bytes the bodies in flight hold now.
func (p *Pool) Held() int64 { return p.held.Load() }

// Refused is the number of reads refused for want of room.
func (p *Pool) Refused() uint64 { return p.refused.Load() }

func (p *Pool) take(n int64) bool {
	if p.held.Add(n) > p.max && p.max > 0 {
		p.held.Add(-n)
		p.refused.Add(1)
		return false
	}
	return true
}

// Body is a request body whose bytes count against a Pool until Stream.
// Before each read it calls progress (the server pushes the connection's
// read deadline out: the body timeout is a time without progress).
type Body struct {
	io.ReadCloser
	pool      *Pool
	progress  func()
	held      atomic.Int64
	read      atomic.Int64 // every byte read, held or streamed: the access log's bytes_in
	streaming atomic.Bool
	drained   atomic.Bool // a read has returned io.EOF
}

// Wrap returns rc counted against p; progress may be nil.
func (p *Pool) Wrap(rc io.ReadCloser, progress func()) *Body {
	return &Body{ReadCloser: rc, pool: p, progress: progress}
}

func (b *Body) Read(buf []byte) (int, error) {
	if b.progress != nil {
		b.progress()
	}
	n, err := b.ReadCloser.Read(buf)
	b.read.Add(int64(n))
	if err == io.EOF {
		b.drained.Store(true)
	}
	if n > 0 && !b.streaming.Load() {
		if !b.pool.take(int64(n)) {
			return 0, fullError{}
		}
		b.held.Add(int64(n))
	}
	return n, err
}

// BytesRead is the number of bytes read from b so far, held or streamed:
// what the client actually sent, chunked or not, as far as it was read.
func (b *Body) BytesRead() int64 { return b.read.Load() }

// Drained says whether the body has been read to its end: nothing of it
// is left for anyone to read.
func (b *Body) Drained() bool { return b.drained.Load() }

// Stream stops counting: what is read from now on goes to the upstream as
// it arrives and is not held. What was read before stays counted until
// Release.
func (b *Body) Stream() { b.streaming.Store(true) }

// Release gives back what b holds; call it when the request has ended.
func (b *Body) Release() {
	b.streaming.Store(true)
	b.pool.held.Add(-b.held.Swap(0))
}

// fullError is ErrFull with the status the client is answered with.
type fullError struct{}

func (fullError) Error() string   { return ErrFull.Error() }
func (fullError) Unwrap() error   { return ErrFull }
func (fullError) StatusCode() int { return 503 }

type ctxKey struct{}

// NewContext returns ctx carrying b, for Stream to find.
func NewContext(ctx context.Context, b *Body) context.Context {
	return context.WithValue(ctx, ctxKey{}, b)
}

// WrapContext is Wrap and NewContext in one allocation, as every request
// with a body needs both: it returns ctx carrying the Body, and the Body.
func (p *Pool) WrapContext(ctx context.Context, rc io.ReadCloser, progress func()) (context.Context, *Body) {
	c := &bodyContext{Context: ctx}
	c.b.ReadCloser, c.b.pool, c.b.progress = rc, p, progress
	return c, &c.b
}

// bodyContext is a context that carries its Body in the same allocation.
type bodyContext struct {
	context.Context
	b Body
}

func (c *bodyContext) Value(key any) any {
	if key == (ctxKey{}) {
		return &c.b
	}
	return c.Context.Value(key)
}

// BytesRead is the number of bytes read so far from the Body in ctx; ok is
// false when ctx carries none (a request without a body, or a handler not
// behind the binary's server).
func BytesRead(ctx context.Context) (n int64, ok bool) {
	if b, ok := ctx.Value(ctxKey{}).(*Body); ok {
		return b.BytesRead(), true
	}
	return 0, false
}

// Stream tells the Body in ctx, if any, that the request has passed the
// stages and its body now streams to the upstream.
func Stream(ctx context.Context) {
	if b, ok := ctx.Value(ctxKey{}).(*Body); ok {
		b.Stream()
	}
}
