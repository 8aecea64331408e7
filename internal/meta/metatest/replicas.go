package metatest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// replicaTests check meta.Replicas.
var replicaTests = []test{
	{"Replicas/Lifecycle", testReplicaLifecycle},
	{"Replicas/Retry", testReplicaRetry},
	{"Replicas/Delete", testReplicaDelete},
	{"Replicas/ConcurrentClaims", testReplicaConcurrentClaims},
}

func blobDigest(content string) string { return "sha256:" + sha(content) }

// wantStates checks digest's rows: region → "state/attempts/reason".
func wantStates(t *testing.T, r meta.Replicas, digest string, want map[string]string) {
	t.Helper()
	got, err := r.ReplicaStatuses(t.Context(), digest)
	if err != nil {
		t.Fatalf("ReplicaStatuses: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("ReplicaStatuses(%s) = %v, want %v", digest, got, want)
	}
	for region, st := range got {
		if s := fmt.Sprintf("%s/%d/%s", st.State, st.Attempts, st.Error); s != want[region] {
			t.Errorf("%s in %s: %s, want %s", digest, region, s, want[region])
		}
		wantUTC(t, "updated_at", st.UpdatedAt)
		if (st.NextTryAt == nil) != (st.State == meta.ReplicaReady) {
			t.Errorf("%s in %s: state %s with next_try_at %v", digest, region, st.State, st.NextTryAt)
		}
	}
}

func claim(t *testing.T, r meta.Replicas, lease time.Duration, limit int) map[string]meta.Replica {
	t.Helper()
	rs, err := r.ClaimReplicas(t.Context(), lease, limit)
	if err != nil {
		t.Fatalf("ClaimReplicas: %v", err)
	}
	out := map[string]meta.Replica{}
	for _, x := range rs {
		if x.Claim == "" || x.NextTryAt == nil {
			t.Errorf("claimed %+v without a claim or lease", x)
		}
		out[x.Digest+"@"+x.Region] = x
	}
	return out
}

func finish(t *testing.T, r meta.Replicas, x meta.Replica, state, reason string, retryIn time.Duration, want bool) {
	t.Helper()
	ok, err := r.FinishReplica(t.Context(), x, state, reason, retryIn)
	if err != nil || ok != want {
		t.Errorf("FinishReplica(%s@%s %s→%q): %v, %v; want %v", x.Digest, x.Region, x.State, state, ok, err, want)
	}
}

func testReplicaLifecycle(t *testing.T, s meta.Store) {
	r := capability[meta.Replicas](t, s)
	d := blobDigest("one")
	wantStates(t, r, d, map[string]string{})
	if err := r.AddReplicas(t.Context(), d, []string{"eu", "ap"}); err != nil {
		t.Fatal(err)
	}
	wantStates(t, r, d, map[string]string{"eu": "pending/0/", "ap": "pending/0/"})
	got := claim(t, r, time.Hour, 0)
	if len(got) != 2 {
		t.Fatalf("claimed %v, want both rows", got)
	}
	if again := claim(t, r, time.Hour, 0); len(again) != 0 {
		t.Errorf("claimed leased rows again: %v", again)
	}
	eu := got[d+"@eu"]
	if eu.State != meta.ReplicaPending || eu.Attempts != 1 {
		t.Errorf("claimed %+v, want pending with 1 attempt", eu)
	}
	stale := eu
	stale.Claim = "clm_other"
	finish(t, r, stale, meta.ReplicaReady, "", 0, false)
	finish(t, r, eu, meta.ReplicaReady, "", 0, true)
	finish(t, r, eu, meta.ReplicaReady, "", 0, false) // the claim ended
	wantStates(t, r, d, map[string]string{"eu": "ready/1/", "ap": "pending/1/"})

	// A ready row stays ready when the blob is added again.
	if err := r.AddReplicas(t.Context(), d, []string{"eu"}); err != nil {
		t.Fatal(err)
	}
	wantStates(t, r, d, map[string]string{"eu": "ready/1/", "ap": "pending/1/"})

	// A reader reports a corrupt copy: unclaimed ready row → failed, due now.
	finish(t, r, meta.Replica{Digest: d, Region: "eu", ReplicaStatus: meta.ReplicaStatus{State: meta.ReplicaReady}},
		meta.ReplicaFailed, meta.ReasonCorrupt, 0, true)
	wantStates(t, r, d, map[string]string{"eu": "failed/1/corrupt", "ap": "pending/1/"})
	_, err := r.FinishReplica(t.Context(), eu, "gone", "", 0)
	wantErr(t, "FinishReplica to an unknown state", err, meta.ErrInvalid)
}

func testReplicaRetry(t *testing.T, s meta.Store) {
	r := capability[meta.Replicas](t, s)
	d := blobDigest("two")
	if err := r.AddReplicas(t.Context(), d, []string{"eu"}); err != nil {
		t.Fatal(err)
	}
	x := claim(t, r, time.Hour, 1)[d+"@eu"]
	finish(t, r, x, meta.ReplicaFailed, meta.ReasonUnreachable, 0, true) // due again now
	x = claim(t, r, time.Hour, 1)[d+"@eu"]
	if x.State != meta.ReplicaFailed || x.Attempts != 2 || x.Error != meta.ReasonUnreachable {
		t.Errorf("second claim %+v, want failed, 2 attempts, unreachable", x)
	}
	finish(t, r, x, meta.ReplicaFailed, meta.ReasonUnreachable, time.Hour, true)
	if got := claim(t, r, time.Hour, 0); len(got) != 0 {
		t.Errorf("claimed a row that is not due: %v", got)
	}
	wantStates(t, r, d, map[string]string{"eu": "failed/2/unreachable"})
	// Adding the blob again retries at once, from zero attempts.
	if err := r.AddReplicas(t.Context(), d, []string{"eu"}); err != nil {
		t.Fatal(err)
	}
	wantStates(t, r, d, map[string]string{"eu": "pending/0/unreachable"})
	x = claim(t, r, time.Hour, 0)[d+"@eu"]
	finish(t, r, x, meta.ReplicaReady, "", 0, true)
	wantStates(t, r, d, map[string]string{"eu": "ready/1/"})
}

func testReplicaDelete(t *testing.T, s meta.Store) {
	r := capability[meta.Replicas](t, s)
	d := blobDigest("three")
	if err := r.AddReplicas(t.Context(), d, []string{"eu", "ap"}); err != nil {
		t.Fatal(err)
	}
	inFlight := claim(t, r, time.Hour, 0)
	if err := r.DeleteReplicas(t.Context(), d, []string{"eu", "ap", "us"}, "", 0); err != nil {
		t.Fatal(err)
	}
	wantStates(t, r, d, map[string]string{"eu": "deleting/0/", "ap": "deleting/0/", "us": "deleting/0/"})
	// A copy that was in flight may not mark the row ready any more.
	finish(t, r, inFlight[d+"@eu"], meta.ReplicaReady, "", 0, false)
	// The deleter removes a row it handled itself (unclaimed, deleting).
	finish(t, r, meta.Replica{Digest: d, Region: "us", ReplicaStatus: meta.ReplicaStatus{State: meta.ReplicaDeleting}},
		"", "", 0, true)
	got := claim(t, r, time.Hour, 0)
	if len(got) != 2 {
		t.Fatalf("claimed %v, want the two deleting rows", got)
	}
	finish(t, r, got[d+"@eu"], "", "", 0, true)
	finish(t, r, got[d+"@ap"], meta.ReplicaDeleting, meta.ReasonUnreachable, time.Hour, true)
	wantStates(t, r, d, map[string]string{"ap": "deleting/1/unreachable"})
	// Stored again before the deletion finished: pending again.
	if err := r.AddReplicas(t.Context(), d, []string{"ap"}); err != nil {
		t.Fatal(err)
	}
	wantStates(t, r, d, map[string]string{"ap": "pending/0/unreachable"})

	// A deleter that removes the copies itself claims the rows: nobody
	// claims them before the lease ends, and it removes a row only if
	// nobody marked it again meanwhile (a copy that landed late).
	d2 := blobDigest("four")
	if err := r.DeleteReplicas(t.Context(), d2, []string{"eu", "ap"}, "deleter", time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, r, time.Hour, 0); got[d2+"@eu"].Digest != "" || got[d2+"@ap"].Digest != "" {
		t.Fatalf("claimed %v during the deleter's lease", got)
	}
	mine := func(region string) meta.Replica {
		return meta.Replica{Digest: d2, Region: region, Claim: "deleter", ReplicaStatus: meta.ReplicaStatus{State: meta.ReplicaDeleting}}
	}
	if err := r.DeleteReplicas(t.Context(), d2, []string{"ap"}, "", 0); err != nil { // marked again
		t.Fatal(err)
	}
	finish(t, r, mine("eu"), "", "", 0, true)
	finish(t, r, mine("ap"), "", "", 0, false)
	wantStates(t, r, d2, map[string]string{"ap": "deleting/0/"})
	if got := claim(t, r, time.Hour, 0); got[d2+"@ap"].State != meta.ReplicaDeleting {
		t.Fatalf("claimed %v, want the row marked again", got)
	}
}

func testReplicaConcurrentClaims(t *testing.T, s meta.Store) {
	r := capability[meta.Replicas](t, s)
	const blobs = 12
	for i := range blobs {
		if err := r.AddReplicas(t.Context(), blobDigest(fmt.Sprint("c", i)), []string{"eu", "ap"}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				rs, err := r.ClaimReplicas(t.Context(), time.Hour, 3)
				if err != nil {
					t.Errorf("ClaimReplicas: %v", err)
					return
				}
				if len(rs) == 0 {
					return
				}
				mu.Lock()
				for _, x := range rs {
					seen[x.Digest+"@"+x.Region]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 2*blobs {
		t.Errorf("claimed %d distinct rows, want %d", len(seen), 2*blobs)
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s claimed %d times", k, n)
		}
	}
}
