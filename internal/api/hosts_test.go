package api

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/fakeclock"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
)

// TestHostLost: a host that misses its heartbeats for HostTimeout (10 s
// by default; a fake clock here) becomes lost; a heartbeat brings it back.
func TestHostLost(t *testing.T) {
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	clock := fakeclock.New(time.Now())
	a := New(Config{Meta: store, Hosts: store, Token: testToken, Now: clock.Now})
	r, h := call(a, "POST", "/v1/hosts", `{"id":"h1","hostname":"h","driver":"runc","isolation":"container"}`, true)
	if r.StatusCode != 200 || h["state"] != "ready" {
		t.Fatalf("register: %d %v", r.StatusCode, h)
	}
	state := func() string {
		_, out := call(a, "GET", "/v1/hosts", ``, true)
		return out["hosts"].([]any)[0].(map[string]any)["state"].(string)
	}
	clock.Add(9 * time.Second)
	if s := state(); s != "ready" {
		t.Fatalf("after 9 s: %s", s)
	}
	clock.Add(2 * time.Second)
	if s := state(); s != "lost" {
		t.Fatalf("after 11 s without a heartbeat: %s", s)
	}
	if r, _ := call(a, "POST", "/v1/hosts/h1/heartbeat", `{"used":{},"instances":[]}`, true); r.StatusCode != 204 {
		t.Fatalf("heartbeat: %d", r.StatusCode)
	}
	clock.Add(-11 * time.Second) // the store stamps by the real clock
	if s := state(); s != "ready" {
		t.Fatalf("after a heartbeat: %s", s)
	}
	for _, c := range []struct{ body string }{
		{`{"driver":"runc","isolation":"vm"}`}, {`{"driver":"","isolation":"container"}`},
		{`{"driver":"runc","isolation":"container","agent_url":"ftp://x"}`},
		{`{"driver":"runc","isolation":"container","capacity":{"cpu":-1}}`},
		{`{"id":"Bad Id","driver":"runc","isolation":"container"}`},
	} {
		if r, _ := call(a, "POST", "/v1/hosts", c.body, true); r.StatusCode != 400 {
			t.Errorf("register %s: %d, want 400", c.body, r.StatusCode)
		}
	}
	if r, _ := call(a, "POST", "/v1/hosts/nope/heartbeat", `{}`, true); r.StatusCode != 404 {
		t.Errorf("heartbeat of an unknown host: %d", r.StatusCode)
	}
}
