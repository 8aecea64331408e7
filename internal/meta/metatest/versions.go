package metatest

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

var versionTests = []test{
	{"Version/CreateGet", testVersionCreateGet},
	{"Version/Numbers", testVersionNumbers},
	{"Version/Concurrent", testVersionConcurrent},
	{"Version/SharedRelease", testVersionSharedRelease},
	{"Version/NotFound", testVersionNotFound},
	{"Version/Invalid", testVersionInvalid},
	{"Version/List", testVersionList},
	{"Version/NewDeployment", testVersionNewDeployment},
	{"Version/NewDeploymentFails", testVersionNewDeploymentFails},
	{"Version/Warnings", testVersionWarnings},
	{"Version/Runtime", testVersionRuntime},
}

func testVersionCreateGet(t *testing.T, s meta.Store) {
	d := newDeployment(t, s, "site")
	v := publish(t, s, d.ID, "hello", false)
	rel := release("hello")
	if !strings.HasPrefix(v.ID, "ver_") || v.DeploymentID != d.ID || v.VersionNumber != 1 ||
		v.Status != meta.StatusReady || v.SourceSHA256 != sha("src:hello") ||
		v.ArtifactSHA256 != rel.SHA256 || v.ArtifactURI != rel.URI ||
		v.ArtifactManifest != (meta.Manifest{Files: 3, TotalBytes: 5, Entrypoint: "index.html"}) ||
		v.ArchivedAt == nil || !v.ArchivedAt.Equal(v.CreatedAt) || v.CollectedAt != nil {
		t.Errorf("CreateVersion = %+v (a version never activated is ready, its retention counted from publish)", v)
	}
	wantUTC(t, "CreatedAt", v.CreatedAt)
	sameJSON(t, "GetVersion", getVersion(t, s, v.ID), v)
	byNum, err := s.GetVersionByNumber(t.Context(), d.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "GetVersionByNumber", byNum, v)
	if d := getDeployment(t, s, d.ID); d.ActiveVersionID != nil {
		t.Errorf("active version %s after a publish without activate", *d.ActiveVersionID)
	}

	r, err := s.GetRelease(t.Context(), rel.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	wantUTC(t, "release CreatedAt", r.CreatedAt)
	rel.CreatedAt = r.CreatedAt
	sameJSON(t, "GetRelease", r, rel)

	e := lastEvent(t, s, d.ID)
	if e.Action != meta.ActionPublish || e.VersionID != v.ID || e.ReleaseSHA256 != rel.SHA256 || e.Actor != "tester" {
		t.Errorf("last event = %+v, want publish of %s", e, v.ID)
	}
}

func testVersionNumbers(t *testing.T, s meta.Store) {
	a, b := newDeployment(t, s, "a"), newDeployment(t, s, "b")
	for i := int64(1); i <= 3; i++ {
		if v := publish(t, s, a.ID, fmt.Sprint("a", i), i == 2); v.VersionNumber != i {
			t.Errorf("publish %d of a: version_number %d", i, v.VersionNumber)
		}
	}
	if v := publish(t, s, b.ID, "b1", false); v.VersionNumber != 1 {
		t.Errorf("first publish of b: version_number %d, want 1 (numbers are per deployment)", v.VersionNumber)
	}
}

// testVersionConcurrent publishes and activates from 8 goroutines at once:
// numbers must be 1..8 with no gaps and exactly one version active.
func testVersionConcurrent(t *testing.T, s meta.Store) {
	d := newDeployment(t, s, "site")
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := s.CreateVersion(t.Context(), meta.NewVersion{
				DeploymentID: d.ID, Release: release(fmt.Sprint("c", i)), Activate: true, Actor: "tester",
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent CreateVersion: %v", err)
		}
	}
	vs, err := s.ListVersions(t.Context(), d.ID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != n {
		t.Fatalf("%d versions, want %d", len(vs), n)
	}
	active := 0
	for i, v := range vs {
		if v.VersionNumber != int64(n-i) {
			t.Errorf("versions[%d].version_number = %d, want %d", i, v.VersionNumber, n-i)
		}
		switch v.Status {
		case meta.StatusActive:
			active++
		case meta.StatusArchived:
		default:
			t.Errorf("v%d status %s", v.VersionNumber, v.Status)
		}
	}
	got := getDeployment(t, s, d.ID)
	if active != 1 || got.ActiveVersionID == nil || *got.ActiveVersionID != vs[0].ID {
		t.Errorf("%d active versions, deployment points at %s, want only v%d (%s)",
			active, str(got.ActiveVersionID), n, vs[0].ID)
	}
}

func testVersionSharedRelease(t *testing.T, s meta.Store) {
	d := newDeployment(t, s, "site")
	v1 := publish(t, s, d.ID, "same", true)
	first, err := s.GetRelease(t.Context(), v1.ArtifactSHA256)
	if err != nil {
		t.Fatal(err)
	}
	again := release("same")
	again.URI = "s3://elsewhere/" + again.SHA256
	v2, err := s.CreateVersion(t.Context(), meta.NewVersion{DeploymentID: d.ID, Release: again, Activate: true})
	if err != nil {
		t.Fatal(err)
	}
	if v2.ID == v1.ID || v2.VersionNumber != 2 || v2.ArtifactSHA256 != v1.ArtifactSHA256 {
		t.Errorf("second publish of the same bytes = %+v, want a new version 2 of the same release", v2)
	}
	r, err := s.GetRelease(t.Context(), v1.ArtifactSHA256)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "release after the second publish (kept as first stored)", r, first)
	if v2.ArtifactURI != first.URI {
		t.Errorf("v2 artifact_uri %q, want the stored release's %q", v2.ArtifactURI, first.URI)
	}
}

func testVersionNotFound(t *testing.T, s meta.Store) {
	ctx := t.Context()
	d := newDeployment(t, s, "site")
	publish(t, s, d.ID, "one", false)
	_, err := s.GetVersion(ctx, "ver_nope")
	wantErr(t, "GetVersion", err, meta.ErrNotFound)
	_, err = s.GetVersionByNumber(ctx, d.ID, 2)
	wantErr(t, "GetVersionByNumber", err, meta.ErrNotFound)
	_, err = s.GetVersionByNumber(ctx, "dep_nope", 1)
	wantErr(t, "GetVersionByNumber of unknown deployment", err, meta.ErrNotFound)
	_, err = s.GetRelease(ctx, sha("none"))
	wantErr(t, "GetRelease", err, meta.ErrNotFound)
	_, err = s.ListVersions(ctx, "dep_nope", 0, 0)
	wantErr(t, "ListVersions", err, meta.ErrNotFound)
	_, err = s.CreateVersion(ctx, meta.NewVersion{DeploymentID: "dep_nope", Release: release("x")})
	wantErr(t, "CreateVersion", err, meta.ErrNotFound)
	if _, err := s.GetRelease(ctx, sha("x")); err == nil {
		t.Error("a failed CreateVersion left its release behind")
	}
}

func testVersionInvalid(t *testing.T, s meta.Store) {
	d := newDeployment(t, s, "site")
	bad := release("x")
	bad.SHA256 = "sha256:" + bad.SHA256
	_, err := s.CreateVersion(t.Context(), meta.NewVersion{DeploymentID: d.ID, Release: bad})
	wantErr(t, "prefixed sha256", err, meta.ErrInvalid)
	oci := release("y")
	oci.Kind = meta.KindOCI
	_, err = s.CreateVersion(t.Context(), meta.NewVersion{DeploymentID: d.ID, Release: oci})
	wantErr(t, "oci release for a static deployment", err, meta.ErrInvalid)
	vs, err := s.ListVersions(t.Context(), d.ID, 0, 0)
	if err != nil || len(vs) != 0 {
		t.Errorf("after invalid publishes: %d versions, %v", len(vs), err)
	}
}

func testVersionList(t *testing.T, s meta.Store) {
	d := newDeployment(t, s, "site")
	for i := range 5 {
		publish(t, s, d.ID, fmt.Sprint("l", i), false)
	}
	for _, tc := range []struct {
		limit  int
		before int64
		want   string
	}{
		{0, 0, "5,4,3,2,1"},
		{2, 0, "5,4"},
		{2, 4, "3,2"},
		{10, 2, "1"},
		{0, 1, ""},
		{-1, 6, "5,4,3,2,1"},
	} {
		vs, err := s.ListVersions(t.Context(), d.ID, tc.limit, tc.before)
		if err != nil {
			t.Fatal(err)
		}
		var nums []string
		for _, v := range vs {
			nums = append(nums, fmt.Sprint(v.VersionNumber))
		}
		if got := strings.Join(nums, ","); got != tc.want {
			t.Errorf("ListVersions(limit %d, before %d) = %q, want %q", tc.limit, tc.before, got, tc.want)
		}
	}
}

// testVersionWarnings: a version keeps what its publish warned about.
func testVersionWarnings(t *testing.T, s meta.Store) {
	d := newDeployment(t, s, "site")
	rel := release("warned")
	want := []string{"no index.html in the tree: / answers 404", "second"}
	v, err := s.CreateVersion(t.Context(), meta.NewVersion{DeploymentID: d.ID, Release: rel,
		Manifest: meta.Manifest{Files: 1, TotalBytes: 6, Entrypoint: "index.html"}, Actor: "tester", Warnings: want})
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range []*meta.Version{v, getVersion(t, s, v.ID)} {
		if strings.Join(got.Warnings, "|") != strings.Join(want, "|") {
			t.Errorf("warnings %q, want %q", got.Warnings, want)
		}
	}
	if plain := publish(t, s, d.ID, "plain", false); len(getVersion(t, s, plain.ID).Warnings) != 0 {
		t.Errorf("a version without warnings has %q", getVersion(t, s, plain.ID).Warnings)
	}
}
