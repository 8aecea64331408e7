// Package e2e runs cairn's server in-process on loopback and drives it over
// HTTP, as a user would.
package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/server"
)

type env struct {
	t      *testing.T
	data   string
	api    string // http://host:port
	edge   string
	token  string
	cancel context.CancelFunc
	done   chan error
	blobs  string // the --blobs URL when not the data dir
}

func start(t *testing.T, mod ...func(*server.Config)) *env {
	t.Helper()
	e := &env{t: t, data: t.TempDir(), done: make(chan error, 1)}
	cfg := server.Default()
	cfg.DataDir = e.data
	cfg.APIAddr, cfg.EdgeAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	useBackends(t, &cfg)
	for _, m := range mod {
		m(&cfg)
	}
	e.blobs = cfg.Blobs
	ready := make(chan struct{})
	cfg.Ready = func(a, ed string) {
		e.api, e.edge = "http://"+a, "http://"+ed
		close(ready)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.done <- server.Run(ctx, cfg) }()
	select {
	case <-ready:
	case err := <-e.done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start in 10s")
	}
	tok, err := os.ReadFile(filepath.Join(e.data, server.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	e.token = strings.TrimSpace(string(tok))
	t.Cleanup(func() {
		cancel()
		if err := <-e.done; err != nil {
			t.Errorf("server: %v", err)
		}
	})
	return e
}

// do sends a request to the API and decodes a JSON answer into out.
func (e *env) do(method, path string, body io.Reader, out any) (int, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.api+path, body)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode, resp.Header
}

func (e *env) jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// publish uploads a tree (map path -> content) and returns the version.
func (e *env) publish(dep string, tree map[string]string) map[string]any {
	e.t.Helper()
	e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": dep, "kind": "static"}), nil)
	var v map[string]any
	code, _ := e.do("POST", "/v1/deployments/"+dep+"/versions", bytes.NewReader(tarOf(e.t, tree)), &v)
	if code != 201 {
		e.t.Fatalf("publish: %d %v", code, v)
	}
	return v
}

// get fetches path from the edge with the given Host.
func (e *env) get(host, path string, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.edge+path, nil)
	req.Host = host
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

func tarOf(t testing.TB, tree map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(tree))
	for n := range tree {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(tree[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(tree[n]))
	}
	tw.Close()
	return buf.Bytes()
}

// blobCount counts stored blobs in the data dir.
func (e *env) blobCount() int {
	if e.blobs != "" {
		return storeCount(e.t, e.blobs)
	}
	n := 0
	root := filepath.Join(e.data, "blobs")
	filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		rel, _ := filepath.Rel(root, p)
		if err == nil && info.Mode().IsRegular() && !strings.HasPrefix(rel, "tmp"+string(filepath.Separator)) {
			n++
		}
		return nil
	})
	return n
}

func site(tag string) map[string]string {
	return map[string]string{
		"index.html":       fmt.Sprintf("<h1>%s</h1>", tag),
		"about/index.html": "about " + tag,
		"app.js":           strings.Repeat("console.log('"+tag+"');\n", 100),
	}
}
