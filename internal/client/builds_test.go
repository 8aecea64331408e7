package client

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBuildRequestShapes: the build, source and rebuild calls send the
// routes and bodies of docs/design.md, "Sources, builds and rebuilds".
func TestBuildRequestShapes(t *testing.T) {
	type req struct{ method, path, ctype, body string }
	var reqs []req
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqs = append(reqs, req{r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), string(b)})
		switch {
		case strings.HasSuffix(r.URL.Path, "/log"):
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "make: ok\n")
		case strings.HasSuffix(r.URL.Path, "/builds") && r.Method == http.MethodGet:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"builds":[{"id":"bld_2"},{"id":"bld_1"}]}`)
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"bld_1","state":"queued"}`)
		}
	}))
	defer srv.Close()
	c, ctx := New(srv.URL, "t"), context.Background()
	sha := strings.Repeat("ab", 32)
	c.GetSource(ctx, "demo", sha)
	c.PutSource(ctx, "demo", sha, strings.NewReader("zst"), 3)
	b, err := c.CreateBuild(ctx, "demo", BuildRequest{SourceSHA256: sha, Builder: "node:3", Command: "make", Activate: true, Create: true})
	if err != nil || b.ID != "bld_1" || b.State != "queued" {
		t.Fatalf("CreateBuild = %+v, %v", b, err)
	}
	bs, err := c.ListBuilds(ctx, "demo")
	if err != nil || len(bs) != 2 || bs[0].ID != "bld_2" {
		t.Fatalf("ListBuilds = %+v, %v", bs, err)
	}
	if log, err := c.BuildLog(ctx, "bld_1"); err != nil || log != "make: ok\n" {
		t.Fatalf("BuildLog = %q, %v", log, err)
	}
	epoch := int64(1700000000)
	c.CreateBuild(ctx, "demo", BuildRequest{SourceSHA256: sha, Builder: "node:3", Command: "make", SourceDateEpoch: &epoch})
	c.GetBuild(ctx, "bld_1")
	c.Rebuild(ctx, "demo", 3, "h2")
	c.Restore(ctx, "demo", 1)
	c.SetSourceRetention(ctx, "demo", 30)
	c.PublishTar(ctx, "demo", strings.NewReader(""), PublishOptions{Activate: true, SourceSHA256: sha})
	want := []req{
		{"GET", "/v1/deployments/demo/sources/" + sha, "", ""},
		{"PUT", "/v1/deployments/demo/sources/" + sha, "application/zstd", "zst"},
		{"POST", "/v1/deployments/demo/builds", "application/json",
			`{"source_sha256":"` + sha + `","builder":"node:3","command":"make","activate":true,"create":true}`},
		{"GET", "/v1/deployments/demo/builds", "", ""},
		{"GET", "/v1/builds/bld_1/log", "", ""},
		{"POST", "/v1/deployments/demo/builds", "application/json",
			`{"source_sha256":"` + sha + `","builder":"node:3","command":"make","activate":false,"source_date_epoch":1700000000}`},
		{"GET", "/v1/builds/bld_1", "", ""},
		{"POST", "/v1/deployments/demo/versions/3/rebuild", "application/json", `{"host":"h2"}`},
		{"POST", "/v1/deployments/demo/versions/1/restore", "application/json", `{}`},
		{"PATCH", "/v1/deployments/demo", "application/json", `{"source_retention_days":30}`},
		{"POST", "/v1/deployments/demo/versions?activate=true&source_sha256=" + sha, "application/x-tar", ""},
	}
	if len(reqs) != len(want) {
		t.Fatalf("requests %v", reqs)
	}
	for i := range want {
		if reqs[i] != want[i] {
			t.Errorf("request %d = %v, want %v", i, reqs[i], want[i])
		}
	}
}
