package registry_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// auth logs in as `docker login` does: any user, the token as password.
func (e *env) auth() remote.Option {
	return remote.WithAuth(&authn.Basic{Username: "someone", Password: testToken})
}

func (e *env) ref(t testing.TB, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(e.host()+"/"+s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func pushErr(e *env, img v1.Image, ref string) error {
	r, err := name.ParseReference(e.host()+"/"+ref, name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(r, img, e.auth())
}

func (e *env) push(t testing.TB, img v1.Image, ref string) v1.Hash {
	t.Helper()
	if err := pushErr(e, img, ref); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkPulled pulls ref and checks the manifest digest and every blob.
func (e *env) checkPulled(t *testing.T, ref string, want v1.Image) {
	t.Helper()
	got, err := remote.Image(e.ref(t, ref), e.auth())
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	gd, _ := got.Digest()
	wd, _ := want.Digest()
	if gd != wd {
		t.Errorf("%s: digest %s, want %s", ref, gd, wd)
	}
	raw, err := got.RawConfigFile()
	if err != nil {
		t.Fatalf("%s: config: %v", ref, err)
	}
	if cd, _ := got.ConfigName(); hash(raw) != cd.Hex {
		t.Errorf("%s: config does not hash to %s", ref, cd)
	}
	layers, err := got.Layers()
	if err != nil {
		t.Fatal(err)
	}
	wantLayers, _ := want.Layers()
	if len(layers) != len(wantLayers) {
		t.Fatalf("%s: %d layers, want %d", ref, len(layers), len(wantLayers))
	}
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: layer %d: %v", ref, i, err)
		}
		if d, _ := wantLayers[i].Digest(); hash(b) != d.Hex {
			t.Errorf("%s: layer %d does not hash to %s", ref, i, d)
		}
	}
}

func hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestPushPullImages pushes multi-layer images with go-containerregistry,
// pulls them back by tag and by digest, and checks that a layer shared by
// two images in two repositories is stored once.
func TestPushPullImages(t *testing.T) { testPushPullImages(t, newEnv) }

func testPushPullImages(t *testing.T, newEnv newEnvFunc) {
	e := newEnv(t, nil)
	e.createOCI(t, "shop")
	img1, err := random.Image(64<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	d1 := e.push(t, img1, "shop/web:v1")
	e.checkPulled(t, "shop/web:v1", img1)
	e.checkPulled(t, "shop/web@"+d1.String(), img1)
	// 3 layers, a config and the manifest.
	if n := e.blobCount(t); n != 5 {
		t.Errorf("%d blobs after the first image, want 5", n)
	}

	extra, err := random.Layer(32<<10, types.OCILayer)
	if err != nil {
		t.Fatal(err)
	}
	img2, err := mutate.AppendLayers(img1, extra)
	if err != nil {
		t.Fatal(err)
	}
	d2 := e.push(t, img2, "shop/worker:v1")
	e.checkPulled(t, "shop/worker:v1", img2)
	e.checkPulled(t, "shop/worker@"+d2.String(), img2)
	// One new layer, a new config and a new manifest; the three shared
	// layers are not stored again.
	if n := e.blobCount(t); n != 8 {
		t.Errorf("%d blobs after the second image, want 8", n)
	}
	// Each repository serves only what was pushed to it.
	extraDigest, _ := extra.Digest()
	resp, body := e.do(t, "HEAD", "/v2/shop/web/blobs/"+extraDigest.String(), nil)
	wantCode(t, "a layer of another repository", resp, body, 404, "")

	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img1}, mutate.IndexAddendum{Add: img2})
	if err := remote.WriteIndex(e.ref(t, "shop/web:multi"), idx, e.auth()); err != nil {
		t.Fatalf("pushing an index: %v", err)
	}
	got, err := remote.Index(e.ref(t, "shop/web:multi"), e.auth())
	if err != nil {
		t.Fatal(err)
	}
	if gd, _ := got.Digest(); gd != mustDigest(t, idx) {
		t.Errorf("index digest %s, want %s", gd, mustDigest(t, idx))
	}
	tags, err := remote.List(e.ref(t, "shop/web:v1").Context(), e.auth())
	if err != nil || len(tags) != 2 || tags[0] != "multi" || tags[1] != "v1" {
		t.Errorf("tags %v, %v", tags, err)
	}
}

func mustDigest(t testing.TB, idx v1.ImageIndex) v1.Hash {
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
