package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// releaseServer runs the real binary's `cairn server` with extra flags and
// GOMAXPROCS=1 (the packer's in-flight budget is then 24 MiB), and returns
// an env that talks to it.
func releaseServer(t *testing.T, args ...string) *env {
	t.Helper()
	dir := t.TempDir()
	api, edge := freeAddr(t), freeAddr(t)
	tok := strings.Repeat("t0k", 14)
	c := exec.Command(cairnBinary(t), append([]string{"server", "--data", filepath.Join(dir, "data"),
		"--api-addr", api, "--edge-addr", edge, "--token", tok}, args...)...)
	c.Env = append(os.Environ(), "CAIRN_LOG_LEVEL=warn", "GOMAXPROCS=1")
	c.Stderr = io.Discard
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Signal(os.Interrupt); c.Wait() })
	waitListen(t, api)
	waitListen(t, edge)
	return &env{t: t, data: filepath.Join(dir, "data"), api: "http://" + api, edge: "http://" + edge, token: tok}
}

// upload posts body as a new version of dep and returns the status and body.
func (e *env) upload(dep string, body []byte) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.api+"/v1/deployments/"+dep+"/versions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.token)
	client := &http.Client{Timeout: time.Minute}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// headerOnlyTar is a tar of n empty files with paths of about 4 KiB (PAX
// headers of ~5 KiB each) below 15 directories: n + 15 entries.
func headerOnlyTar(t *testing.T, n int) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := ""
	for range 15 {
		dir += strings.Repeat("d", 250) + "/"
		tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755})
	}
	for i := range n {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%s%0200d", dir, i), Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// TestHostileReleases: against the real binary, an upload of empty files
// whose headers alone outweigh the packer's budget, at --max-files, is
// published in bounded time (it hung the packer for good before); an
// upload whose link escapes only through another link, a name that is not
// UTF-8 and a 300-byte path component each answer 400 invalid-upload; and
// the server keeps serving.
func TestHostileReleases(t *testing.T) {
	const files = 5500 // 5,500 headers of ~5 KiB: 28 MiB of tar, over 24 MiB
	e := releaseServer(t, "--max-files", fmt.Sprint(files+15))
	e.publish("good", site("ok"))
	e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "hostile"}), nil)

	start := time.Now()
	if code, body := e.upload("hostile", headerOnlyTar(t, files)); code != 201 {
		t.Fatalf("empty files at --max-files: %d %s", code, body)
	}
	t.Logf("%d empty files with 4 KiB names published in %v", files, time.Since(start))
	if code, body := e.upload("hostile", headerOnlyTar(t, files+1)); code != 413 {
		t.Fatalf("one entry over --max-files: %d %s", code, body)
	}

	cases := map[string][]byte{
		"link escaping through a link": rawTar(hdr{name: "index.html", typ: tar.TypeReg, body: "x"},
			hdr{name: "a/up", typ: tar.TypeSymlink, link: ".."}, hdr{name: "a/esc", typ: tar.TypeSymlink, link: "up/../.."}),
		"name not UTF-8":     rawGNU(t, "caf\xe9.html"),
		"300-byte component": rawTar(file(strings.Repeat("n", 300)+"/index.html", "x")),
	}
	for name, body := range cases {
		code, resp := e.upload("hostile", body)
		if code != 400 || !strings.Contains(resp, `"type":"https://cairn.dev/problems/invalid-upload"`) {
			t.Errorf("%s: %d %s", name, code, resp)
		}
	}
	var list struct{ Versions []any }
	e.do("GET", "/v1/deployments/hostile/versions", nil, &list)
	if len(list.Versions) != 1 {
		t.Fatalf("%d versions, want the empty files' only", len(list.Versions))
	}
	if r, b := e.get("good.localhost", "/"); r.StatusCode != 200 || string(b) != "<h1>ok</h1>" {
		t.Fatalf("server stopped serving: %d %q", r.StatusCode, b)
	}
	if v := e.publish("good", site("two")); v["version_number"].(float64) != 2 {
		t.Fatalf("publish after the hostile uploads: %v", v)
	}
}

// rawGNU is a tar of one file whose name the PAX writer refuses (not
// UTF-8), in the GNU format that carries any bytes.
func rawGNU(t *testing.T, name string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1, Format: tar.FormatGNU}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("x"))
	tw.Close()
	return buf.Bytes()
}
