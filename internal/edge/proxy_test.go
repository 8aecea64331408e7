package edge

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// seen is what the upstream of a proxy test was sent.
type seen struct {
	Method, Path, Query, Host, Body string
	XFF, XFHost, XFProto, Hop, Auth string
	Cairn                           string
}

// newUpstream is a real HTTP server on loopback that answers every request
// with what it was sent (as JSON), and /slow after a delay.
func newUpstream(t *testing.T, hits *atomic.Int64) *httptest.Server {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		b, _ := io.ReadAll(r.Body)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "private, max-age=5")
		h.Set("X-Upstream", "yes")
		h.Set("X-Cairn-Version", "spoofed")
		h.Set("Connection", "X-Hop-Back")
		h.Set("X-Hop-Back", "1")
		json.NewEncoder(w).Encode(seen{
			Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Host: r.Host, Body: string(b),
			XFF: r.Header.Get("X-Forwarded-For"), XFHost: r.Header.Get("X-Forwarded-Host"),
			XFProto: r.Header.Get("X-Forwarded-Proto"), Hop: r.Header.Get("X-Hop"),
			Auth: r.Header.Get("Authorization"), Cairn: r.Header.Get("X-Cairn-Test"),
		})
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	return srv
}

func (v *env) setProxy(d *meta.Deployment, on bool) {
	v.t.Helper()
	if _, err := v.meta.SetPolicy(context.Background(), d.ID, meta.Policy{ProxyRewrites: &on}, "test"); err != nil {
		v.t.Fatal(err)
	}
	v.edge.Invalidate()
}

func (v *env) do(req *http.Request) (*http.Response, []byte) {
	v.t.Helper()
	resp, err := v.client.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		v.t.Fatal(err)
	}
	return resp, b
}

func proxySite(up, down string) map[string]string {
	return map[string]string{
		"index.html":    "home",
		"404.html":      "site not found",
		"api/file.html": "a file of the site",
		"_redirects": "/api/*  " + up + "/:splat  200\n" +
			"/shop/:id  " + up + "/items/:id?ref=site  200\n" +
			"/search q=:q  " + up + "/find?query=:q  200\n" +
			"/down/*  " + down + "/:splat  200\n" +
			"/slow  " + up + "/slow  200\n" +
			"/moved  /index.html  301\n",
		"_headers": "/*\n  X-Frame-Options: DENY\n",
	}
}

// TestProxyRules: with proxy_rewrites, a proxy rule's requests reach a real
// upstream with the splat, placeholders and query filled in, the
// X-Forwarded-* headers of the edge and no hop-by-hop header; the
// upstream's response comes back without the site's _headers; an upstream
// that is down answers 502 and one that is slow 504, both problem+json
// without internal detail. Turned off, the rules answer 404 (405 for
// other methods) at once.
func TestProxyRules(t *testing.T) {
	var hits atomic.Int64
	up := newUpstream(t, &hits)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close() // nothing listens there any more
	// 2 s: long enough for a loaded CI machine, short for /slow (504)
	v := newEnv(t, Config{ProxyAllowPrivate: true, ProxyTimeout: 2 * time.Second})
	d := v.deploy("site")
	v.publish(d, proxySite(up.URL, deadURL), true)
	v.setProxy(d, true)
	host := "site.localhost"
	upHost := strings.TrimPrefix(up.URL, "http://")

	get := func(path string, hdrs ...string) (*http.Response, seen) {
		t.Helper()
		resp, body := v.mustGet(host, path, http.StatusOK, hdrs...)
		var s seen
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatalf("GET %s: %v in %q", path, err, body)
		}
		return resp, s
	}

	resp, s := get("/api/v1/a%20b/c?x=1&y=%2F", "X-Forwarded-For: 6.6.6.6", "Connection: X-Hop",
		"X-Hop: 1", "Authorization: Bearer site-token")
	want := seen{Method: "GET", Path: "/v1/a%20b/c", Query: "x=1&y=%2F", Host: upHost,
		XFF: "127.0.0.1", XFHost: host, XFProto: "http", Auth: "Bearer site-token"}
	if s != want {
		t.Errorf("upstream saw %+v\nwant         %+v", s, want)
	}
	h := resp.Header
	if h.Get("X-Upstream") != "yes" || h.Get("Cache-Control") != "private, max-age=5" ||
		h.Get("Content-Type") != "application/json" {
		t.Errorf("the upstream's headers were not passed on: %v", h)
	}
	if h.Get("X-Frame-Options") != "" {
		t.Errorf("_headers applied to a proxied response (Netlify does not): %v", h)
	}
	if h.Get("X-Hop-Back") != "" || h.Get("Connection") != "" {
		t.Errorf("hop-by-hop headers of the upstream reached the client: %v", h)
	}
	if vs := h.Values("X-Cairn-Version"); len(vs) != 1 || vs[0] == "spoofed" {
		t.Errorf("X-Cairn-Version %q: the edge's own, once", vs)
	}

	if _, s = get("/shop/42?a=1"); s.Path != "/items/42" || s.Query != "ref=site" {
		t.Errorf("placeholder, the target's own query: %+v", s)
	}
	if _, s = get("/search?q=a+b&z=1"); s.Path != "/find" || s.Query != "query=a+b" {
		t.Errorf("query condition: %+v", s)
	}
	if _, s = get("/api/"); s.Path != "/" { // a directory without index.html
		t.Errorf("an empty splat: %+v", s)
	}
	if _, body := v.mustGet(host, "/api/file.html", http.StatusOK); string(body) != "a file of the site" {
		t.Errorf("a file must shadow an unforced proxy rule: %q", body)
	}

	req, _ := http.NewRequest(http.MethodPost, v.srv.URL+"/api/items", strings.NewReader(`{"n":1}`))
	req.Host = host
	resp, body := v.do(req)
	if err := json.Unmarshal(body, &s); resp.StatusCode != http.StatusOK || err != nil || s.Method != "POST" || s.Body != `{"n":1}` {
		t.Errorf("POST through a proxy rule: %d %q", resp.StatusCode, body)
	}
	req, _ = http.NewRequest(http.MethodPost, v.srv.URL+"/moved", nil)
	req.Host = host
	if resp, _ = v.do(req); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST to a path of no proxy rule: %d, want 405", resp.StatusCode)
	}

	for path, code := range map[string]int{"/down/x": http.StatusBadGateway, "/slow": http.StatusGatewayTimeout} {
		resp, body := v.mustGet(host, path, code)
		var p struct{ Type, Detail string }
		if err := json.Unmarshal(body, &p); err != nil || resp.Header.Get("Content-Type") != "application/problem+json" ||
			p.Type != "https://cairn.dev/problems/proxy-failed" {
			t.Errorf("%s: %q %v", path, body, resp.Header)
		}
		for _, leak := range []string{"127.0.0.1", "refused", "dial", "timeout", "awaiting"} {
			if strings.Contains(string(body), leak) {
				t.Errorf("%s: internal detail %q in %q", path, leak, body)
			}
		}
	}

	// Off: the rules stop proxying at once, without a new publish.
	v.setProxy(d, false)
	before := hits.Load()
	if _, body := v.mustGet(host, "/api/v1", http.StatusNotFound); string(body) != "site not found" {
		t.Errorf("proxy off: %q, want the site's 404 page", body)
	}
	req, _ = http.NewRequest(http.MethodPost, v.srv.URL+"/api/items", nil)
	req.Host = host
	if resp, _ = v.do(req); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST with proxy off: %d, want 405", resp.StatusCode)
	}
	v.mustGet(host, "/moved", http.StatusMovedPermanently) // other rules are unchanged
	if n := hits.Load(); n != before {
		t.Errorf("the upstream got %d requests with proxy_rewrites off", n-before)
	}
}

// TestProxyRefusesPrivateTargets: without ProxyAllowPrivate the edge does
// not connect to a loopback target (the address is checked as dialled,
// after name resolution): 502, and the upstream sees nothing.
func TestProxyRefusesPrivateTargets(t *testing.T) {
	var hits atomic.Int64
	up := newUpstream(t, &hits)
	v := newEnv(t, Config{})
	d := v.deploy("site")
	byName := strings.Replace(up.URL, "127.0.0.1", "localhost", 1)
	v.publish(d, map[string]string{
		"index.html": "home",
		"_redirects": "/ip/* " + up.URL + "/:splat 200\n/name/* " + byName + "/:splat 200\n",
	}, true)
	v.setProxy(d, true)
	for _, p := range []string{"/ip/x", "/name/x"} {
		resp, body := v.mustGet("site.localhost", p, http.StatusBadGateway)
		if resp.Header.Get("Content-Type") != "application/problem+json" || strings.Contains(string(body), "127.0.0.1") {
			t.Errorf("%s: %v %q", p, resp.Header, body)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("a private upstream got %d requests", n)
	}
}

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"93.184.216.34:443": true, "[2606:2800:220:1::1]:80": true,
		"127.0.0.1:80": false, "[::1]:80": false, "10.1.2.3:80": false, "192.168.0.1:80": false,
		"172.16.0.1:80": false, "169.254.169.254:80": false, "100.64.0.1:80": false, "0.0.0.0:80": false,
		"[fe80::1]:80": false, "[fd00::1]:80": false, "[::ffff:127.0.0.1]:80": false, "224.0.0.1:80": false,
	} {
		if err := refusePrivate("tcp", addr, nil); (err == nil) != want {
			t.Errorf("%s: %v, want allowed %v", addr, err, want)
		}
	}
}
