package publish

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/release"
)

// stalled is an output that takes no bytes until its context ends, like a
// hung disk.
type stalled struct{ ctx context.Context }

func (s stalled) Write([]byte) (int, error) { <-s.ctx.Done(); return 0, s.ctx.Err() }

// TestPackStallTimesOut: a pack that stalls is cancelled after PackTimeout
// although its client still waits; the publish answers 504, frees its turn
// (the only one) for the next publish and leaves no staging behind.
func TestPackStallTimesOut(t *testing.T) {
	p, dep := newPublisher(t, 1)
	p.PackTimeout = 200 * time.Millisecond
	p.packDir = func(ctx context.Context, dir string, _ io.Writer, o release.PackOptions) (*release.Result, error) {
		return release.PackDir(ctx, dir, stalled{ctx}, o)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := p.Publish(t.Context(), dep, bytes.NewReader(siteTar(t, 1)), Options{Actor: "tester"})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) || Rejected(err) {
			t.Fatalf("stalled pack: %v, want a timeout (504: internal/problem's table)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stalled pack was not cancelled in 10 s")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancelled after %v", d)
	}
	p.packDir = nil
	if _, err := p.Publish(t.Context(), dep, bytes.NewReader(siteTar(t, 2)), Options{Actor: "tester"}); err != nil {
		t.Fatalf("the next publish: %v", err)
	}
	if left, _ := os.ReadDir(p.StageDir); len(left) != 0 {
		t.Fatalf("staging holds %d leftovers", len(left))
	}
}

// TestPackStallClientGone: a stalled pack ends as soon as its client goes
// away (the request's context), long before PackTimeout.
func TestPackStallClientGone(t *testing.T) {
	p, dep := newPublisher(t, 1)
	p.PackTimeout = time.Hour
	packing := make(chan struct{})
	p.packDir = func(ctx context.Context, dir string, _ io.Writer, o release.PackOptions) (*release.Result, error) {
		close(packing)
		return release.PackDir(ctx, dir, stalled{ctx}, o)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := p.Publish(ctx, dep, bytes.NewReader(siteTar(t, 1)), Options{Actor: "tester"})
		done <- err
	}()
	<-packing
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("stalled pack of a client gone: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stalled pack outlived its client by 10 s")
	}
}
