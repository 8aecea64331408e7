package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestProxyRewrites drives a real `cairn server --edge-proxy-allow-private`
// process and the real CLI: a site whose _redirects proxies /api/* to an
// upstream on loopback is refused while the deployment's proxy_rewrites is
// off (CLI: one line, non-zero exit; API: 400 naming the line), publishes
// once `cairn deployment set --proxy-rewrites` turned it on, and the edge
// then proxies; turned off again, the path answers 404 at once.
func TestProxyRewrites(t *testing.T) {
	streamDone := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Upstream", "yes")
		if r.URL.Path == "/v1/stream" { // an event stream: the first event must arrive before the end
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-streamDone:
			case <-r.Context().Done():
			}
			return
		}
		io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" host="+r.Host+" xfh="+r.Header.Get("X-Forwarded-Host"))
	}))
	defer up.Close()
	defer close(streamDone)
	p := startProc(t, t.TempDir(), "--edge-proxy-allow-private")
	e := p.env
	tree := map[string]string{
		"index.html": "home",
		"404.html":   "site not found",
		"_redirects": "/api/*  " + up.URL + "/v1/:splat  200\n/users/:id  " + up.URL + "/u/:id?src=site  200\n",
	}
	dir := siteDir(t, tree)
	e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "front", "kind": "static"}), nil)

	_, stderr, code := e.runCLI(dir, "publish", ".", "--deployment", "front")
	if code == 0 || !strings.Contains(stderr, "_redirects line 1: proxying") || !strings.Contains(stderr, "proxy_rewrites") ||
		strings.Count(stderr, "\n") != 1 {
		t.Fatalf("publish with proxy_rewrites off: exit %d, %q", code, stderr)
	}
	var prob map[string]any
	status, hdr := e.do("POST", "/v1/deployments/front/versions", bytes.NewReader(tarOf(t, tree)), &prob)
	if detail, _ := prob["detail"].(string); status != 400 || hdr.Get("Content-Type") != "application/problem+json" ||
		!strings.HasSuffix(prob["type"].(string), "/invalid-site-rules") ||
		!strings.HasPrefix(detail, `_redirects line 1: proxying "/api/*"`) || !strings.Contains(detail, "(and 1 more refused lines)") {
		t.Fatalf("API publish with proxy_rewrites off: %d %v", status, prob)
	}

	out, stderr, code := e.runCLI(dir, "deployment", "set", "front", "--proxy-rewrites", "--json")
	var d map[string]any
	if err := json.Unmarshal([]byte(out), &d); code != 0 || err != nil || d["proxy_rewrites"] != true || d["spa"] != false {
		t.Fatalf("deployment set --proxy-rewrites --json: %d %q %q", code, out, stderr)
	}
	if _, stderr, code = e.runCLI(dir, "publish", ".", "--deployment", "front"); code != 0 {
		t.Fatalf("publish with proxy_rewrites on: %d %s", code, stderr)
	}
	upHost := strings.TrimPrefix(up.URL, "http://")
	for path, want := range map[string]string{
		"/api/items/7?sort=asc": "GET /v1/items/7?sort=asc host=" + upHost + " xfh=front.localhost",
		"/users/ann?x=1":        "GET /u/ann?src=site host=" + upHost + " xfh=front.localhost",
	} {
		resp, body := e.noFollow("front.localhost", path)
		if resp.StatusCode != 200 || body != want || resp.Header.Get("X-Upstream") != "yes" {
			t.Errorf("%s: %d %q, want %q", path, resp.StatusCode, body, want)
		}
	}
	req, _ := http.NewRequest("GET", e.edge+"/api/stream", nil)
	req.Host = "front.localhost"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, len("data: first\n\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "data: first\n\n" {
		t.Errorf("a streamed response is held back: %q %v", first, err)
	}
	resp.Body.Close()
	cancel()

	e.do("GET", "/v1/deployments/front", nil, &d)
	if d["proxy_rewrites"] != true {
		t.Errorf("GET deployment: %v", d)
	}

	if out, stderr, code = e.runCLI(dir, "deployment", "set", "front", "--proxy-rewrites=false"); code != 0 ||
		!strings.Contains(out, "proxy rewrites off") {
		t.Fatalf("deployment set --proxy-rewrites=false: %d %q %q", code, out, stderr)
	}
	if resp, body := e.noFollow("front.localhost", "/api/items/7"); resp.StatusCode != 404 || body != "site not found" {
		t.Errorf("proxy_rewrites off after the publish: %d %q, want the 404 page", resp.StatusCode, body)
	}

	e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "img", "kind": "oci"}), nil)
	if code, _ := e.do("PATCH", "/v1/deployments/img", e.jsonBody(map[string]any{"proxy_rewrites": true}), &prob); code != 400 {
		t.Errorf("proxy_rewrites on an oci deployment: %d %v", code, prob)
	}
}
