package sqlite_test

import (
	"errors"
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
)

// The tests of meta.Registry. They use the interface only, so that they can
// move to metatest once another backend implements it.

func registryStore(t *testing.T) (*sqlite.Store, *meta.Deployment) {
	t.Helper()
	s := open(t, filepath.Join(t.TempDir(), "meta.db"))
	t.Cleanup(func() { s.Close() })
	d := &meta.Deployment{Name: "app", Kind: meta.KindOCI}
	if err := s.CreateDeployment(t.Context(), d, "tester"); err != nil {
		t.Fatal(err)
	}
	return s, d
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: %v, want %v", what, err, want)
	}
}

func TestOCIRepositories(t *testing.T) {
	s, d := registryStore(t)
	var reg meta.Registry = s
	ctx := t.Context()
	r := &meta.OCIRepository{Name: "app/web", DeploymentID: d.ID}
	if err := reg.PutOCIRepository(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.CreatedAt.IsZero() {
		t.Error("CreatedAt not filled")
	}
	again := &meta.OCIRepository{Name: "app/web", DeploymentID: d.ID}
	if err := reg.PutOCIRepository(ctx, again); err != nil || !again.CreatedAt.Equal(r.CreatedAt) {
		t.Errorf("second put: %v, created %v, want %v", err, again.CreatedAt, r.CreatedAt)
	}
	other := &meta.Deployment{Name: "other", Kind: meta.KindOCI}
	if err := s.CreateDeployment(ctx, other, "tester"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "taken name", reg.PutOCIRepository(ctx, &meta.OCIRepository{Name: "app/web", DeploymentID: other.ID}), meta.ErrConflict)
	wantErr(t, "unknown deployment", reg.PutOCIRepository(ctx, &meta.OCIRepository{Name: "x", DeploymentID: "dep_nope"}), meta.ErrNotFound)
	got, err := reg.GetOCIRepository(ctx, "app/web")
	if err != nil || got.DeploymentID != d.ID {
		t.Errorf("get: %+v, %v", got, err)
	}
	_, err = reg.GetOCIRepository(ctx, "app/nope")
	wantErr(t, "get unknown", err, meta.ErrNotFound)
}

func TestOCIBlobs(t *testing.T) {
	s, d := registryStore(t)
	var reg meta.Registry = s
	ctx := t.Context()
	const dg = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
	wantErr(t, "link into unknown repository", reg.LinkOCIBlob(ctx, "app", meta.OCIBlob{Digest: dg, Size: 3}), meta.ErrNotFound)
	for _, name := range []string{"app", "app/b"} {
		if err := reg.PutOCIRepository(ctx, &meta.OCIRepository{Name: name, DeploymentID: d.ID}); err != nil {
			t.Fatal(err)
		}
		for range 2 { // linking twice is fine
			if err := reg.LinkOCIBlob(ctx, name, meta.OCIBlob{Digest: dg, Size: 3}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if b, err := reg.GetOCIBlob(ctx, "app", dg); err != nil || b.Size != 3 || b.Digest != dg {
		t.Errorf("get: %+v, %v", b, err)
	}
	repos, err := reg.OCIBlobRepositories(ctx, dg)
	if err != nil || !slices.Equal(repos, []string{"app", "app/b"}) {
		t.Errorf("repositories: %v, %v", repos, err)
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

func manifestRec(repo, dg, subject, at string) *meta.OCIManifest {
	return &meta.OCIManifest{
		Repository: repo, Digest: dg, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 100,
		Subject: subject, ArtifactType: at, Annotations: map[string]string{"k": dg},
	}
}

func TestOCIManifestsAndTags(t *testing.T) {
	s, d := registryStore(t)
	var reg meta.Registry = s
	ctx := t.Context()
	if err := reg.PutOCIRepository(ctx, &meta.OCIRepository{Name: "app", DeploymentID: d.ID}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "unknown repository", reg.PutOCIManifest(ctx, manifestRec("app/x", "sha256:a", "", ""), "t"), meta.ErrNotFound)
	a, b := manifestRec("app", "sha256:a", "", ""), manifestRec("app", "sha256:b", "", "")
	for _, tag := range []string{"z", "latest", "v1", "V2"} {
		if err := reg.PutOCIManifest(ctx, a, tag); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.PutOCIManifest(ctx, b, "v1"); err != nil { // moves v1
		t.Fatal(err)
	}
	if got, err := reg.ResolveOCITag(ctx, "app", "v1"); err != nil || got != "sha256:b" {
		t.Errorf("v1 -> %q, %v", got, err)
	}
	got, err := reg.GetOCIManifest(ctx, "app", "sha256:a")
	if err != nil || got.Size != 100 || !maps.Equal(got.Annotations, a.Annotations) || got.CreatedAt.IsZero() {
		t.Errorf("get: %+v, %v", got, err)
	}
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
	if err := reg.DeleteOCIManifest(ctx, "app", "sha256:a"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "delete manifest twice", reg.DeleteOCIManifest(ctx, "app", "sha256:a"), meta.ErrNotFound)
	_, err = reg.ResolveOCITag(ctx, "app", "latest")
	wantErr(t, "tag of a deleted manifest", err, meta.ErrNotFound)
	if got, _ := reg.ListOCITags(ctx, "app", "", 0); !slices.Equal(got, []string{"v1"}) {
		t.Errorf("tags after deletes: %v", got)
	}
}

func TestOCIReferrers(t *testing.T) {
	s, d := registryStore(t)
	var reg meta.Registry = s
	ctx := t.Context()
	for _, name := range []string{"app", "app/other"} {
		if err := reg.PutOCIRepository(ctx, &meta.OCIRepository{Name: name, DeploymentID: d.ID}); err != nil {
			t.Fatal(err)
		}
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
		t.Errorf("all: %v, %v", digests(all), err)
	}
	if all[0].Annotations["k"] != "sha256:s1" || all[0].ArtifactType != "application/sbom" {
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

func TestOCIAnonymousPull(t *testing.T) {
	s, d := registryStore(t)
	var reg meta.Registry = s
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
