package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

func siteDir(t *testing.T) string {
	dir := t.TempDir()
	for name, body := range map[string]string{"index.html": "<h1>hi</h1>", "css/site.css": "body{}"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("upload is not a tar: %v", err)
		}
		names = append(names, h.Name)
	}
}

func TestPublishCreatesStreamsAndAttachesDomain(t *testing.T) {
	api := newFakeAPI(t)
	stdout, stderr, code := cli(t, nil, "publish", siteDir(t), "--deployment", "fresh", "--domain", "WWW.example.com",
		"--entrypoint", "index.html", "--api", api.URL, "--token", "t")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got []string
	for _, r := range api.requests() {
		got = append(got, r.Method+" "+r.Path+" "+r.Query)
	}
	want := []string{
		"GET /v1/deployments/fresh ",
		"GET /v1/domains/www.example.com ",
		"POST /v1/deployments/fresh/versions activate=true&create=true&entrypoint=index.html",
		"POST /v1/domains ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	reqs := api.requests()
	if names := strings.Join(tarNames(t, reqs[2].Body), " "); names != "css/ css/site.css index.html" {
		t.Errorf("uploaded tar holds %q", names)
	}
	if b := string(reqs[3].Body); b != `{"deployment":"fresh","hostname":"www.example.com"}` {
		t.Errorf("domain body %s", b)
	}
	for _, line := range []string{
		"created deployment fresh (static)",
		"published fresh v4 (sha256 ab12cd34ef56…, 42 files, 1.2 MB) → https://fresh.sites.test/",
		"preview: https://fresh--v4.sites.test/",
		"domain www.example.com → fresh (follows the active version)",
	} {
		if !strings.Contains(stdout, line+"\n") {
			t.Errorf("stdout lacks %q:\n%s", line, stdout)
		}
	}
}

func TestPublishJSON(t *testing.T) {
	api := newFakeAPI(t)
	stdout, stderr, code := cli(t, map[string]string{"CAIRN_TOKEN": "t"}, "--json", "publish", siteDir(t),
		"--deployment", "demo", "--no-activate", "--api", api.URL)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var v meta.Version
	if err := json.Unmarshal([]byte(stdout), &v); err != nil || v.VersionNumber != 4 {
		t.Errorf("stdout %q: %v", stdout, err)
	}
	// The fake server has no incremental publishes (404): the CLI falls
	// back to the tar upload.
	reqs := api.requests()
	if p := reqs[1].Method + " " + reqs[1].Path; p != "POST /v1/deployments/demo/publishes" {
		t.Errorf("second request %s, want the manifest", p)
	}
	if q := reqs[len(reqs)-1].Query; q != "activate=false" {
		t.Errorf("query %q", q)
	}
}

// A tree the walk cannot send fails before anything is sent.
func TestPublishWalkError(t *testing.T) {
	api := newFakeAPI(t)
	dir := siteDir(t)
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	_, stderr, code := cli(t, nil, "publish", dir, "--deployment", "demo", "--api", api.URL, "--token", "t")
	if code != 1 || stderr != "cairn: "+filepath.Join(dir, "pipe")+": not a regular file, directory or symlink\n" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	if reqs := api.requests(); len(reqs) != 0 {
		t.Errorf("%d requests reached the server", len(reqs))
	}
}

func TestPublishNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	_, stderr, code := cli(t, nil, "publish", f, "--deployment", "demo")
	if code != 1 || !strings.HasPrefix(stderr, "cairn: "+f+" is neither a directory nor a release made by cairn pack (") ||
		strings.Count(stderr, "\n") != 1 {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
