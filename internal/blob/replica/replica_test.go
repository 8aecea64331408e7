package replica

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/blob/blobtest"
	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/meta"
)

// TestConformance runs blobtest against a Store over three fs regions:
// reading the primary, reading a replica while a Replicator copies
// concurrently, and reading a replica that is never copied. Afterwards
// every region must be empty and no replica row left.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name, local string
		replicate   bool
	}{
		{"LocalPrimary", "", true},
		{"LocalReplica", "eu", true},
		{"LocalReplicaNoCopies", "eu", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			blobtest.Run(t, func(t *testing.T) blob.Store {
				e := newEnv(t, "us", "eu", "ap")
				s := e.store(tc.local)
				r := fastReplicator(s)
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				if tc.replicate {
					wg.Go(func() { r.Run(ctx) })
				}
				t.Cleanup(func() {
					cancel()
					wg.Wait()
					// Rows a stopped run had claimed come due when their lease ends.
					waitFor(t, "regions and rows to empty", func() bool {
						r.Sync(context.Background())
						return e.count("eu")+e.count("ap") == 0 && e.rows() == 0
					})
				})
				return s
			})
		})
	}
}

func TestLazyConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		dir := t.TempDir()
		return Lazy(func(context.Context) (blob.Store, error) { return fs.New(dir) }, 0)
	})
}

func TestLazyReopens(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	down, opens := true, 0
	l := Lazy(func(context.Context) (blob.Store, error) {
		mu.Lock()
		defer mu.Unlock()
		opens++
		if down {
			return nil, errDown
		}
		return fs.New(dir)
	}, 50*time.Millisecond)
	d := digest.FromString("x")
	if _, err := l.Stat(t.Context(), d); !errors.Is(err, ErrUnavailable) || Classify(err) != meta.ReasonUnreachable {
		t.Fatalf("Stat while down: %v (%s), want ErrUnavailable", err, Classify(err))
	}
	if _, err := l.Stat(t.Context(), d); !errors.Is(err, ErrUnavailable) || opens != 1 {
		t.Fatalf("Stat right after: %v after %d opens, want ErrUnavailable without a second open", err, opens)
	}
	if _, err := l.Stat(t.Context(), "sha256:bad"); !errors.Is(err, blob.ErrInvalidDigest) {
		t.Errorf("Stat of a bad digest while down: %v, want ErrInvalidDigest", err)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	waitFor(t, "the region to open", func() bool {
		_, err := l.Stat(t.Context(), d)
		return errors.Is(err, blob.ErrNotFound)
	})
}

func TestClassify(t *testing.T) {
	for err, want := range map[error]string{
		nil:                                  "",
		errDown:                              meta.ReasonUnreachable,
		context.DeadlineExceeded:             meta.ReasonUnreachable,
		ErrUnavailable:                       meta.ReasonUnreachable,
		blob.ErrDigestMismatch:               meta.ReasonMismatch,
		&sourceError{errors.New("x")}:        meta.ReasonSource,
		errors.New("something internal: /x"): meta.ReasonError,
		&sourceError{blob.ErrDigestMismatch}: meta.ReasonSource,
	} {
		if got := Classify(err); got != want {
			t.Errorf("Classify(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestNewChecks(t *testing.T) {
	e := newEnv(t, "us", "eu")
	us, eu := Region{"us", e.regions["us"]}, Region{"eu", e.regions["eu"]}
	for name, f := range map[string]func() error{
		"duplicate":     func() error { _, err := New(us, []Region{us}, e.meta, Options{}); return err },
		"unnamed":       func() error { _, err := New(us, []Region{{"", eu.Store}}, e.meta, Options{}); return err },
		"unknown local": func() error { _, err := New(us, []Region{eu}, e.meta, Options{Local: "ap"}); return err },
		"no state":      func() error { _, err := New(us, []Region{eu}, nil, Options{}); return err },
	} {
		if f() == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := New(us, nil, nil, Options{Local: "us"}); err != nil {
		t.Errorf("one region without state: %v", err)
	}
}
