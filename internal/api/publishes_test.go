package api

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// TestIncrementalPublish: start with a manifest, send what is missing,
// commit; a second publish of the same tree has nothing missing and gives
// the same release; a lying content is refused with 422.
func TestIncrementalPublish(t *testing.T) {
	a := newAPI(t)
	if r, _ := call(a, "POST", "/v1/deployments", `{"name":"demo"}`, true); r.StatusCode != 201 {
		t.Fatalf("create: %d", r.StatusCode)
	}
	page := "<h1>hi</h1>"
	sum := sha256.Sum256([]byte(page))
	sha := hex.EncodeToString(sum[:])
	manifest := `{"version":1,"entries":[{"path":"index.html","type":"file","mode":420,"size":11,"sha256":"` + sha + `"}]}`
	var releases []any
	for round := range 2 {
		r, out := call(a, "POST", "/v1/deployments/demo/publishes", manifest, true)
		if r.StatusCode != 201 {
			t.Fatalf("start: %d %v", r.StatusCode, out)
		}
		id, missing := out["id"].(string), out["missing"].([]any)
		if want := 1 - round; len(missing) != want {
			t.Fatalf("round %d: missing %v, want %d", round, missing, want)
		}
		base := "/v1/deployments/demo/publishes/" + id
		if round == 0 {
			if r, out := call(a, "PUT", base+"/contents/"+sha, "<h1>ho</h1>", true); r.StatusCode != 422 {
				t.Errorf("lying content: %d %v", r.StatusCode, out)
			}
			if r, out := call(a, "POST", base+"/commit", "", true); r.StatusCode != 409 {
				t.Errorf("commit without contents: %d %v", r.StatusCode, out)
			}
			if r, out := call(a, "PUT", base+"/contents/"+sha, page, true); r.StatusCode != 204 {
				t.Fatalf("content: %d %v", r.StatusCode, out)
			}
		}
		r, out = call(a, "POST", base+"/commit", "", true)
		if r.StatusCode != 201 {
			t.Fatalf("commit: %d %v", r.StatusCode, out)
		}
		releases = append(releases, out["artifact_sha256"])
		if r, _ := call(a, "DELETE", base, "", true); r.StatusCode != 404 {
			t.Errorf("a committed publish is still there: %d", r.StatusCode)
		}
	}
	if releases[0] != releases[1] || releases[0] == nil {
		t.Errorf("releases %v, want one", releases)
	}
}
