package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// TestPublishServeRecords: publish, serve at {name}.localhost, and check the
// version record against docs/contract.md and the artifact bytes.
func TestPublishServeRecords(t *testing.T) {
	e := start(t)
	tree := site("one")
	v := e.publish("demo", tree)

	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := "archived_at artifact_manifest artifact_sha256 artifact_uri collected_at created_at deployment_id id preview_url source_sha256 status url version_number"
	if strings.Join(keys, " ") != want {
		t.Fatalf("version fields:\n got %s\nwant %s", strings.Join(keys, " "), want)
	}
	if v["version_number"].(float64) != 1 || v["status"] != "active" || !strings.HasPrefix(v["id"].(string), "ver_") {
		t.Fatalf("version: %v", v)
	}
	m := v["artifact_manifest"].(map[string]any)
	var total int
	for _, c := range tree {
		total += len(c)
	}
	if m["files"].(float64) != float64(len(tree)) || m["total_bytes"].(float64) != float64(total) || m["entrypoint"] != "index.html" {
		t.Fatalf("manifest %v, want %d files %d bytes", m, len(tree), total)
	}

	sha := v["artifact_sha256"].(string)
	req, _ := http.NewRequest("GET", e.api+"/v1/releases/"+sha+"/artifact", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	art, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(art)
	if resp.StatusCode != 200 || hex.EncodeToString(sum[:]) != sha {
		t.Fatalf("artifact: status %d, sha256 %x, want %s", resp.StatusCode, sum, sha)
	}
	var rel map[string]any
	e.do("GET", "/v1/releases/"+sha, nil, &rel)
	if rel["sha256"] != sha || rel["size_bytes"].(float64) != float64(len(art)) || rel["kind"] != "static" {
		t.Fatalf("release %v", rel)
	}

	// Range on the artifact.
	req.Header.Set("Range", "bytes=4-11")
	resp, _ = http.DefaultClient.Do(req)
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 206 || string(part) != string(art[4:12]) {
		t.Fatalf("artifact range: %d %q", resp.StatusCode, part)
	}

	r, body := e.get("demo.localhost", "/")
	if r.StatusCode != 200 || string(body) != tree["index.html"] {
		t.Fatalf("edge: %d %q", r.StatusCode, body)
	}
	var list struct {
		Versions   []map[string]any `json:"versions"`
		NextCursor string           `json:"next_cursor"`
	}
	e.do("GET", "/v1/deployments/demo/versions", nil, &list)
	if len(list.Versions) != 1 || list.Versions[0]["artifact_sha256"] != sha {
		t.Fatalf("versions list %v", list)
	}
}

// TestDedup: identical content gives two versions sharing one release.
func TestDedup(t *testing.T) {
	e := start(t)
	a := e.publish("demo", site("same"))
	b := e.publish("demo", site("same"))
	if a["artifact_sha256"] != b["artifact_sha256"] || a["id"] == b["id"] {
		t.Fatalf("want two versions sharing one release: %v %v", a["artifact_sha256"], b["artifact_sha256"])
	}
	if b["version_number"].(float64) != 2 {
		t.Fatalf("second version number %v", b["version_number"])
	}
	if n := e.blobCount(); n != 1 {
		t.Fatalf("%d blobs stored, want 1", n)
	}
}

// TestActivateRollback: publish twice, roll back, activate again; preview
// hosts keep serving their own version.
func TestActivateRollback(t *testing.T) {
	e := start(t)
	e.publish("demo", site("v1"))
	e.publish("demo", site("v2"))
	check := func(host, want string) {
		t.Helper()
		if _, b := e.get(host, "/"); string(b) != "<h1>"+want+"</h1>" {
			t.Fatalf("%s serves %q, want %s", host, b, want)
		}
	}
	check("demo.localhost", "v2")
	var d map[string]any
	if code, _ := e.do("POST", "/v1/deployments/demo/rollback", nil, &d); code != 200 {
		t.Fatalf("rollback: %d %v", code, d)
	}
	check("demo.localhost", "v1")
	check("demo--v2.localhost", "v2")
	check("demo--v1.localhost", "v1")
	if code, _ := e.do("POST", "/v1/deployments/demo/activate", e.jsonBody(map[string]any{"version_number": 2}), &d); code != 200 {
		t.Fatalf("activate: %d %v", code, d)
	}
	check("demo.localhost", "v2")
	var p map[string]any
	if code, _ := e.do("POST", "/v1/deployments/demo/activate", e.jsonBody(map[string]any{"version_number": 9}), &p); code != 404 {
		t.Fatalf("activate missing version: %d %v", code, p)
	}
	// custom domain pinned to v1
	if code, _ := e.do("POST", "/v1/domains", e.jsonBody(map[string]any{"hostname": "www.example.com", "deployment": "demo", "version_number": 1}), &p); code != 201 {
		t.Fatalf("domain add: %d %v", code, p)
	}
	check("www.example.com", "v1")
	if code, _ := e.do("PATCH", "/v1/domains/www.example.com", e.jsonBody(map[string]any{"version_number": nil}), &p); code != 200 {
		t.Fatalf("domain repoint: %d %v", code, p)
	}
	check("www.example.com", "v2")
	var evs struct{ Events []json.RawMessage }
	e.do("GET", "/v1/events?deployment=demo", nil, &evs)
	if len(evs.Events) < 5 {
		t.Fatalf("only %d events", len(evs.Events))
	}
}

// TestCompressedUploads: a tar body may be plain, gzip or zstd; all three
// give the same release.
func TestCompressedUploads(t *testing.T) {
	e := start(t)
	plain := tarOf(t, site("z"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	enc, _ := zstd.NewWriter(nil)
	e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "comp"}), nil)
	var shas []string
	for _, body := range [][]byte{plain, gz.Bytes(), enc.EncodeAll(plain, nil)} {
		var v map[string]any
		if code, _ := e.do("POST", "/v1/deployments/comp/versions", bytes.NewReader(body), &v); code != 201 {
			t.Fatalf("publish: %d %v", code, v)
		}
		shas = append(shas, v["artifact_sha256"].(string))
	}
	if shas[0] != shas[1] || shas[1] != shas[2] {
		t.Fatalf("compressed uploads gave different releases: %v", shas)
	}
}
