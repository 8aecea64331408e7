package registry_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/fakeclock"
	"github.com/cairnhq/cairn/internal/registry"
	"github.com/opencontainers/go-digest"
)

// TestUploadCap: a deployment (its repository and those under it) holds at
// most MaxUploads unfinished sessions; one more answers 429
// TOOMANYREQUESTS. A finished, cancelled or expired session frees its
// place; other deployments are not affected.
func TestUploadCap(t *testing.T) {
	c := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	e := newEnv(t, func(cfg *registry.Config) { cfg.Now = c.Now; cfg.UploadTTL = time.Minute; cfg.MaxUploads = 3 })
	first := e.startUpload(t, "app")
	e.startUpload(t, "app/web")
	c.Add(30 * time.Second)
	third := e.startUpload(t, "app/web/x")
	resp, body := e.do(t, "POST", "/v2/app/web/blobs/uploads/", nil)
	wantCode(t, "a fourth session", resp, body, 429, "TOOMANYREQUESTS")
	if !strings.Contains(string(body), "unfinished upload sessions") {
		t.Errorf("429 body %s", body)
	}
	resp, body = e.do(t, "POST", "/v2/app/blobs/uploads/?mount="+digest.FromString("x").String(), nil)
	wantCode(t, "a mount that falls back to a session", resp, body, 429, "TOOMANYREQUESTS")
	e.startUpload(t, "other") // another deployment
	d := e.pushBlob(t, "app", []byte("monolithic uploads open no session"))
	if d == "" {
		t.Fatal("monolithic push")
	}

	resp, body = e.do(t, "DELETE", first, nil)
	wantCode(t, "cancel", resp, body, 204, "")
	fourth := e.startUpload(t, "app")
	resp, body = e.do(t, "PUT", third+"?digest="+digest.FromString("chunk").String(), []byte("chunk"))
	wantCode(t, "finish", resp, body, 201, "")
	e.startUpload(t, "app")
	resp, body = e.do(t, "POST", "/v2/app/blobs/uploads/", nil)
	wantCode(t, "full again", resp, body, 429, "TOOMANYREQUESTS")

	c.Add(45 * time.Second) // the second session is idle for 75 s: expired
	e.startUpload(t, "app")
	if resp, _ := e.do(t, "GET", fourth, nil); resp.StatusCode != 204 {
		t.Errorf("a live session: %d", resp.StatusCode)
	}
}
