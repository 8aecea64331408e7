package registry_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestCatalog lists repositories as `crane catalog` does, and page by page
// through the Link header.
func TestCatalog(t *testing.T) {
	e := newEnv(t, nil)
	e.createOCI(t, "app")
	resp, body := e.do(t, "GET", "/v2/_catalog", nil)
	wantCode(t, "empty catalog", resp, body, 200, "")
	if strings.TrimSpace(string(body)) != `{"repositories":[]}` {
		t.Errorf("empty catalog: %s", body)
	}
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Pushed out of order; byte-wise, "app-x" < "app/web" and
	// "app/web/api" < "app/web_y" (a locale collation says otherwise).
	want := []string{"app", "app-x", "app/web", "app/web/api", "app/web_y", "web"}
	for _, repo := range []string{"app/web_y", "web", "app/web/api", "app/web", "app", "app-x"} {
		e.push(t, img, repo+":v1")
	}

	reg, err := name.NewRegistry(e.host(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	got, err := remote.Catalog(t.Context(), reg, e.auth())
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("remote.Catalog = %v, %v; want %v", got, err, want)
	}

	// Pages of 4: the Link header names the next page until the last.
	var paged []string
	path := "/v2/_catalog?n=4"
	for pages := 0; path != ""; pages++ {
		if pages == 3 {
			t.Fatalf("more than 2 pages: %v", paged)
		}
		resp, body := e.do(t, "GET", path, nil)
		wantCode(t, "GET "+path, resp, body, 200, "")
		var page struct{ Repositories []string }
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page.Repositories...)
		path = ""
		if link := resp.Header.Get("Link"); link != "" {
			path = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		}
	}
	if !slices.Equal(paged, want) {
		t.Errorf("paged catalog %v, want %v", paged, want)
	}
	for _, tc := range []struct {
		query string
		want  string
	}{
		{"?n=0", `{"repositories":[]}`},
		{"?last=app/web", `{"repositories":["app/web/api","app/web_y","web"]}`},
		{"?n=2&last=app", `{"repositories":["app-x","app/web"]}`},
		{"?last=zzz", `{"repositories":[]}`},
	} {
		resp, body := e.do(t, "GET", "/v2/_catalog"+tc.query, nil)
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != tc.want {
			t.Errorf("GET /v2/_catalog%s: %d %s, want %s", tc.query, resp.StatusCode, body, tc.want)
		}
	}
	for _, q := range []string{"?n=-1", "?n=x", "?last=%ff", "?last=a%00b", "?n=0&last=%ff"} {
		resp, body := e.do(t, "GET", "/v2/_catalog"+q, nil)
		wantCode(t, "GET /v2/_catalog"+q, resp, body, 405, "UNSUPPORTED")
	}
	// Tag lists share the paging, and its check of last.
	resp, body = e.do(t, "GET", "/v2/app/tags/list?last=%ff", nil)
	wantCode(t, "tags after a non-UTF-8 last", resp, body, 405, "UNSUPPORTED")
	resp, body = e.do(t, "DELETE", "/v2/_catalog", nil)
	wantCode(t, "DELETE /v2/_catalog", resp, body, 405, "UNSUPPORTED")
}
