package main

import (
	"io"
	"net"
	"sync"
	"time"
)

// shaper is a loopback TCP proxy that limits throughput as one link would:
// each direction has its own token bucket of rate bytes per second, shared
// by every connection through it (the CLI sends contents four at a time).
type shaper struct {
	ln       net.Listener
	target   string
	up, down *bucket
}

// startShaper listens on 127.0.0.1 (a free port) and forwards to target.
func startShaper(target string, bitsPerSecond float64) (*shaper, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rate := bitsPerSecond / 8
	s := &shaper{ln: ln, target: target, up: newBucket(rate), down: newBucket(rate)}
	go s.serve()
	return s, nil
}

func (s *shaper) Addr() string { return s.ln.Addr().String() }
func (s *shaper) Close()       { s.ln.Close() }

func (s *shaper) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			t, err := net.Dial("tcp", s.target)
			if err != nil {
				return
			}
			defer t.Close()
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn, b *bucket) {
				shapedCopy(dst, src, b)
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(t, c, s.up)
			go pipe(c, t, s.down)
			<-done
			<-done
		}()
	}
}

// shapedCopy copies src to dst, taking a token per byte from b before
// writing it.
func shapedCopy(dst io.Writer, src io.Reader, b *bucket) {
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			b.take(n)
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// bucket is a token bucket of rate tokens (bytes) per second holding at
// most burst of them.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64) *bucket {
	return &bucket{rate: rate, burst: 32 << 10, tokens: 32 << 10, last: time.Now()}
}

// take waits until n tokens are there and takes them. Callers queue on the
// mutex, so concurrent connections share the rate.
func (b *bucket) take(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens -= float64(n)
	if b.tokens < 0 {
		wait := time.Duration(-b.tokens / b.rate * float64(time.Second))
		time.Sleep(wait)
		b.last = b.last.Add(wait)
		b.tokens = 0
	}
}
