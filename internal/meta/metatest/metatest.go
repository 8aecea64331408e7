// Package metatest is the conformance suite of meta.Store: every metadata
// backend and every wrapper around one runs Run in its tests.
package metatest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/fakeclock"
	"github.com/cairnhq/cairn/internal/meta"
)

// Collector is implemented by backends so that the suite can check what
// happens to collected versions. MarkCollected records, in one transaction
// with a "collect" event, that the release bytes of version versionID were
// collected at at: the version keeps its row, with status "collected" and
// collected_at set. The active version or a pinned one: meta.ErrInvalid.
// Tests that need it are skipped when the store does not implement it.
type Collector interface {
	MarkCollected(ctx context.Context, versionID string, at time.Time) error
}

type test struct {
	name string
	fn   func(t *testing.T, s meta.Store)
}

// Run runs the suite. newStore must return a fresh, empty store for each
// subtest; Run closes it when the subtest ends.
func Run(t *testing.T, newStore func(t *testing.T) meta.Store) {
	var all []test
	for _, group := range [][]test{deploymentTests, versionTests, activateTests, domainTests, deleteTests, eventTests, chainTests, gcTests, derivedTests} {
		all = append(all, group...)
	}
	all = append(all, test{"Watch", testWatch}, test{"SiteSettings", testSiteSettings})
	runTests(t, newStore, all)
}

// suites are every suite RunAll runs. Adding a suite is one entry here.
var suites = []struct {
	name string
	run  func(t *testing.T, newStore func(t *testing.T) meta.Store)
}{
	{"Store", Run},
	{"Registry", RunRegistry},
	{"Replicas", tests(replicaTests)},
	{"Tokens", tests(tokenTests)},
	{"Uploads", tests(uploadTests)},
	{"Certs", tests(certTests)},
	{"Contents", tests(contentTests)},
	{"Hosts", tests(hostTests)},
	{"Sched", tests(schedTests)},
	{"Builds", tests(buildTests)},
}

// tests is a suite of tests on fresh stores.
func tests(all []test) func(t *testing.T, newStore func(t *testing.T) meta.Store) {
	return func(t *testing.T, newStore func(t *testing.T) meta.Store) { runTests(t, newStore, all) }
}

// Clocks are the clocks RunAll runs every suite under, by name: one that
// moves a microsecond a call and one that never moves, both in a zone
// that is not UTC, so that nothing may depend on time passing between
// calls or on the process's zone.
func Clocks() map[string]func() func() time.Time {
	start := time.Date(2030, 1, 2, 3, 4, 5, 6, time.FixedZone("UTC+2", 2*60*60))
	return map[string]func() func() time.Time{
		"ticking": func() func() time.Time { return fakeclock.Ticking(start, time.Microsecond).Now },
		"frozen":  func() func() time.Time { return fakeclock.Ticking(start, 0).Now },
	}
}

// RunAll runs testClock, then every suite (Run, RunRegistry, the tests of
// meta.Replicas, meta.Tokens, meta.Uploads, …) under each of Clocks. newStore must return a
// fresh, empty store that stamps with now; RunAll closes it when the
// subtest ends. The subtests run in parallel: each has a store of its own.
func RunAll(t *testing.T, newStore func(t *testing.T, now func() time.Time) meta.Store) {
	t.Run("Clock", func(t *testing.T) {
		t.Parallel()
		testClock(t, newStore)
	})
	for clock, newClock := range Clocks() {
		t.Run(clock, func(t *testing.T) {
			t.Parallel()
			for _, suite := range suites {
				t.Run(suite.name, func(t *testing.T) {
					t.Parallel()
					suite.run(t, func(t *testing.T) meta.Store { return newStore(t, newClock()) })
				})
			}
		})
	}
}

// testClock: records are stamped by the store's clock, to the nanosecond,
// and read back in UTC.
func testClock(t *testing.T, newStore func(t *testing.T, now func() time.Time) meta.Store) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("x", 3600))
	s := newStore(t, func() time.Time { return at })
	t.Cleanup(func() { s.Close() })
	d := &meta.Deployment{Name: "site", Kind: meta.KindStatic}
	if err := s.CreateDeployment(t.Context(), d, "x"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetDeployment(t.Context(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.CreatedAt.Equal(at) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at = %v, want %v in UTC", got.CreatedAt, at)
	}
}

// runTests runs each test on a fresh store from newStore, closed when the
// subtest ends. Under RunAll the tests run in parallel.
func runTests(t *testing.T, newStore func(t *testing.T) meta.Store, tests []test) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// sha is the hex sha256 of content.
func sha(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])
}

func release(content string) meta.Release {
	return meta.Release{
		SHA256: sha(content), Kind: meta.KindStatic, SizeBytes: int64(len(content)),
		URI: "file:///blobs/" + sha(content), TreeSHA256: sha("tree:" + content),
	}
}

func newDeployment(t *testing.T, s meta.Store, name string) *meta.Deployment {
	t.Helper()
	d := &meta.Deployment{Name: name, Kind: meta.KindStatic}
	if err := s.CreateDeployment(t.Context(), d, "tester"); err != nil {
		t.Fatalf("CreateDeployment(%s): %v", name, err)
	}
	return d
}

func publish(t *testing.T, s meta.Store, depID, content string, activate bool) *meta.Version {
	t.Helper()
	v, err := s.CreateVersion(t.Context(), meta.NewVersion{
		DeploymentID: depID, SourceSHA256: sha("src:" + content), Release: release(content),
		Manifest: meta.Manifest{Files: 3, TotalBytes: int64(len(content)), Entrypoint: "index.html"},
		Activate: activate, Actor: "tester",
	})
	if err != nil {
		t.Fatalf("CreateVersion(%s, activate=%v): %v", content, activate, err)
	}
	return v
}

// must returns v, or fails t with what and err.
func must[T any](v T, err error) func(t *testing.T, what string) T {
	return func(t *testing.T, what string) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func getVersion(t *testing.T, s meta.Store, id string) *meta.Version {
	t.Helper()
	return must(s.GetVersion(t.Context(), id))(t, "GetVersion("+id+")")
}

func getDeployment(t *testing.T, s meta.Store, id string) *meta.Deployment {
	t.Helper()
	return must(s.GetDeployment(t.Context(), id))(t, "GetDeployment("+id+")")
}

func events(t *testing.T, s meta.Store, f meta.EventFilter) []meta.Event {
	t.Helper()
	evs, err := s.ListEvents(t.Context(), f)
	if err != nil {
		t.Fatalf("ListEvents(%+v): %v", f, err)
	}
	if evs == nil {
		evs = []meta.Event{} // nil and empty are the same answer
	}
	return evs
}

func lastEvent(t *testing.T, s meta.Store, depID string) meta.Event {
	t.Helper()
	evs := events(t, s, meta.EventFilter{DeploymentID: depID})
	if len(evs) == 0 {
		t.Fatalf("no events for %s", depID)
	}
	return evs[len(evs)-1]
}

// beforeAfter decodes the detail of a pointer-move event.
func beforeAfter(t *testing.T, e meta.Event) (before, after *string) {
	t.Helper()
	var d struct{ Before, After *string }
	if err := json.Unmarshal(e.Detail, &d); err != nil {
		t.Fatalf("event %d (%s) detail %q: %v", e.ID, e.Action, e.Detail, err)
	}
	return d.Before, d.After
}

func wantPtr(t *testing.T, what string, got *string, want string) {
	t.Helper()
	switch {
	case want == "" && got != nil:
		t.Errorf("%s = %q, want null", what, *got)
	case want != "" && (got == nil || *got != want):
		t.Errorf("%s = %v, want %q", what, str(got), want)
	}
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want %v", what, err, target)
	}
}

// sameJSON fails unless got and want marshal to the same JSON, so that
// records compare the way clients see them (times in UTC, same precision).
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err1 := json.Marshal(got)
	w, err2 := json.Marshal(want)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: marshal: %v %v", what, err1, err2)
	}
	if string(g) != string(w) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func wantUTC(t *testing.T, what string, tm time.Time) {
	t.Helper()
	if tm.IsZero() || tm.Location() != time.UTC {
		t.Errorf("%s = %v, want a set time in UTC", what, tm)
	}
}

func collector(t *testing.T, s meta.Store) Collector { return capability[Collector](t, s) }

// capability returns s as a C, or skips t when s does not implement C.
func capability[C any](t *testing.T, s meta.Store) C {
	t.Helper()
	c, ok := s.(C)
	if !ok {
		t.Skipf("%T does not implement %T", s, (*C)(nil))
	}
	return c
}
