package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// smallFS mounts a tmpfs of size (e.g. "16m") and returns its path; the
// test's end unmounts it (after the servers on it stopped). Mounting needs
// root, which the test runs have here and in CI: outside CI a non-root run
// skips, under CI=true it fails.
func smallFS(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test mounts a small tmpfs and must run as root in CI")
		}
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file at path until the filesystem is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, chunk := range []int{1 << 20, 4 << 10, 512} {
		buf := make([]byte, chunk)
		for {
			_, err := f.Write(buf)
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// leaveFree shortens the filler of a full filesystem so that n bytes are
// free.
func leaveFree(t *testing.T, filler string, n int) {
	t.Helper()
	fi, err := os.Stat(filler)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filler, fi.Size()-int64(n)); err != nil {
		t.Fatal(err)
	}
}

// noise returns n random (incompressible) bytes.
func noise(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// rawDo sends an authenticated request and returns the status and body.
func rawDo(t *testing.T, e *env, method, url string, body []byte, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// pushBlob uploads b to the registry in one request (POST ?digest=).
func pushBlob(t *testing.T, e *env, repo string, b []byte) (int, []byte) {
	t.Helper()
	sum := sha256.Sum256(b)
	code, _, body := rawDo(t, e, "POST", fmt.Sprintf("%s/v2/%s/blobs/uploads/?digest=sha256:%s", e.api, repo, hex.EncodeToString(sum[:])), b,
		"Content-Type", "application/octet-stream")
	return code, body
}

// TestDiskFull: a real server whose data dir (SQLite, blobs, staging) is on
// a small filesystem that fills up. A publish and a registry blob upload
// answer 507 with a readable problem (never a 500); every other write
// answers its usual status or 507; reads go on (the edge serves the site
// published before, the API answers GETs); once space is freed, a publish
// and an upload succeed without a restart.
func TestDiskFull(t *testing.T) {
	fsDir := smallFS(t, "16m")
	p := startProc(t, filepath.Join(fsDir, "data"), "--gc-interval", "0")
	e := p.env
	e.publish("live", site("before"))
	if code, body := pushBlob(t, e, "app", noise(1000)); code != 201 {
		t.Fatalf("registry upload before the disk filled: %d %s", code, body)
	}

	filler := filepath.Join(fsDir, "filler")
	fill(t, filler)
	big := map[string]string{"index.html": "<h1>after</h1>", "blob.bin": string(noise(256 << 10))}

	var prob map[string]any
	code, hdr, body := rawDo(t, e, "POST", e.api+"/v1/deployments/live/versions", tarOf(t, big))
	if err := json.Unmarshal(body, &prob); err != nil || code != http.StatusInsufficientStorage ||
		hdr.Get("Content-Type") != "application/problem+json" ||
		prob["type"] != "https://cairn.dev/problems/insufficient-storage" || prob["detail"] == "" {
		t.Errorf("publish on a full disk: %d %s %s, want 507 insufficient-storage problem+json", code, hdr.Get("Content-Type"), body)
	}
	code, body = pushBlob(t, e, "app", noise(256<<10))
	var oci struct {
		Errors []struct{ Code, Message string } `json:"errors"`
	}
	if err := json.Unmarshal(body, &oci); err != nil || code != http.StatusInsufficientStorage ||
		len(oci.Errors) != 1 || oci.Errors[0].Code != "INSUFFICIENT_STORAGE" || oci.Errors[0].Message == "" {
		t.Errorf("registry upload on a full disk: %d %s, want 507 INSUFFICIENT_STORAGE", code, body)
	}
	// Space for the upload's tree but not for its artifact, or for both
	// but not for what follows: the failure comes from packing into the
	// staging directory, or from storing the release (a store that copies
	// the artifact names its temporary file; the files store links the
	// staged artifact, which takes no space, so the version's record is
	// what finds the disk full), and answers 507 all the same.
	for _, c := range []struct {
		name    string
		free, n int
		inLog   []string // any of them
	}{
		{"pack", 400 << 10, 300 << 10, []string{"artifact.tar.zst: no space left on device"}},
		{"blob or record", 400 << 10, 160 << 10, []string{"blobs/tmp/put-", "database or disk is full"}},
	} {
		os.Remove(filler)
		fill(t, filler)
		leaveFree(t, filler, c.free)
		before := len(p.log.String())
		tree := map[string]string{"index.html": "<h1>after</h1>", "blob.bin": string(noise(c.n))}
		code, _, body := rawDo(t, e, "POST", e.api+"/v1/deployments/live/versions", tarOf(t, tree))
		if code != http.StatusInsufficientStorage {
			t.Errorf("publish failing in its %s step: %d %s, want 507", c.name, code, body)
		}
		// (the log comes through a pipe: it may lag the response)
		if !waitFor(5*time.Second, func() bool {
			return slices.ContainsFunc(c.inLog, func(s string) bool { return strings.Contains(p.log.String()[before:], s) })
		}) {
			t.Errorf("publish failing in its %s step: the log names none of %q:\n%s", c.name, c.inLog, p.log.String()[before:])
		}
	}
	os.Remove(filler)
	fill(t, filler)

	// Writes of metadata alone: done, or refused with 507; never a 500.
	for i := range 20 {
		code, _, body := rawDo(t, e, "POST", e.api+"/v1/deployments",
			[]byte(fmt.Sprintf(`{"name":"full%d","kind":"static"}`, i)), "Content-Type", "application/json")
		if code != 201 && code != http.StatusInsufficientStorage {
			t.Errorf("create a deployment on a full disk: %d %s, want 201 or 507", code, body)
		}
	}

	// Reads go on.
	if r, b := e.get("live.localhost", "/"); r.StatusCode != 200 || string(b) != "<h1>before</h1>" {
		t.Errorf("edge on a full disk: %d %q", r.StatusCode, b)
	}
	var d map[string]any
	if code, _ := e.do("GET", "/v1/deployments/live", nil, &d); code != 200 || d["name"] != "live" {
		t.Errorf("GET deployment on a full disk: %d %v", code, d)
	}
	var vs map[string]any
	if code, _ := e.do("GET", "/v1/deployments/live/versions", nil, &vs); code != 200 {
		t.Errorf("GET versions on a full disk: %d %v", code, vs)
	}

	if code, _, body := rawDo(t, e, "GET", e.api+"/readyz", nil); code != 200 {
		t.Errorf("/readyz on a full disk: %d %s; the server still serves reads", code, body)
	}

	// Space comes back: no restart needed.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if code, _ := e.do("POST", "/v1/deployments/live/versions", bytes.NewReader(tarOf(t, big)), &v); code != 201 {
		t.Fatalf("publish after space was freed: %d %v", code, v)
	}
	if r, b := e.get("live.localhost", "/"); r.StatusCode != 200 || string(b) != "<h1>after</h1>" {
		t.Errorf("edge after the publish: %d %q", r.StatusCode, b)
	}
	if code, body := pushBlob(t, e, "app", noise(256<<10)); code != 201 {
		t.Errorf("registry upload after space was freed: %d %s", code, body)
	}
	if !p.alive() {
		t.Error("the server exited")
	}
}
