package s3_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/blob/faultproxy"
	"github.com/opencontainers/go-digest"
)

// TestRetriesBounded: against a server that always fails, every call gives
// up after a bounded number of requests, in bounded time.
func TestRetriesBounded(t *testing.T) {
	t.Parallel()
	through, direct, p := faulty(t)
	b := fixture(3, 6*mib)
	d := digest.FromBytes(b)
	if err := direct.Put(t.Context(), d, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	_, other := fixture(4, 100), digest.FromBytes(fixture(4, 100))
	ops := map[string]func(context.Context) error{
		"Stat": func(ctx context.Context) error { _, err := through.Stat(ctx, d); return err },
		"Open": func(ctx context.Context) error {
			rc, err := through.Open(ctx, d, 10, 100)
			if err == nil {
				rc.Close()
			}
			return err
		},
		"Delete":    func(ctx context.Context) error { return through.Delete(ctx, d) },
		"List":      func(ctx context.Context) error { return through.List(ctx, func(blob.Info) error { return nil }) },
		"Put small": func(ctx context.Context) error { return through.Put(ctx, other, -1, bytes.NewReader(fixture(4, 100))) },
	}
	writes := func(r *http.Request) bool { return r.Method == http.MethodPut || r.Method == http.MethodPost }
	for _, c := range []struct {
		plan    faultproxy.Plan
		max     int64 // requests per call
		maxTime time.Duration
		ops     []string
	}{
		{faultproxy.Plan{Fault: faultproxy.Status500, Fraction: 1}, attempts, 4 * time.Second,
			[]string{"Stat", "Open", "Delete", "List", "Put small"}},
		// net/http itself resends a GET or HEAD that broke on a reused
		// keep-alive connection before any answer (on another connection),
		// so a few more requests than attempts may arrive.
		{faultproxy.Plan{Fault: faultproxy.Reset, Fraction: 1}, 2 * attempts, 4 * time.Second,
			[]string{"Stat", "Open", "Delete", "List", "Put small"}},
		{faultproxy.Plan{Fault: faultproxy.Stall, Fraction: 1, Stall: 10 * time.Second}, attempts,
			attempts * (timeout + time.Second), []string{"Stat", "Open"}},
		// Uploads: the HEAD passes, then minio retries the PUT itself.
		{faultproxy.Plan{Fault: faultproxy.Status500, Fraction: 1, Match: writes}, 1 + attempts, 8 * time.Second,
			[]string{"Put small"}},
	} {
		p.Set(c.plan)
		for _, name := range c.ops {
			op := ops[name]
			p.ResetCounts()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			began := time.Now()
			err := op(ctx)
			took := time.Since(began)
			cancel()
			if err == nil {
				t.Errorf("fault %d: %s succeeded", c.plan.Fault, name)
			}
			if n := p.Requests(); n > c.max || took > c.maxTime {
				t.Errorf("fault %d: %s: %d requests in %v; want at most %d in %v (%v)", c.plan.Fault, name, n, took.Round(time.Millisecond), c.max, c.maxTime, err)
			}
			t.Logf("fault %d: %s: %d requests in %v", c.plan.Fault, name, p.Requests(), took.Round(time.Millisecond))
		}
	}
	// A large Put with every write failing: the staged upload gives up and
	// is cleaned up, within bounds.
	p.Set(faultproxy.Plan{Fault: faultproxy.Status500, Fraction: 1, Match: writes})
	p.ResetCounts()
	began := time.Now()
	big := fixture(5, 7*mib)
	if err := through.Put(t.Context(), digest.FromBytes(big), -1, bytes.NewReader(big)); err == nil {
		t.Error("large Put succeeded")
	}
	n, took := p.Requests(), time.Since(began).Round(time.Millisecond)
	if n > 4*attempts || took > 10*time.Second {
		t.Errorf("large Put: %d requests in %v", n, took)
	}
	t.Logf("large Put, writes failing: %d requests in %v", n, took)
	p.Clear()
	if err := direct.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}
