package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestOCIThroughServer pushes an image to the server's /v2/ with a standard
// client, which creates a version of an oci deployment, then makes another
// version through POST /v1/deployments/{dep}/versions {"image": …}.
func TestOCIThroughServer(t *testing.T) {
	e := start(t)
	host := strings.TrimPrefix(e.api, "http://")
	auth := remote.WithAuth(&authn.Basic{Username: "ci", Password: e.token})
	push := func(tag string) string {
		img, err := random.Image(1024, 3)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := name.ParseReference(host+"/app:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, auth); err != nil {
			t.Fatalf("push: %v", err)
		}
		d, _ := img.Digest()
		return d.Hex
	}
	first := push("v1")
	var v map[string]any
	if code, _ := e.do("GET", "/v1/deployments/app/versions/1", nil, &v); code != 200 || v["artifact_sha256"] != first {
		t.Fatalf("version 1 after a tag push: %d %v", code, v)
	}
	if m := v["artifact_manifest"].(map[string]any); m["files"].(float64) != 3 {
		t.Fatalf("manifest %v, want 3 layers", m)
	}
	// A push activates nothing; cairn activate does.
	var d map[string]any
	if code, _ := e.do("POST", "/v1/deployments/app/activate", e.jsonBody(map[string]any{"version_number": 1}), &d); code != 200 || d["active_version_id"] != v["id"] {
		t.Fatalf("activate v1: %d %v", code, d)
	}
	push("v2")
	if code, _ := e.do("GET", "/v1/deployments/app", nil, &d); code != 200 || d["active_version_id"] != v["id"] {
		t.Fatalf("a push of v2 changed the active version: %d %v", code, d)
	}
	var v3 map[string]any
	if code, _ := e.do("POST", "/v1/deployments/app/versions", e.jsonBody(map[string]any{"image": "v1"}), &v3); code != 201 || v3["artifact_sha256"] != first {
		t.Fatalf("version from image: %d %v", code, v3)
	}
	if code, _ := e.do("POST", "/v1/deployments/app/rollback", nil, &d); code != 200 {
		t.Fatalf("rollback: %d %v", code, d)
	}

	// Anonymous pull is off by default and can be turned on per deployment.
	anon, _ := name.ParseReference(host+"/app:v1", name.Insecure)
	if _, err := remote.Image(anon); err == nil {
		t.Fatal("anonymous pull allowed by default")
	}
	if code, _ := e.do("PATCH", "/v1/deployments/app", e.jsonBody(map[string]any{"anonymous_pull": true}), &d); code != 200 {
		t.Fatalf("patch anonymous_pull: %d %v", code, d)
	}
	if _, err := remote.Image(anon); err != nil {
		t.Fatalf("anonymous pull after opening it: %v", err)
	}
}
