package metatest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

// RunRegistry runs the conformance tests of meta.Registry; newStore is as
// for Run. Backends that implement meta.Registry call it next to Run; unlike
// the optional parts of Run, it fails when the store does not implement it.
func RunRegistry(t *testing.T, newStore func(t *testing.T) meta.Store) {
	runTests(t, newStore, registryTests)
}

var registryTests = []test{
	{"Registry/Repositories", testOCIRepositories},
	{"Registry/Blobs", testOCIBlobs},
	{"Registry/ManifestsAndTags", testOCIManifestsAndTags},
	{"Registry/Referrers", testOCIReferrers},
	{"Registry/AnonymousPull", testOCIAnonymousPull},
	{"Registry/ConcurrentPuts", testOCIConcurrentPuts},
	{"Registry/ConcurrentDeletes", testOCIConcurrentDeletes},
	{"Registry/VersionTags", testOCIVersionTags},
	{"Registry/ActivateOnPush", testOCIActivateOnPush},
}

// registryStore returns s as a meta.Registry with an oci deployment "app".
func registryStore(t *testing.T, s meta.Store) (meta.Registry, *meta.Deployment) {
	t.Helper()
	reg := capability[meta.Registry](t, s)
	return reg, ociDeployment(t, s, "app")
}

func ociDeployment(t *testing.T, s meta.Store, name string) *meta.Deployment {
	t.Helper()
	d := &meta.Deployment{Name: name, Kind: meta.KindOCI}
	if err := s.CreateDeployment(t.Context(), d, "tester"); err != nil {
		t.Fatalf("CreateDeployment(%s): %v", name, err)
	}
	return d
}

func putRepository(t *testing.T, reg meta.Registry, name, depID string) {
	t.Helper()
	if err := reg.PutOCIRepository(t.Context(), &meta.OCIRepository{Name: name, DeploymentID: depID}); err != nil {
		t.Fatalf("PutOCIRepository(%s): %v", name, err)
	}
}

func ociDigest(content string) string { return "sha256:" + sha(content) }

func manifestRec(repo, dg, subject, artifactType string) *meta.OCIManifest {
	return &meta.OCIManifest{
		Repository: repo, Digest: dg, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 100,
		Subject: subject, ArtifactType: artifactType, Annotations: map[string]string{"k": dg},
	}
}

func testOCIRepositories(t *testing.T, s meta.Store) {
	reg, d := registryStore(t, s)
	ctx := t.Context()
	r := &meta.OCIRepository{Name: "app/web", DeploymentID: d.ID}
	if err := reg.PutOCIRepository(ctx, r); err != nil {
		t.Fatal(err)
	}
	wantUTC(t, "CreatedAt", r.CreatedAt)
	again := &meta.OCIRepository{Name: "app/web", DeploymentID: d.ID}
	if err := reg.PutOCIRepository(ctx, again); err != nil || !again.CreatedAt.Equal(r.CreatedAt) {
		t.Errorf("second put: %v, created %v, want %v", err, again.CreatedAt, r.CreatedAt)
	}
	other := ociDeployment(t, s, "other")
	wantErr(t, "taken name", reg.PutOCIRepository(ctx, &meta.OCIRepository{Name: "app/web", DeploymentID: other.ID}), meta.ErrConflict)
	wantErr(t, "unknown deployment", reg.PutOCIRepository(ctx, &meta.OCIRepository{Name: "x", DeploymentID: "dep_nope"}), meta.ErrNotFound)
	got, err := reg.GetOCIRepository(ctx, "app/web")
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "get", got, r)
	_, err = reg.GetOCIRepository(ctx, "app/nope")
	wantErr(t, "get unknown", err, meta.ErrNotFound)
	_, err = reg.GetOCIRepository(ctx, "x")
	wantErr(t, "get a repository whose put failed", err, meta.ErrNotFound)

	// Listing: byte-wise order ("app-b" < "app/web" < "app_c" < "appZ"
	// would differ under a locale collation), pages after last.
	for _, name := range []string{"app_c", "app-b", "app"} {
		putRepository(t, reg, name, d.ID)
	}
	for _, tc := range []struct {
		last string
		n    int
		want []string
	}{
		{"", 0, []string{"app", "app-b", "app/web", "app_c"}},
		{"", 2, []string{"app", "app-b"}},
		{"app-b", 2, []string{"app/web", "app_c"}},
		{"app/web", 0, []string{"app_c"}},
		{"app_c", 3, []string{}},
		{"zzz", 0, []string{}},
	} {
		got, err := reg.ListOCIRepositories(ctx, tc.last, tc.n)
		if err != nil || got == nil || !slices.Equal(got, tc.want) {
			t.Errorf("ListOCIRepositories(last %q, n %d) = %#v, %v; want %v", tc.last, tc.n, got, err, tc.want)
		}
	}
}

func testOCIBlobs(t *testing.T, s meta.Store) {
	reg, d := registryStore(t, s)
	ctx := t.Context()
	dg := ociDigest("layer")
	wantErr(t, "link into unknown repository", reg.LinkOCIBlob(ctx, "app", meta.OCIBlob{Digest: dg, Size: 3}), meta.ErrNotFound)
	for _, name := range []string{"app/b", "app"} {
		putRepository(t, reg, name, d.ID)
		for range 2 { // linking twice is fine
			if err := reg.LinkOCIBlob(ctx, name, meta.OCIBlob{Digest: dg, Size: 3}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if b, err := reg.GetOCIBlob(ctx, "app", dg); err != nil || b.Size != 3 || b.Digest != dg {
		t.Errorf("get: %+v, %v", b, err)
	}
	_, err := reg.GetOCIBlob(ctx, "app", ociDigest("other"))
	wantErr(t, "get unlinked digest", err, meta.ErrNotFound)
	repos, err := reg.OCIBlobRepositories(ctx, dg)
	if err != nil || !slices.Equal(repos, []string{"app", "app/b"}) {
		t.Errorf("repositories: %v, %v", repos, err)
	}
	if repos, err := reg.OCIBlobRepositories(ctx, ociDigest("nobody")); err != nil || repos == nil || len(repos) != 0 {
		t.Errorf("repositories of an unknown digest: %v, %v (want an empty, non-nil list)", repos, err)
	}
	if err := reg.UnlinkOCIBlob(ctx, "app", dg); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "unlink twice", reg.UnlinkOCIBlob(ctx, "app", dg), meta.ErrNotFound)
	_, err = reg.GetOCIBlob(ctx, "app", dg)
	wantErr(t, "get unlinked", err, meta.ErrNotFound)
	if repos, _ := reg.OCIBlobRepositories(ctx, dg); !slices.Equal(repos, []string{"app/b"}) {
		t.Errorf("after unlink: %v", repos)
	}
	// A manifest holds its digest too.
	m := &meta.OCIManifest{Repository: "app", Digest: dg, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 3}
	if err := reg.PutOCIManifest(ctx, m, ""); err != nil {
		t.Fatal(err)
	}
	if repos, _ := reg.OCIBlobRepositories(ctx, dg); !slices.Equal(repos, []string{"app", "app/b"}) {
		t.Errorf("with a manifest: %v", repos)
	}
}

func testOCIManifestsAndTags(t *testing.T, s meta.Store) {
	reg, d := registryStore(t, s)
	ctx := t.Context()
	putRepository(t, reg, "app", d.ID)
	wantErr(t, "unknown repository", reg.PutOCIManifest(ctx, manifestRec("app/x", "sha256:a", "", ""), "t"), meta.ErrNotFound)
	a, b := manifestRec("app", "sha256:a", "", ""), manifestRec("app", "sha256:b", "", "")
	for _, tag := range []string{"z", "latest", "v1", "V2"} {
		if err := reg.PutOCIManifest(ctx, a, tag); err != nil {
			t.Fatal(err)
		}
	}
	wantUTC(t, "CreatedAt", a.CreatedAt)
	// Putting the digest again keeps the stored record.
	changed := manifestRec("app", "sha256:a", "sha256:subj", "application/other")
	if err := reg.PutOCIManifest(ctx, changed, ""); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "record after a second put", changed, a)
	if err := reg.PutOCIManifest(ctx, b, "v1"); err != nil { // moves v1
		t.Fatal(err)
	}
	if got, err := reg.ResolveOCITag(ctx, "app", "v1"); err != nil || got != "sha256:b" {
		t.Errorf("v1 -> %q, %v", got, err)
	}
	_, err := reg.ResolveOCITag(ctx, "app", "nope")
	wantErr(t, "unknown tag", err, meta.ErrNotFound)
	got, err := reg.GetOCIManifest(ctx, "app", "sha256:a")
	if err != nil || got.Size != 100 || !maps.Equal(got.Annotations, a.Annotations) {
		t.Errorf("get: %+v, %v", got, err)
	}
	sameJSON(t, "get", got, a)
	_, err = reg.GetOCIManifest(ctx, "app", "sha256:nope")
	wantErr(t, "get unknown", err, meta.ErrNotFound)
	for _, tc := range []struct {
		last string
		n    int
		want []string
	}{
		{"", 0, []string{"V2", "latest", "v1", "z"}},
		{"", 2, []string{"V2", "latest"}},
		{"latest", 0, []string{"v1", "z"}},
		{"m", 1, []string{"v1"}},
		{"z", 5, []string{}},
	} {
		if got, err := reg.ListOCITags(ctx, "app", tc.last, tc.n); err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ListOCITags(last %q, n %d) = %v, %v; want %v", tc.last, tc.n, got, err, tc.want)
		}
	}
	if err := reg.DeleteOCITag(ctx, "app", "z"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "delete tag twice", reg.DeleteOCITag(ctx, "app", "z"), meta.ErrNotFound)
	if _, err := reg.GetOCIManifest(ctx, "app", "sha256:a"); err != nil {
		t.Errorf("manifest after deleting a tag: %v", err)
	}
	if err := reg.DeleteOCIManifest(ctx, "app", "sha256:a"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "delete manifest twice", reg.DeleteOCIManifest(ctx, "app", "sha256:a"), meta.ErrNotFound)
	_, err = reg.ResolveOCITag(ctx, "app", "latest")
	wantErr(t, "tag of a deleted manifest", err, meta.ErrNotFound)
	if got, _ := reg.ListOCITags(ctx, "app", "", 0); !slices.Equal(got, []string{"v1"}) {
		t.Errorf("tags after deletes: %v", got)
	}
	// A deleted manifest can be put again.
	if err := reg.PutOCIManifest(ctx, manifestRec("app", "sha256:a", "", ""), "latest"); err != nil {
		t.Fatal(err)
	}
	if got, err := reg.ResolveOCITag(ctx, "app", "latest"); err != nil || got != "sha256:a" {
		t.Errorf("latest after putting again -> %q, %v", got, err)
	}
}

func testOCIReferrers(t *testing.T, s meta.Store) {
	reg, d := registryStore(t, s)
	ctx := t.Context()
	for _, name := range []string{"app", "app/other"} {
		putRepository(t, reg, name, d.ID)
	}
	for _, m := range []*meta.OCIManifest{
		manifestRec("app", "sha256:s2", "sha256:subj", "application/sig"),
		manifestRec("app", "sha256:s1", "sha256:subj", "application/sbom"),
		manifestRec("app", "sha256:s3", "sha256:subj", "application/sig"),
		manifestRec("app", "sha256:x", "sha256:else", "application/sig"),
		manifestRec("app/other", "sha256:y", "sha256:subj", "application/sig"),
	} {
		if err := reg.PutOCIManifest(ctx, m, ""); err != nil {
			t.Fatal(err)
		}
	}
	digests := func(ms []meta.OCIManifest) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.Digest)
		}
		return out
	}
	all, err := reg.OCIReferrers(ctx, "app", "sha256:subj", "")
	if err != nil || !slices.Equal(digests(all), []string{"sha256:s1", "sha256:s2", "sha256:s3"}) {
		t.Fatalf("all: %v, %v", digests(all), err)
	}
	if all[0].Annotations["k"] != "sha256:s1" || all[0].ArtifactType != "application/sbom" || all[0].Subject != "sha256:subj" {
		t.Errorf("record: %+v", all[0])
	}
	sigs, err := reg.OCIReferrers(ctx, "app", "sha256:subj", "application/sig")
	if err != nil || !slices.Equal(digests(sigs), []string{"sha256:s2", "sha256:s3"}) {
		t.Errorf("filtered: %v, %v", digests(sigs), err)
	}
	none, err := reg.OCIReferrers(ctx, "app", "sha256:nobody", "")
	if err != nil || none == nil || len(none) != 0 {
		t.Errorf("none: %v, %v (want an empty, non-nil list)", none, err)
	}
}

func testOCIAnonymousPull(t *testing.T, s meta.Store) {
	reg, d := registryStore(t, s)
	ctx := t.Context()
	if on, err := reg.OCIAnonymousPull(ctx, d.ID); err != nil || on {
		t.Errorf("default: %v, %v", on, err)
	}
	for _, want := range []bool{true, true, false} {
		if err := reg.SetOCIAnonymousPull(ctx, d.ID, want); err != nil {
			t.Fatal(err)
		}
		if on, err := reg.OCIAnonymousPull(ctx, d.ID); err != nil || on != want {
			t.Errorf("after setting %v: %v, %v", want, on, err)
		}
	}
	wantErr(t, "unknown deployment", reg.SetOCIAnonymousPull(ctx, "dep_nope", true), meta.ErrNotFound)
	if on, err := reg.OCIAnonymousPull(ctx, "dep_nope"); err != nil || on {
		t.Errorf("unknown deployment: %v, %v", on, err)
	}
}

// concurrently runs fn(0) … fn(n-1) at once and reports every error.
func concurrently(t *testing.T, what string, n int, fn func(i int) error) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// testOCIConcurrentPuts: what a first push from several clients does at once
// (create the repository, link the same blobs, put manifests under one tag)
// all succeeds, and the records are those of one put.
func testOCIConcurrentPuts(t *testing.T, s meta.Store) {
	reg, d := registryStore(t, s)
	ctx := t.Context()
	const n = 8
	repos := make([]*meta.OCIRepository, n)
	concurrently(t, "PutOCIRepository", n, func(i int) error {
		repos[i] = &meta.OCIRepository{Name: "app/new", DeploymentID: d.ID}
		return reg.PutOCIRepository(ctx, repos[i])
	})
	for _, r := range repos[1:] {
		sameJSON(t, "repositories put at once", r, repos[0])
	}
	dg := ociDigest("shared layer")
	concurrently(t, "LinkOCIBlob", n, func(int) error {
		return reg.LinkOCIBlob(ctx, "app/new", meta.OCIBlob{Digest: dg, Size: 12})
	})
	if repos, err := reg.OCIBlobRepositories(ctx, dg); err != nil || !slices.Equal(repos, []string{"app/new"}) {
		t.Errorf("repositories: %v, %v", repos, err)
	}
	ms := make([]*meta.OCIManifest, n)
	concurrently(t, "PutOCIManifest, one manifest", n, func(i int) error {
		ms[i] = manifestRec("app/new", "sha256:m", "", "")
		return reg.PutOCIManifest(ctx, ms[i], "latest")
	})
	for _, m := range ms[1:] {
		sameJSON(t, "manifests put at once", m, ms[0])
	}
	concurrently(t, "PutOCIManifest, one tag", n, func(i int) error {
		return reg.PutOCIManifest(ctx, manifestRec("app/new", fmt.Sprintf("sha256:m%d", i%3), "", ""), "latest")
	})
	got, err := reg.ResolveOCITag(ctx, "app/new", "latest")
	if err != nil || !slices.Contains([]string{"sha256:m0", "sha256:m1", "sha256:m2"}, got) {
		t.Errorf("latest -> %q, %v", got, err)
	}
	if tags, err := reg.ListOCITags(ctx, "app/new", "", 0); err != nil || !slices.Equal(tags, []string{"latest"}) {
		t.Errorf("tags: %v, %v", tags, err)
	}
}

// testOCIConcurrentDeletes: puts and deletes of one manifest at once all
// succeed (a delete may find nothing to delete), and a tag never points at a
// manifest that is not there.
func testOCIConcurrentDeletes(t *testing.T, s meta.Store) {
	reg, d := registryStore(t, s)
	ctx := t.Context()
	putRepository(t, reg, "app", d.ID)
	for round := range 4 {
		concurrently(t, fmt.Sprint("round ", round), 8, func(i int) error {
			switch i % 4 {
			case 0, 1:
				return reg.PutOCIManifest(ctx, manifestRec("app", "sha256:a", "", ""), fmt.Sprint("t", i%2))
			case 2:
				return reg.PutOCIManifest(ctx, manifestRec("app", "sha256:b", "", ""), "t0")
			}
			if err := reg.DeleteOCIManifest(ctx, "app", "sha256:a"); err != nil && !errors.Is(err, meta.ErrNotFound) {
				return err
			}
			return nil
		})
		tags, err := reg.ListOCITags(ctx, "app", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range tags {
			dg, err := reg.ResolveOCITag(ctx, "app", tag)
			if err != nil {
				t.Fatalf("listed tag %s: %v", tag, err)
			}
			if _, err := reg.GetOCIManifest(ctx, "app", dg); err != nil {
				t.Errorf("round %d: tag %s points at %s: %v", round, tag, dg, err)
			}
		}
	}
}

// testOCIVersionTags: a version's tags are the tags of the deployment's
// repository that point at its manifest; OCIVersionByDigest finds it.
func testOCIVersionTags(t *testing.T, s meta.Store) {
	ctx := t.Context()
	reg, dep := registryStore(t, s)
	putRepository(t, reg, "app", dep.ID)
	putRepository(t, reg, "app/sub", dep.ID)
	d1, d2 := ociDigest("m1"), ociDigest("m2")
	for _, p := range []struct{ repo, dg, tag string }{
		{"app", d1, "v1"}, {"app", d1, "backup"}, {"app", d2, "v2"}, {"app/sub", d1, "other"},
	} {
		if err := reg.PutOCIManifest(ctx, manifestRec(p.repo, p.dg, "", ""), p.tag); err != nil {
			t.Fatal(err)
		}
	}
	_, err := reg.OCIVersionByDigest(ctx, dep.ID, d1)
	wantErr(t, "no version yet", err, meta.ErrNotFound)
	rel := meta.Release{SHA256: sha("m1"), Kind: meta.KindOCI, SizeBytes: 100, URI: "oci://x/app@" + d1}
	v, err := s.CreateVersion(ctx, meta.NewVersion{DeploymentID: dep.ID, Release: rel})
	if err != nil || fmt.Sprint(v.Tags) != "[backup v1]" {
		t.Fatalf("CreateVersion: %+v, %v", v, err)
	}
	got, err := reg.OCIVersionByDigest(ctx, dep.ID, d1)
	if err != nil || got.ID != v.ID || fmt.Sprint(got.Tags) != "[backup v1]" {
		t.Fatalf("OCIVersionByDigest: %+v, %v", got, err)
	}
	if err := reg.PutOCIManifest(ctx, manifestRec("app", d2, "", ""), "backup"); err != nil { // the tag moves
		t.Fatal(err)
	}
	if got, err = s.GetVersion(ctx, v.ID); err != nil || fmt.Sprint(got.Tags) != "[v1]" {
		t.Fatalf("GetVersion after the tag moved: %+v, %v", got, err)
	}
	if vs, err := s.ListVersions(ctx, dep.ID, 0, 0); err != nil || len(vs) != 1 || fmt.Sprint(vs[0].Tags) != "[v1]" {
		t.Fatalf("ListVersions: %+v, %v", vs, err)
	}
	_, err = reg.OCIVersionByDigest(ctx, dep.ID, "sha512:"+sha("m1"))
	wantErr(t, "sha512", err, meta.ErrInvalid)
}

// testOCIActivateOnPush: the tag is stored with a deployment.update event
// when it changes.
func testOCIActivateOnPush(t *testing.T, s meta.Store) {
	ctx := t.Context()
	reg, dep := registryStore(t, s)
	if dep.ActivateOnPush != "" {
		t.Fatalf("new deployment: activate_on_push %q", dep.ActivateOnPush)
	}
	d, err := reg.SetOCIActivateOnPush(ctx, dep.ID, "prod", "alice")
	if err != nil || d.ActivateOnPush != "prod" {
		t.Fatalf("set: %+v, %v", d, err)
	}
	if d, err = reg.SetOCIActivateOnPush(ctx, dep.ID, "prod", "alice"); err != nil || d.ActivateOnPush != "prod" {
		t.Fatalf("set again: %+v, %v", d, err)
	}
	if got, err := s.GetDeployment(ctx, dep.ID); err != nil || got.ActivateOnPush != "prod" {
		t.Fatalf("stored: %+v, %v", got, err)
	}
	evs, _ := s.ListEvents(ctx, meta.EventFilter{DeploymentID: dep.ID})
	n := 0
	for _, e := range evs {
		if e.Action == meta.ActionDeploymentUpdate {
			n++
			if string(e.Detail) != `{"after":{"activate_on_push":"prod"},"before":{"activate_on_push":""}}` {
				t.Errorf("detail %s", e.Detail)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d deployment.update events, want 1", n)
	}
	_, err = reg.SetOCIActivateOnPush(ctx, "dep_nope", "prod", "alice")
	wantErr(t, "unknown deployment", err, meta.ErrNotFound)
}
