package registry_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
)

// runnable is a random OCI image with an entrypoint and a command.
func runnable(t testing.TB, layers int64, entrypoint, cmd []string) v1.Image {
	t.Helper()
	img, err := random.Image(16<<10, layers)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Config(img, v1.Config{Entrypoint: entrypoint, Cmd: cmd})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// wantRecord checks a version against the documented record of an image.
func wantRecord(t *testing.T, e *env, v *meta.Version, img v1.Image, entrypoint string) {
	t.Helper()
	d, _ := img.Digest()
	raw, _ := img.RawManifest()
	m, _ := img.Manifest()
	total := m.Config.Size
	for _, l := range m.Layers {
		total += l.Size
	}
	if v.ArtifactSHA256 != d.Hex || v.ArtifactURI != "oci://registry.test/app@"+d.String() {
		t.Errorf("version %d: artifact %s %s, want %s", v.VersionNumber, v.ArtifactSHA256, v.ArtifactURI, d)
	}
	want := meta.Manifest{Files: int64(len(m.Layers)), TotalBytes: total, Entrypoint: entrypoint}
	if v.ArtifactManifest != want {
		t.Errorf("version %d: manifest %+v, want %+v", v.VersionNumber, v.ArtifactManifest, want)
	}
	rel, err := e.meta.GetRelease(t.Context(), d.Hex)
	if err != nil || rel.Kind != meta.KindOCI || rel.SizeBytes != int64(len(raw)) || rel.URI != v.ArtifactURI {
		t.Errorf("release %+v, %v; want kind oci, %d bytes", rel, err, len(raw))
	}
}

func TestTagPushPublishesVersions(t *testing.T) { testTagPushPublishesVersions(t, newEnv) }

// testTagPushPublishesVersions: tag pushes to a deployment's repository
// publish and activate versions, which rollback and activate move between.
func testTagPushPublishesVersions(t *testing.T, newEnv newEnvFunc) {
	changed := 0
	e := newEnv(t, func(c *registry.Config) { c.Changed = func() { changed++ } })
	ctx := t.Context()
	img1 := runnable(t, 2, []string{"/bin/server"}, []string{"--port", "80"})
	img2 := runnable(t, 3, nil, []string{"nginx", "-g", "daemon off;"})

	e.push(t, img1, "app:v1")
	dep, err := e.meta.GetDeployment(ctx, "app")
	if err != nil || dep.Kind != meta.KindOCI {
		t.Fatalf("deployment created by the push: %+v, %v", dep, err)
	}
	v1rec, err := e.meta.GetVersionByNumber(ctx, dep.ID, 1)
	if err != nil || v1rec.Status != meta.StatusActive {
		t.Fatalf("version 1: %+v, %v", v1rec, err)
	}
	wantRecord(t, e, v1rec, img1, "/bin/server --port 80")

	// The active image under another tag, pushes to sub-repositories and
	// pushes by digest publish nothing.
	e.push(t, img1, "app:latest")
	e.push(t, img2, "app/cache:v1")
	d2, _ := img2.Digest()
	e.push(t, img2, "app@"+d2.String())
	if vs, _ := e.meta.ListVersions(ctx, dep.ID, 0, 0); len(vs) != 1 {
		t.Errorf("%d versions, want 1", len(vs))
	}

	e.push(t, img2, "app:v2")
	v2rec, err := e.meta.GetVersionByNumber(ctx, dep.ID, 2)
	if err != nil || v2rec.Status != meta.StatusActive {
		t.Fatalf("version 2: %+v, %v", v2rec, err)
	}
	wantRecord(t, e, v2rec, img2, "nginx -g daemon off;")
	if changed != 2 {
		t.Errorf("Changed called %d times, want 2", changed)
	}

	// Rollback and activate move the pointer between the two images.
	d, err := e.meta.Activate(ctx, dep.ID, 1, "tester", meta.ActionRollback)
	if err != nil || *d.ActiveVersionID != v1rec.ID {
		t.Fatalf("rollback: %+v, %v", d, err)
	}
	d, err = e.meta.Activate(ctx, dep.ID, 2, "tester", meta.ActionActivate)
	if err != nil || *d.ActiveVersionID != v2rec.ID {
		t.Fatalf("activate: %+v, %v", d, err)
	}

	// The manifest of a release cannot be deleted from the deployment's
	// repository; the tag can.
	resp, body := e.do(t, "DELETE", "/v2/app/manifests/"+d2.String(), nil)
	wantCode(t, "deleting a release's manifest", resp, body, 403, "DENIED")
	resp, body = e.do(t, "DELETE", "/v2/app/manifests/v2", nil)
	wantCode(t, "deleting a tag", resp, body, 202, "")
}

func TestVersionFromImage(t *testing.T) {
	e := newEnv(t, nil)
	ctx := t.Context()
	img := runnable(t, 1, []string{"/app"}, nil)
	e.push(t, img, "app/x:v1") // creates the deployment, not in its own repository
	dep, err := e.meta.GetDeployment(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err = e.reg.VersionFromImage(ctx, dep, "v1", true, "tester"); !errors.Is(err, meta.ErrNotFound) {
		t.Errorf("unknown tag: %v, want meta.ErrNotFound", err)
	}
	dg := e.push(t, img, "app@"+mustImageDigest(t, img))
	v, err := e.reg.VersionFromImage(ctx, dep, dg.String(), false, "tester")
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != meta.StatusReady || v.VersionNumber != 1 {
		t.Errorf("version %+v, want number 1, ready", v)
	}
	wantRecord(t, e, v, img, "/app")

	// The same manifest named by its sha512 digest makes no version.
	raw, _ := img.RawManifest()
	d512 := digest.SHA512.FromBytes(raw)
	resp, body := e.do(t, "PUT", "/v2/app/manifests/"+d512.String(), raw, "Content-Type", string(types.OCIManifestSchema1))
	wantCode(t, "pushing by sha512", resp, body, 201, "")
	for _, ref := range []string{"Not A Tag!", "sha256:abc", d512.String()} {
		if _, err := e.reg.VersionFromImage(ctx, dep, ref, true, "tester"); !errors.Is(err, meta.ErrInvalid) {
			t.Errorf("reference %q: %v, want meta.ErrInvalid", ref, err)
		}
	}
	// An artifact tagged in the deployment's repository makes no version.
	cfg := e.pushBlob(t, "app", []byte("{}"))
	art := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"artifactType":"application/vnd.example.sig",
		"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":%q,"size":2},"layers":[]}`,
		types.OCIManifestSchema1, cfg)
	resp, body = e.do(t, "PUT", "/v2/app/manifests/sig", []byte(art), "Content-Type", string(types.OCIManifestSchema1))
	wantCode(t, "pushing an artifact", resp, body, 201, "")
	if vs, _ := e.meta.ListVersions(ctx, dep.ID, 0, 0); len(vs) != 1 {
		t.Errorf("%d versions, want 1", len(vs))
	}

	static := &meta.Deployment{Name: "site", Kind: meta.KindStatic}
	if err := e.meta.CreateDeployment(ctx, static, "tester"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.VersionFromImage(ctx, static, "v1", true, "tester"); !errors.Is(err, meta.ErrInvalid) {
		t.Errorf("static deployment: %v, want meta.ErrInvalid", err)
	}
	resp, body = e.do(t, "POST", "/v2/site/blobs/uploads/", nil)
	wantCode(t, "pushing into a static deployment", resp, body, 403, "DENIED")
}

func mustImageDigest(t testing.TB, img v1.Image) string {
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
