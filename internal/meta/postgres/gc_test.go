package postgres_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/postgres"
)

// gcInvariants are queries that must count 0 at every moment: a version
// not collected whose release is (its bytes may be gone), a deployment
// whose active version is collected, a domain pinned to a collected version.
var gcInvariants = map[string]string{
	"live version of a collected release": `SELECT COUNT(*) FROM %[1]s.versions v JOIN %[1]s.releases r
		ON r.sha256 = v.artifact_sha256 WHERE v.collected_at IS NULL AND r.collected_at IS NOT NULL`,
	"collected active version": `SELECT COUNT(*) FROM %[1]s.deployments d JOIN %[1]s.versions v
		ON v.id = d.active_version_id WHERE v.collected_at IS NOT NULL`,
	"domain pinned to a collected version": `SELECT COUNT(*) FROM %[1]s.domains d JOIN %[1]s.versions v
		ON v.id = d.version_id WHERE v.collected_at IS NOT NULL`,
}

// TestGCRaces runs collections in one Store against activations, domain
// pins and leased publishes in two others, as separate processes would, on
// deployments with retention 0 that share releases. Every call succeeds or
// answers meta.ErrGone, and the invariants hold throughout.
func TestGCRaces(t *testing.T) {
	u, schema := freshSchema(t)
	a, ctx := admin(t), t.Context()
	gcs, w1, w2 := open(t, u), open(t, u), open(t, u)
	var deps []*meta.Deployment
	for i := range 2 {
		d := &meta.Deployment{Name: fmt.Sprint("site", i), Kind: meta.KindStatic}
		if err := gcs.CreateDeploymentWithPolicy(ctx, d, "tester"); err != nil {
			t.Fatal(err)
		}
		deps = append(deps, d)
		for c := range 4 {
			publish(t, gcs, d.ID, fmt.Sprint("c", c), true)
		}
		if err := gcs.CreateDomain(ctx, &meta.Domain{Hostname: d.Name + ".test", DeploymentID: d.ID}, "tester"); err != nil {
			t.Fatal(err)
		}
	}
	var (
		wg                 sync.WaitGroup
		stop               = make(chan struct{})
		gone, ok, collects atomic.Int64
	)
	loop := func(fn func(r *rand.Rand) error) {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(rand.Uint64(), 0))
			for {
				select {
				case <-stop:
					return
				default:
				}
				switch err := fn(r); {
				case errors.Is(err, meta.ErrGone):
					gone.Add(1)
				case err != nil:
					t.Error(err)
					return
				default:
					ok.Add(1)
				}
			}
		})
	}
	latest := func(s *postgres.Store, d *meta.Deployment) int64 {
		vs, err := s.ListVersions(ctx, d.ID, 1, 0)
		if err != nil || len(vs) == 0 {
			return 1
		}
		return vs[0].VersionNumber
	}
	loop(func(r *rand.Rand) error { // GC, grace 0
		n, err := collectAll(ctx, gcs, time.Now())
		collects.Add(int64(n))
		return err
	})
	loop(func(r *rand.Rand) error {
		d := deps[r.IntN(len(deps))]
		_, err := w1.Activate(ctx, d.ID, 1+r.Int64N(latest(w1, d)), "x", meta.ActionActivate)
		return err
	})
	loop(func(r *rand.Rand) error {
		d := deps[r.IntN(len(deps))]
		v, err := w2.GetVersionByNumber(ctx, d.ID, 1+r.Int64N(latest(w2, d)))
		if err != nil {
			return err
		}
		pin := &v.ID
		if r.IntN(3) == 0 {
			pin = nil
		}
		_, err = w2.SetDomainVersion(ctx, d.Name+".test", pin, "x")
		return err
	})
	loop(func(r *rand.Rand) error { return leasedPublish(ctx, w2, deps[r.IntN(len(deps))].ID, r) })
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		checkInvariants(t, a, schema)
	}
	close(stop)
	wg.Wait()
	checkInvariants(t, a, schema)
	t.Logf("%d calls, %d answered gone; %d versions collected", ok.Load(), gone.Load(), collects.Load())
	if collects.Load() == 0 || gone.Load() == 0 {
		t.Errorf("nothing raced: %d versions collected, %d gone", collects.Load(), gone.Load())
	}
}

// collectAll marks every unrooted release and collects it at once, as a
// collection with grace 0 does; it returns the versions collected.
func collectAll(ctx context.Context, g meta.GC, now time.Time) (int, error) {
	snap, err := g.GCSnapshot(ctx, now)
	if err != nil {
		return 0, err
	}
	roots := snap.Roots(now)
	var shas []string
	for _, r := range snap.Releases {
		if _, ok := roots[r.SHA256]; !ok && r.CollectedAt == nil {
			shas = append(shas, r.SHA256)
		}
	}
	if _, err := g.MarkCollecting(ctx, shas, now); err != nil {
		return 0, err
	}
	cs, err := g.CollectReleases(ctx, shas, now, now, "gc", time.Minute)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range cs {
		n += len(c.Versions)
	}
	return n, g.DropClaims(ctx, "gc", shas...)
}

// leasedPublish publishes one of a few contents as a publisher does: lease,
// wait out a deletion, (store the bytes,) commit the version, drop the
// lease. While the lease is held the release must not be collected.
func leasedPublish(ctx context.Context, s *postgres.Store, depID string, r *rand.Rand) error {
	sum := sha256.Sum256(fmt.Append(nil, "c", r.IntN(6)))
	sha, holder := hex.EncodeToString(sum[:]), fmt.Sprint("pub-", r.Uint64())
	for {
		deleting, err := s.HoldRelease(ctx, sha, holder, time.Minute)
		if err != nil {
			return err
		}
		if !deleting {
			break
		}
		time.Sleep(time.Millisecond)
	}
	defer s.DropRelease(context.WithoutCancel(ctx), sha, holder)
	_, err := s.CreateVersion(ctx, meta.NewVersion{DeploymentID: depID, Activate: r.IntN(2) == 0, Actor: "x",
		Release: meta.Release{SHA256: sha, SizeBytes: 1, URI: "file:///" + sha}})
	if err != nil {
		return err
	}
	time.Sleep(time.Duration(r.IntN(2000)) * time.Microsecond)
	if rel, err := s.GetRelease(ctx, sha); err != nil || rel.CollectedAt != nil {
		return fmt.Errorf("release %s collected while leased: %+v, %v", sha, rel, err)
	}
	return nil
}

func checkInvariants(t *testing.T, a *pgx.Conn, schema string) {
	t.Helper()
	for what, query := range gcInvariants {
		var n int
		if err := a.QueryRow(t.Context(), fmt.Sprintf(query, schema)).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d (%v)", what, n, err)
		}
	}
}
