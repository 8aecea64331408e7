package registry_test

import (
	"errors"
	"fmt"
	"strings"
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

// testTagPushPublishesVersions: a push never activates. A new digest pushed
// under a tag becomes a version that is not active, with its tags; the
// active version stays as it was; re-tagging a digest that has a version
// adds the tag and makes no version; activate and rollback move the pointer.
func testTagPushPublishesVersions(t *testing.T, newEnv newEnvFunc) {
	changed := 0
	e := newEnv(t, func(c *registry.Config) { c.Changed = func() { changed++ } })
	ctx := t.Context()
	img1 := runnable(t, 2, []string{"/bin/server"}, []string{"--port", "80"})
	img2 := runnable(t, 3, nil, []string{"nginx", "-g", "daemon off;"})

	e.push(t, img1, "app:v1")
	dep, err := e.meta.GetDeployment(ctx, "app")
	if err != nil || dep.Kind != meta.KindOCI || dep.ActiveVersionID != nil {
		t.Fatalf("deployment created by the push: %+v, %v", dep, err)
	}
	v1rec, err := e.meta.GetVersionByNumber(ctx, dep.ID, 1)
	if err != nil || v1rec.Status == meta.StatusActive || fmt.Sprint(v1rec.Tags) != "[v1]" {
		t.Fatalf("version 1: %+v, %v", v1rec, err)
	}
	wantRecord(t, e, v1rec, img1, "/bin/server --port 80")
	if dep, err = e.meta.Activate(ctx, dep.ID, 1, "tester", meta.ActionActivate); err != nil {
		t.Fatal(err)
	}

	// Re-tagging (crane tag app:v1 backup-of-v1), pushes to sub-repositories
	// and pushes by digest make no version.
	e.push(t, img1, "app:backup-of-v1")
	e.push(t, img2, "app/cache:v1")
	d2, _ := img2.Digest()
	e.push(t, img2, "app@"+d2.String())
	if vs, _ := e.meta.ListVersions(ctx, dep.ID, 0, 0); len(vs) != 1 || fmt.Sprint(vs[0].Tags) != "[backup-of-v1 v1]" {
		t.Errorf("versions %+v, want 1 with tags [backup-of-v1 v1]", vs)
	}

	// A new tag of a new image: a version that is not active; the active
	// version is unchanged.
	e.push(t, img2, "app:v2")
	v2rec, err := e.meta.GetVersionByNumber(ctx, dep.ID, 2)
	if err != nil || v2rec.Status == meta.StatusActive || fmt.Sprint(v2rec.Tags) != "[v2]" {
		t.Fatalf("version 2: %+v, %v", v2rec, err)
	}
	wantRecord(t, e, v2rec, img2, "nginx -g daemon off;")
	if cur, err := e.meta.GetDeployment(ctx, dep.ID); err != nil || cur.ActiveVersionID == nil || *cur.ActiveVersionID != v1rec.ID {
		t.Fatalf("after a push of app:v2 the active version is %v, want %s (%v)", cur.ActiveVersionID, v1rec.ID, err)
	}
	// A tag moved to the other image leaves the first version.
	e.push(t, img2, "app:backup-of-v1")
	if v, _ := e.meta.GetVersion(ctx, v1rec.ID); fmt.Sprint(v.Tags) != "[v1]" {
		t.Errorf("version 1 tags %v after the tag moved", v.Tags)
	}
	if changed != 2 {
		t.Errorf("Changed called %d times, want 2", changed)
	}

	// Activate and rollback move the pointer between the two images.
	d, err := e.meta.Activate(ctx, dep.ID, 2, "tester", meta.ActionActivate)
	if err != nil || *d.ActiveVersionID != v2rec.ID {
		t.Fatalf("activate: %+v, %v", d, err)
	}
	d, err = e.meta.Activate(ctx, dep.ID, 1, "tester", meta.ActionRollback)
	if err != nil || *d.ActiveVersionID != v1rec.ID {
		t.Fatalf("rollback: %+v, %v", d, err)
	}
	e.push(t, img2, "app:v3") // no version (v2 has the digest), no change
	if cur, _ := e.meta.GetDeployment(ctx, dep.ID); *cur.ActiveVersionID != v1rec.ID {
		t.Fatalf("a push changed the active version")
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
	e.createOCI(t, "app")
	ctx := t.Context()
	img := runnable(t, 1, []string{"/app"}, nil)
	e.push(t, img, "app/x:v1") // not in the deployment's own repository: no version
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

func TestActivateOnPush(t *testing.T) { testActivateOnPush(t, newEnv) }

// testActivateOnPush: with activate_on_push "prod", a push of prod activates
// the image it names, whether that digest has a version already (re-tag)
// or not; other tags still activate nothing.
func testActivateOnPush(t *testing.T, newEnv newEnvFunc) {
	e := newEnv(t, nil)
	ctx := t.Context()
	dep := e.createOCI(t, "app")
	if _, err := e.reg.SetActivateOnPush(ctx, dep, "bad tag", "tester"); !errors.Is(err, meta.ErrInvalid) {
		t.Errorf("invalid tag: %v", err)
	}
	dep, err := e.reg.SetActivateOnPush(ctx, dep, "prod", "tester")
	if err != nil || dep.ActivateOnPush != "prod" {
		t.Fatalf("set: %+v, %v", dep, err)
	}
	img1 := runnable(t, 1, []string{"/one"}, nil)
	img2 := runnable(t, 1, []string{"/two"}, nil)
	active := func() int64 {
		t.Helper()
		d, err := e.meta.GetDeployment(ctx, dep.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.ActiveVersionID == nil {
			return 0
		}
		v, err := e.meta.GetVersion(ctx, *d.ActiveVersionID)
		if err != nil {
			t.Fatal(err)
		}
		return v.VersionNumber
	}
	e.push(t, img1, "app:v1")
	if n := active(); n != 0 {
		t.Fatalf("app:v1 activated v%d", n)
	}
	e.push(t, img1, "app:prod") // re-tag: activates v1, no new version
	if n := active(); n != 1 {
		t.Fatalf("app:prod of v1's image: active v%d, want v1", n)
	}
	e.push(t, img2, "app:prod") // a new image under prod: v2, active
	if n := active(); n != 2 {
		t.Fatalf("app:prod of a new image: active v%d, want v2", n)
	}
	e.push(t, img1, "app:v9")
	if n := active(); n != 2 {
		t.Fatalf("app:v9: active v%d, want v2", n)
	}
	if vs, _ := e.meta.ListVersions(ctx, dep.ID, 0, 0); len(vs) != 2 {
		t.Errorf("%d versions, want 2", len(vs))
	}
	if dep, err = e.reg.SetActivateOnPush(ctx, dep, "", "tester"); err != nil || dep.ActivateOnPush != "" {
		t.Fatalf("unset: %+v, %v", dep, err)
	}
	e.push(t, img1, "app:prod")
	if n := active(); n != 2 {
		t.Fatalf("after unset, app:prod activated v%d", n)
	}
}

func TestNestedRepositoryRefused(t *testing.T) { testNestedRepositoryRefused(t, newEnv) }

// testNestedRepositoryRefused: team/app:v1 does not create a deployment
// team; it is refused with NAME_INVALID, which says why.
func testNestedRepositoryRefused(t *testing.T, newEnv newEnvFunc) {
	e := newEnv(t, nil)
	err := pushErr(e, runnable(t, 1, []string{"/x"}, nil), "team/app:v1")
	if err == nil || !strings.Contains(err.Error(), "NAME_INVALID") || !strings.Contains(err.Error(), `there is no deployment "team"`) {
		t.Fatalf("push of team/app:v1: %v", err)
	}
	if deps, err := e.meta.ListDeployments(t.Context()); err != nil || len(deps) != 0 {
		t.Fatalf("deployments %+v, %v", deps, err)
	}
}
