package registry_test

import (
	"encoding/base64"
	"os"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/fakeclock"
	"github.com/cairnhq/cairn/internal/registry"
)

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestAuth(t *testing.T) {
	e := newEnv(t, nil)
	e.createOCI(t, "app")
	ctx := t.Context()
	cfg := []byte(`{}`)
	d := e.pushBlob(t, "app/web", cfg)
	man := imageManifest(d, len(cfg))
	resp, body := e.do(t, "PUT", "/v2/app/web/manifests/v1", man, "Content-Type", ociManifest)
	wantCode(t, "push", resp, body, 201, "")

	for _, tc := range []struct {
		auth   string
		status int
	}{
		{"", 401},
		{"Bearer wrong", 401},
		{"Bearer " + testToken, 200},
		{basic("anyone", testToken), 200},
		{basic(testToken, "wrong"), 401},
		{"Basic !!!", 401},
		{"Digest x", 401},
	} {
		resp, body := e.do(t, "GET", "/v2/", nil, "Authorization", tc.auth)
		wantCode(t, "ping with "+tc.auth, resp, body, tc.status, "")
		if tc.status == 401 {
			wantCode(t, "ping with "+tc.auth, resp, body, 401, "UNAUTHORIZED")
			if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="cairn"` {
				t.Errorf("challenge %q", got)
			}
		}
	}

	pulls := []string{"/v2/app/web/manifests/v1", "/v2/app/web/blobs/" + d.String(), "/v2/app/web/tags/list",
		"/v2/app/web/referrers/" + d.String()}
	anonymous := func(want int) {
		t.Helper()
		for _, p := range pulls {
			resp, body := e.do(t, "GET", p, nil, "Authorization", "")
			wantCode(t, "anonymous GET "+p, resp, body, want, "")
		}
		for _, p := range []string{"/v2/app/web/blobs/uploads/", "/v2/app/blobs/uploads/"} {
			resp, body := e.do(t, "POST", p, nil, "Authorization", "")
			wantCode(t, "anonymous POST "+p, resp, body, 401, "UNAUTHORIZED")
		}
		resp, body := e.do(t, "DELETE", "/v2/app/web/manifests/v1", nil, "Authorization", "")
		wantCode(t, "anonymous DELETE", resp, body, 401, "UNAUTHORIZED")
		resp, body = e.do(t, "GET", "/v2/", nil, "Authorization", "")
		wantCode(t, "anonymous ping", resp, body, 401, "UNAUTHORIZED")
		// The catalog names every repository: never anonymous.
		resp, body = e.do(t, "GET", "/v2/_catalog", nil, "Authorization", "")
		wantCode(t, "anonymous catalog", resp, body, 401, "UNAUTHORIZED")
	}
	anonymous(401)
	dep, err := e.meta.GetDeployment(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reg.SetAnonymousPull(ctx, dep, true); err != nil {
		t.Fatal(err)
	}
	anonymous(200)
	// Wrong credentials are refused even where anonymous pulls are allowed.
	resp, body = e.do(t, "GET", pulls[0], nil, "Authorization", "Bearer wrong")
	wantCode(t, "wrong token", resp, body, 401, "UNAUTHORIZED")
	if err := e.reg.SetAnonymousPull(ctx, dep, false); err != nil {
		t.Fatal(err)
	}
	anonymous(401)
}

func TestEmptyTokenAuthorisesNothing(t *testing.T) {
	e := newEnv(t, func(c *registry.Config) { c.Token = "" })
	for _, auth := range []string{"", "Bearer ", basic("x", "")} {
		resp, body := e.do(t, "GET", "/v2/", nil, "Authorization", auth)
		wantCode(t, "ping with "+auth, resp, body, 401, "UNAUTHORIZED")
	}
}

func TestUploadsExpire(t *testing.T) {
	c := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	e := newEnv(t, func(cfg *registry.Config) { cfg.Now = c.Now; cfg.UploadTTL = time.Minute })
	idle := e.startUpload(t, "app")
	busy := e.startUpload(t, "app")
	c.Add(50 * time.Second)
	resp, body := e.do(t, "PATCH", busy, []byte("data"))
	wantCode(t, "patch", resp, body, 202, "")
	c.Add(20 * time.Second) // idle: 70s, busy: 20s since its last chunk
	resp, body = e.do(t, "GET", idle, nil)
	wantCode(t, "expired upload", resp, body, 404, "BLOB_UPLOAD_UNKNOWN")
	resp, body = e.do(t, "GET", busy, nil)
	wantCode(t, "active upload", resp, body, 204, "")
	if n, err := e.reg.SweepUploads(t.Context()); err != nil || n != 1 {
		t.Errorf("sweep removed %d (%v), want 1", n, err)
	}
	c.Add(2 * time.Minute)
	if n, err := e.reg.SweepUploads(t.Context()); err != nil || n != 1 {
		t.Errorf("second sweep removed %d (%v), want 1", n, err)
	}
	entries, err := os.ReadDir(e.dir + "/stage")
	if err != nil || len(entries) != 0 {
		t.Errorf("staging directory after sweeps: %v, %v", entries, err)
	}
	resp, body = e.do(t, "DELETE", busy, nil)
	wantCode(t, "cancelling a swept upload", resp, body, 404, "BLOB_UPLOAD_UNKNOWN")
}

func TestNewChecksConfig(t *testing.T) {
	base := newEnv(t, nil)
	for name, edit := range map[string]func(*registry.Config){
		"no stage dir":   func(c *registry.Config) { c.StageDir = "" },
		"no host":        func(c *registry.Config) { c.Host = "" },
		"negative limit": func(c *registry.Config) { c.MaxBlobBytes = -1 },
		"no blobs":       func(c *registry.Config) { c.Blobs = nil },
		"no meta":        func(c *registry.Config) { c.Meta = nil }, // a store lacking a capability does not compile
	} {
		cfg := registry.Config{Meta: base.meta, Blobs: base.blobs, StageDir: t.TempDir(), Host: "h"}
		edit(&cfg)
		if _, err := registry.New(cfg); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
}
