package metatest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// buildTests are the conformance tests of meta.Builds (RunAll).
var buildTests = []test{
	{"Builds/Lifecycle", testBuildsLifecycle},
	{"Builds/FailHost", testBuildsFailHost},
	{"Builds/Invalid", testBuildsInvalid},
	{"Builds/VersionRecords", testBuildsVersionRecords},
	{"Builds/SourceRoots", testBuildsSourceRoots},
	{"Builds/Restore", testBuildsRestore},
	{"Builds/Expire", testBuildsExpire},
}

func builds(t *testing.T, s meta.Store) meta.Builds { return capability[meta.Builds](t, s) }

// newBuild is a build of dep whose snapshot and builder are stored.
func newBuild(t *testing.T, s meta.Store, dep, kind string) *meta.Build {
	t.Helper()
	for _, x := range []string{"src", "builder"} {
		rel := meta.Release{SHA256: sha(x), Kind: meta.KindSource, SizeBytes: 1, URI: "file:///blobs/" + sha(x), TreeSHA256: sha("tree:" + x)}
		must(builds(t, s).PutSourceRelease(t.Context(), dep, rel))(t, "PutSourceRelease")
	}
	return &meta.Build{Deployment: dep, Kind: kind, Actor: "tester", BuildSpec: meta.BuildSpec{
		SourceSHA256: sha("src"), SourceTree: sha("tree:src"), Builder: sha("builder"), BuilderTree: sha("tree:builder"),
		BuilderRef: "tools:1", Command: "make", Output: "dist", Env: map[string]string{"A": "1"}, SourceDateEpoch: 1700000000,
		Timeout: "10m", MemoryBytes: 1 << 30, Activate: true,
	}}
}

// testBuildsLifecycle: queued → claimed (pins respected, oldest first) →
// finished with its log cleaned and kept, an event, listed newest first;
// finishing twice or from another host conflicts.
func testBuildsLifecycle(t *testing.T, s meta.Store) {
	ctx := t.Context()
	b := builds(t, s)
	first, pinned := newBuild(t, s, "site", meta.BuildKindBuild), newBuild(t, s, "site", meta.BuildKindRebuild)
	pinned.PinHost, pinned.VersionNumber = "host_b", 3
	for _, x := range []*meta.Build{first, pinned} {
		if err := b.CreateBuild(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.HasPrefix(first.ID, "bld_") || first.State != meta.BuildQueued || first.CreatedAt.IsZero() {
		t.Errorf("created %+v", first)
	}
	got := must(b.GetBuild(ctx, pinned.ID))(t, "GetBuild")
	if got.Command != "make" || got.Env["A"] != "1" || got.PinHost != "host_b" || got.VersionNumber != 3 || got.SourceDateEpoch != 1700000000 {
		t.Errorf("GetBuild = %+v", got)
	}
	c := must(b.ClaimBuild(ctx, "host_a"))(t, "ClaimBuild(a)")
	if c.ID != first.ID || c.State != meta.BuildRunning || c.Host != "host_a" || c.StartedAt == nil {
		t.Errorf("host_a claimed %+v, want the first build, running", c)
	}
	_, err := b.ClaimBuild(ctx, "host_b")
	if err != nil {
		t.Fatalf("ClaimBuild(b): %v", err)
	}
	_, err = b.ClaimBuild(ctx, "host_c")
	wantErr(t, "claim with nothing queued", err, meta.ErrNotFound)
	if got := must(b.GetBuild(ctx, pinned.ID))(t, "get"); got.State != meta.BuildRunning || got.Host != "host_b" {
		t.Errorf("host_b claimed %+v, want the build pinned to it", got)
	}
	_, err = b.FinishBuild(ctx, first.ID, "host_b", meta.BuildEnd{State: meta.BuildSucceeded})
	wantErr(t, "finish from another host", err, meta.ErrConflict)
	_, err = b.StartFinishing(ctx, first.ID, "host_b")
	wantErr(t, "start finishing from another host", err, meta.ErrConflict)
	if f := must(b.StartFinishing(ctx, first.ID, "host_a"))(t, "StartFinishing"); f.State != meta.BuildFinishing {
		t.Errorf("finishing: %+v", f)
	}
	_, err = b.StartFinishing(ctx, first.ID, "host_a")
	wantErr(t, "a second delivery of the result", err, meta.ErrConflict)
	exit := 0
	done := must(b.FinishBuild(ctx, first.ID, "host_a", meta.BuildEnd{State: meta.BuildSucceeded, DurationMS: 1234,
		ExitCode: &exit, ArtifactSHA256: sha("out"), Log: "line one\n\xff\x00two\n", LogSHA256: sha("log"), LogBytes: 99}))(t, "FinishBuild")
	if done.State != meta.BuildSucceeded || done.FinishedAt == nil || done.DurationMS != 1234 || done.ExitCode == nil ||
		*done.ExitCode != 0 || done.ArtifactSHA256 != sha("out") || done.LogBytes != 99 || done.LogSHA256 != sha("log") {
		t.Errorf("finished %+v", done)
	}
	if l := must(b.BuildLog(ctx, first.ID))(t, "BuildLog"); l != "line one\n\uFFFDtwo\n" {
		t.Errorf("log %q: want invalid UTF-8 replaced and NULs dropped", l)
	}
	_, err = b.FinishBuild(ctx, first.ID, "host_a", meta.BuildEnd{State: meta.BuildFailed})
	wantErr(t, "finish twice", err, meta.ErrConflict)
	if err := b.SetBuildVersion(ctx, first.ID, 7); err != nil {
		t.Fatal(err)
	}
	list := must(b.ListBuilds(ctx, "site", 0))(t, "ListBuilds")
	if len(list) == 2 && list[0].ID == first.ID && first.CreatedAt.Equal(pinned.CreatedAt) {
		list[0], list[1] = list[1], list[0] // created at once (a frozen clock): either order
	}
	if len(list) != 2 || list[0].ID != pinned.ID || list[1].ID != first.ID || list[1].VersionNumber != 7 {
		t.Errorf("ListBuilds = %+v, want the two builds newest first", list)
	}
	if l := must(b.ListBuilds(ctx, "other", 0))(t, "ListBuilds(other)"); len(l) != 0 {
		t.Errorf("builds of another deployment: %+v", l)
	}
	n := 0
	for _, e := range events(t, s, meta.EventFilter{}) {
		if e.Action == meta.ActionBuild && strings.Contains(string(e.Detail), first.ID) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d build events for %s, want 1", n, first.ID)
	}
	_, err = b.GetBuild(ctx, "bld_nope")
	wantErr(t, "unknown build", err, meta.ErrNotFound)
}

// testBuildsFailHost: a lost host's running builds fail with it
// (MarkLostHosts), others stay.
func testBuildsFailHost(t *testing.T, s meta.Store) {
	ctx := t.Context()
	b := builds(t, s)
	x, y := newBuild(t, s, "site", meta.BuildKindBuild), newBuild(t, s, "site", meta.BuildKindBuild)
	for _, v := range []*meta.Build{x, y} {
		if err := b.CreateBuild(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	hs := hostStore(t, s)
	h := registerHost(t, hs, "a")
	claimed := must(b.ClaimBuild(ctx, h.ID))(t, "claim")
	other := x
	if claimed.ID == x.ID {
		other = y
	}
	lost, err := hs.MarkLostHosts(ctx, h.LastSeen.Add(time.Hour), "sched")
	if err != nil || len(lost) != 1 {
		t.Fatalf("MarkLostHosts = %v, %v; want the host", lost, err)
	}
	if got := must(b.GetBuild(ctx, claimed.ID))(t, "get"); got.State != meta.BuildFailed ||
		got.Error != "host "+h.ID+" was lost while the build ran" {
		t.Errorf("lost host's build: %+v", got)
	}
	if got := must(b.GetBuild(ctx, other.ID))(t, "get"); got.State != meta.BuildQueued {
		t.Errorf("queued build: %+v", got)
	}
	// A host that claims again, idle, cut its running build short.
	must(b.ClaimBuild(ctx, "host_b"))(t, "claim")
	_, err = b.ClaimBuild(ctx, "host_b")
	wantErr(t, "claim with nothing queued", err, meta.ErrNotFound)
	if got := must(b.GetBuild(ctx, other.ID))(t, "get"); got.State != meta.BuildFailed || !strings.Contains(got.Error, "restarted") {
		t.Errorf("a build of a host that claimed again: %+v, want failed", got)
	}
}

// testBuildsInvalid: unknown kinds, empty deployments, bad digests.
func testBuildsInvalid(t *testing.T, s meta.Store) {
	ctx := t.Context()
	b := builds(t, s)
	bad := newBuild(t, s, "site", "compile")
	wantErr(t, "unknown kind", b.CreateBuild(ctx, bad), meta.ErrInvalid)
	bad = newBuild(t, s, "site", meta.BuildKindBuild)
	bad.Deployment = ""
	wantErr(t, "empty deployment", b.CreateBuild(ctx, bad), meta.ErrInvalid)
	bad = newBuild(t, s, "site", meta.BuildKindBuild)
	bad.Builder = "sha256:x"
	wantErr(t, "bad builder", b.CreateBuild(ctx, bad), meta.ErrInvalid)
	bad = newBuild(t, s, "site", meta.BuildKindBuild)
	bad.SourceSHA256 = sha("never stored")
	wantErr(t, "a snapshot not stored", b.CreateBuild(ctx, bad), meta.ErrGone)
	_, err := b.FinishBuild(ctx, "bld_x", "h", meta.BuildEnd{State: "done"})
	wantErr(t, "bad state", err, meta.ErrInvalid)
	_, err = b.PutSourceRelease(ctx, "site", meta.Release{SHA256: "x"})
	wantErr(t, "bad source sha", err, meta.ErrInvalid)
	err = b.RecordRebuild(ctx, "ver_x", meta.Rebuild{Verdict: "maybe"}, "t")
	wantErr(t, "bad verdict", err, meta.ErrInvalid)
}

// testBuildsVersionRecords: a version keeps its snapshot flag and build
// record; a rebuild verdict is stored with its event; a snapshot's bytes
// published as a site become a static release.
func testBuildsVersionRecords(t *testing.T, s meta.Store) {
	ctx := t.Context()
	b := builds(t, s)
	d := newDeployment(t, s, "site")
	if d.SourceRetentionDays != meta.DefaultSourceRetentionDays {
		t.Errorf("source_retention_days %d, want %d", d.SourceRetentionDays, meta.DefaultSourceRetentionDays)
	}
	src := release("snapshot")
	src.Kind = meta.KindSource
	got := must(b.PutSourceRelease(ctx, "site", src))(t, "PutSourceRelease")
	if got.Kind != meta.KindSource || got.TreeSHA256 != src.TreeSHA256 {
		t.Errorf("source release %+v", got)
	}
	if owned := must(b.SourceOwned(ctx, "other", src.SHA256))(t, "SourceOwned"); owned {
		t.Error("a deployment that never uploaded the snapshot owns it")
	}
	if again := must(b.PutSourceRelease(ctx, "other", src))(t, "PutSourceRelease again"); again.CreatedAt != got.CreatedAt {
		t.Errorf("second put changed the row: %+v", again)
	}
	for _, dep := range []string{"site", "other"} {
		if owned := must(b.SourceOwned(ctx, dep, src.SHA256))(t, "SourceOwned"); !owned {
			t.Errorf("%s uploaded the snapshot and does not own it", dep)
		}
	}
	vb := &meta.VersionBuild{BuildID: "bld_1", Builder: sha("builder"), Command: "make", Output: "dist",
		SourceDateEpoch: 1700000000, DurationMS: 5, LogSHA256: sha("log")}
	v, err := s.CreateVersion(ctx, meta.NewVersion{DeploymentID: d.ID, SourceSHA256: src.SHA256, SourceSnapshot: true,
		Build: vb, Release: release("out"), Manifest: meta.Manifest{Files: 1, Entrypoint: "index.html"}, Actor: "t"})
	if err != nil {
		t.Fatal(err)
	}
	v = getVersion(t, s, v.ID)
	if !v.SourceSnapshot || v.Build == nil || v.Build.Command != "make" || v.Build.LogSHA256 != sha("log") || v.Rebuild != nil {
		t.Errorf("version %+v (build %+v)", v, v.Build)
	}
	r := meta.Rebuild{BuildID: "bld_2", Verdict: meta.VerdictDiffers, At: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		SHA256: sha("other"), Differs: []string{"time.txt"}}
	if err := b.RecordRebuild(ctx, v.ID, r, "t"); err != nil {
		t.Fatal(err)
	}
	if got := getVersion(t, s, v.ID).Rebuild; got == nil || got.Verdict != meta.VerdictDiffers || len(got.Differs) != 1 || !got.At.Equal(r.At) {
		t.Errorf("rebuild %+v", got)
	}
	n := 0
	for _, e := range events(t, s, meta.EventFilter{DeploymentID: d.ID}) {
		if e.Action == meta.ActionRebuild && e.VersionID == v.ID && strings.Contains(string(e.Detail), "time.txt") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d rebuild events, want 1", n)
	}
	// The snapshot's bytes published as a site.
	w, err := s.CreateVersion(ctx, meta.NewVersion{DeploymentID: d.ID, SourceSHA256: src.SHA256, Release: release("snapshot"),
		Manifest: meta.Manifest{Files: 1, Entrypoint: "index.html"}, Actor: "t"})
	if err != nil {
		t.Fatalf("publish a snapshot's bytes as a site: %v", err)
	}
	if rel := must(s.GetRelease(ctx, w.ArtifactSHA256))(t, "GetRelease"); rel.Kind != meta.KindStatic {
		t.Errorf("release kind %q, want static", rel.Kind)
	}
	p := capability[meta.Policies](t, s)
	zero := 0
	if d, err := p.SetPolicy(ctx, d.ID, meta.Policy{SourceRetentionDays: &zero}, "t"); err != nil || d.SourceRetentionDays != 0 {
		t.Errorf("SetPolicy(source_retention_days 0) = %+v, %v", d, err)
	}
	neg := -1
	_, err = p.SetPolicy(ctx, d.ID, meta.Policy{SourceRetentionDays: &neg}, "t")
	wantErr(t, "negative source retention", err, meta.ErrInvalid)
}

// testBuildsSourceRoots: a snapshot is rooted for source_retention_days
// from its version's publish, collected or not, and so is the builder of
// a succeeded build made from it; both through GCSnapshot and
// MarkCollecting.
func testBuildsSourceRoots(t *testing.T, s meta.Store) {
	ctx := t.Context()
	b := builds(t, s)
	g := capability[meta.GC](t, s)
	d := newDeployment(t, s, "site")
	src := release("snapshot")
	src.Kind = meta.KindSource
	must(b.PutSourceRelease(ctx, "site", src))(t, "put source")
	tools := newDeployment(t, s, "tools")
	builder := publish(t, s, tools.ID, "builder", false) // never active: only retention roots it
	bl := newBuild(t, s, "site", meta.BuildKindBuild)
	bl.SourceSHA256, bl.Builder = src.SHA256, builder.ArtifactSHA256
	if err := b.CreateBuild(ctx, bl); err != nil {
		t.Fatal(err)
	}
	must(b.ClaimBuild(ctx, "h"))(t, "claim")
	// While it runs, the build roots its snapshot and builder.
	far := getVersion(t, s, builder.ID).CreatedAt.Add(1000 * day)
	kept := must(g.MarkCollecting(ctx, []string{src.SHA256, builder.ArtifactSHA256}, far))(t, "MarkCollecting")
	if kept[src.SHA256].Reason != meta.RootBuild || kept[builder.ArtifactSHA256].Reason != meta.RootBuild {
		t.Errorf("a running build's snapshot and builder kept %+v; want root %q", kept, meta.RootBuild)
	}
	must(b.FinishBuild(ctx, bl.ID, "h", meta.BuildEnd{State: meta.BuildSucceeded}))(t, "finish")
	v, err := s.CreateVersion(ctx, meta.NewVersion{DeploymentID: d.ID, SourceSHA256: src.SHA256, SourceSnapshot: true,
		Release: release("out"), Manifest: meta.Manifest{Files: 1, Entrypoint: "index.html"}, Actor: "t"})
	if err != nil {
		t.Fatal(err)
	}
	created := getVersion(t, s, v.ID).CreatedAt
	for _, c := range []struct {
		at            time.Time
		source, built string // want roots ("" none)
	}{
		{created.Add(40 * day), meta.RootSource, meta.RootBuilder},
		{created.Add(366 * day), "", ""},
	} {
		snap := must(g.GCSnapshot(ctx, c.at))(t, "GCSnapshot")
		roots := snap.Roots(c.at)
		if roots[src.SHA256].Reason != c.source || roots[builder.ArtifactSHA256].Reason != c.built {
			t.Errorf("at +%v: roots of the snapshot %+v and of the builder %+v; want %q and %q", c.at.Sub(created),
				roots[src.SHA256], roots[builder.ArtifactSHA256], c.source, c.built)
		}
		kept := must(g.MarkCollecting(ctx, []string{src.SHA256, builder.ArtifactSHA256}, c.at))(t, "MarkCollecting")
		if kept[src.SHA256].Reason != c.source || kept[builder.ArtifactSHA256].Reason != c.built {
			t.Errorf("at +%v: MarkCollecting kept %+v; want %q and %q", c.at.Sub(created), kept, c.source, c.built)
		}
	}
}

// testBuildsRestore: a collected version's release, stored again, is
// revived: the version is archived again from now, with a restore event;
// a version that is not collected conflicts.
func testBuildsRestore(t *testing.T, s meta.Store) {
	ctx := t.Context()
	b := builds(t, s)
	g := capability[meta.GC](t, s)
	d := newDeployment(t, s, "site")
	v1 := publish(t, s, d.ID, "one", true)
	publish(t, s, d.ID, "two", true)
	_, err := b.RestoreVersion(ctx, v1.ID, "file:///x", "bld_1", "t")
	wantErr(t, "restore a version that is not collected", err, meta.ErrConflict)
	now := getVersion(t, s, v1.ID).CreatedAt.Add(31 * day)
	must(g.MarkCollecting(ctx, []string{v1.ArtifactSHA256}, now))(t, "mark")
	if c := collect(t, g, v1.ArtifactSHA256, now, now, time.Hour); c == nil || c.Root != nil {
		t.Fatalf("collect: %+v", c)
	}
	if err := g.DropClaims(ctx, "gc-test", v1.ArtifactSHA256); err != nil {
		t.Fatal(err)
	}
	v := must(b.RestoreVersion(ctx, v1.ID, "file:///blobs/again", "bld_1", "t"))(t, "RestoreVersion")
	if v.Status != meta.StatusArchived || v.CollectedAt != nil || v.ArchivedAt == nil {
		t.Errorf("restored version %+v", v)
	}
	rel := must(s.GetRelease(ctx, v1.ArtifactSHA256))(t, "GetRelease")
	if rel.CollectedAt != nil || rel.URI != "file:///blobs/again" {
		t.Errorf("restored release %+v", rel)
	}
	if _, err := s.Activate(ctx, d.ID, 1, "t", meta.ActionRollback); err != nil {
		t.Errorf("rollback to the restored version: %v", err)
	}
	n := 0
	for _, e := range events(t, s, meta.EventFilter{DeploymentID: d.ID}) {
		if e.Action == meta.ActionRestore && e.VersionID == v1.ID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d restore events, want 1", n)
	}
}

// testBuildsExpire: the lost-host sweep fails builds queued past
// BuildQueueTTL and running past BuildRunTTL, and leaves the others.
func testBuildsExpire(t *testing.T, s meta.Store) {
	ctx := t.Context()
	b := builds(t, s)
	hs := capability[meta.Hosts](t, s)
	queued, running, fresh := newBuild(t, s, "site", meta.BuildKindBuild), newBuild(t, s, "site", meta.BuildKindBuild), newBuild(t, s, "site", meta.BuildKindBuild)
	queued.PinHost = "host_nobody"
	for _, x := range []*meta.Build{queued, running} {
		if err := b.CreateBuild(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	claimed := must(b.ClaimBuild(ctx, "host_a"))(t, "claim")
	if claimed.ID != running.ID {
		t.Fatalf("claimed %s, want %s", claimed.ID, running.ID)
	}
	if err := b.CreateBuild(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	// the sweep at a time past both TTLs: MarkLostHosts reads the store's
	// clock, so the records are aged instead
	if _, err := hs.MarkLostHosts(ctx, time.Unix(0, 0), "sched"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{queued.ID, running.ID, fresh.ID} {
		if got := must(b.GetBuild(ctx, id))(t, "get"); got.State == meta.BuildFailed {
			t.Errorf("build %s failed before its TTL: %+v", id, got)
		}
	}
	ager, ok := s.(interface {
		AgeBuild(ctx context.Context, id string, by time.Duration) error
	})
	if !ok {
		t.Skip("the store cannot age builds for the test")
	}
	if err := ager.AgeBuild(ctx, queued.ID, meta.BuildQueueTTL+time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := ager.AgeBuild(ctx, running.ID, meta.BuildRunTTL+time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := hs.MarkLostHosts(ctx, time.Unix(0, 0), "sched"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id, state, says string
	}{{queued.ID, meta.BuildFailed, "no host ran it"}, {running.ID, meta.BuildFailed, "did not finish"}, {fresh.ID, meta.BuildQueued, ""}} {
		got := must(b.GetBuild(ctx, c.id))(t, "get")
		if got.State != c.state || !strings.Contains(got.Error, c.says) {
			t.Errorf("build %s after the sweep: %s %q, want %s %q", c.id, got.State, got.Error, c.state, c.says)
		}
	}
}
