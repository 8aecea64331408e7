package api

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/publish"
	"github.com/cairnhq/cairn/internal/release"
)

// newSchedAPI is an API with hosts and scheduling on SQLite, and a rootfs
// deployment "app" with v1 active and v2 published.
func newSchedAPI(t testing.TB) (*API, *sqlite.Store) {
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	kicks := 0
	blobs, err := fs.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	pub := &publish.Publisher{Meta: store, Blobs: blobs, StageDir: t.TempDir(), Limits: release.Limits{MaxFiles: 100, MaxBytes: 1 << 20}}
	a := New(Config{Meta: store, Hosts: store, Sched: store, Token: testToken, Kick: func() { kicks++ }, Blobs: blobs, Publisher: pub})
	d := &meta.Deployment{Name: "app", Kind: meta.KindRootfs}
	if err := store.CreateDeployment(t.Context(), d, "test"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		sum := sha256.Sum256([]byte{byte(i)})
		if _, err := store.CreateVersion(t.Context(), meta.NewVersion{DeploymentID: d.ID, Activate: i == 0, Actor: "test",
			Release: meta.Release{SHA256: hex.EncodeToString(sum[:]), Kind: meta.KindRootfs, SizeBytes: 1, URI: "x"},
			Runtime: &meta.Runtime{Cmd: []string{"/app"}, Port: 8080}}); err != nil {
			t.Fatal(err)
		}
	}
	return a, store
}

// TestDesiredPatch: PATCH sets the desired state (history, the record in
// the deployment); bad values are 400 problem+json; static deployments
// refuse it.
func TestDesiredPatch(t *testing.T) {
	a, _ := newSchedAPI(t)
	r, d := call(a, "PATCH", "/v1/deployments/app", `{"replicas":2,"cpu":0.5,"memory_bytes":268435456,"isolation":"microvm",
		"min_healthy":1,"autostop":"15m","health_check":{"path":"/up","interval":"1s","timeout":"1s"}}`, true)
	if r.StatusCode != 200 {
		t.Fatalf("patch: %d %v", r.StatusCode, d)
	}
	want := `{"replicas":2,"cpu":0.5,"memory_bytes":268435456,"health_check":{"path":"/up","interval":"1s","timeout":"1s"},"min_healthy":1,"autostop":"15m","isolation":"microvm"}`
	if got, _ := json.Marshal(d["desired"]); !sameJSONText(string(got), want) {
		t.Errorf("desired = %s\nwant %s", got, want)
	}
	if r, d = call(a, "PATCH", "/v1/deployments/app", `{"regions":{"eu":2,"us":1}}`, true); r.StatusCode != 200 {
		t.Fatalf("regions: %d %v", r.StatusCode, d)
	}
	if des := d["desired"].(map[string]any); des["replicas"] != float64(3) || des["regions"].(map[string]any)["eu"] != float64(2) {
		t.Errorf("regions set the replicas to their sum: %v", des)
	}
	if r, _ = call(a, "PATCH", "/v1/deployments/app", `{"replicas":5}`, true); r.StatusCode != 400 {
		t.Errorf("scale while placed per region: %d, want 400", r.StatusCode)
	}
	if r, d = call(a, "PATCH", "/v1/deployments/app", `{"regions":"spread","min_healthy":null}`, true); r.StatusCode != 200 {
		t.Fatalf("spread: %d %v", r.StatusCode, d)
	}
	if des := d["desired"].(map[string]any); des["regions"] != "spread" || des["min_healthy"] != nil {
		t.Errorf("desired = %v", des)
	}
	_, h := call(a, "GET", "/v1/deployments/app/desired", ``, true)
	if hist := h["history"].([]any); len(hist) != 3 || hist[0].(map[string]any)["seq"] != float64(3) {
		t.Errorf("history = %v", h["history"])
	}
	for _, body := range []string{`{"replicas":-1}`, `{"cpu":-2}`, `{"memory_bytes":5}`, `{"isolation":"vm"}`,
		`{"autostop":"soon"}`, `{"regions":"everywhere"}`, `{"regions":{"eu":-1}}`, `{"min_healthy":"x"}`,
		`{"health_check":{"path":"up"}}`, `{"health_check":{"path":"/","bogus":1}}`, `{"health_check":{"interval":"1 s"}}`} {
		r, p := call(a, "PATCH", "/v1/deployments/app", body, true)
		if r.StatusCode != 400 || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %v, want 400 problem+json", body, r.StatusCode, p)
		}
	}
	call(a, "POST", "/v1/deployments", `{"name":"site"}`, true)
	if r, _ := call(a, "PATCH", "/v1/deployments/site", `{"cpu":1}`, true); r.StatusCode != 400 {
		t.Errorf("desired state of a static deployment: %d, want 400", r.StatusCode)
	}
}

// TestActivateRolls: activating a dynamic deployment with replicas starts
// a rollout (202, the active version unchanged); without replicas it is a
// pointer move; the rollouts are listed; a drain is admin's.
func TestActivateRolls(t *testing.T) {
	a, store := newSchedAPI(t)
	if r, _ := call(a, "POST", "/v1/deployments/app/activate", `{"version_number":2,"rollout_timeout":"forever"}`, true); r.StatusCode != 400 {
		t.Errorf("bad rollout_timeout: %d", r.StatusCode)
	}
	call(a, "PATCH", "/v1/deployments/app", `{"replicas":2}`, true)
	r, d := call(a, "POST", "/v1/deployments/app/activate", `{"version_number":2,"rollout_timeout":"30s"}`, true)
	if r.StatusCode != 202 || d["active_version_number"] != float64(1) {
		t.Fatalf("activate: %d %v; want 202 with v1 still active", r.StatusCode, d)
	}
	ro := d["rollout"].(map[string]any)
	if ro["state"] != "running" || ro["to_version_number"] != float64(2) {
		t.Fatalf("rollout = %v", ro)
	}
	_, got := call(a, "GET", "/v1/deployments/app/rollouts/"+ro["id"].(string), ``, true)
	if got["id"] != ro["id"] {
		t.Errorf("GET rollout = %v", got)
	}
	if r, _ := call(a, "GET", "/v1/deployments/app/rollouts/ro_nope", ``, true); r.StatusCode != 404 {
		t.Errorf("unknown rollout: %d", r.StatusCode)
	}
	// Rolling back to the active version while it runs: superseded, done.
	r, d = call(a, "POST", "/v1/deployments/app/rollback", `{"version_number":1}`, true)
	if r.StatusCode != 200 || d["rollout"].(map[string]any)["state"] != "succeeded" {
		t.Fatalf("rollback to the active version: %d %v", r.StatusCode, d)
	}
	_, l := call(a, "GET", "/v1/deployments/app/rollouts", ``, true)
	if rs := l["rollouts"].([]any); len(rs) != 2 || rs[1].(map[string]any)["state"] != "superseded" {
		t.Errorf("rollouts = %v", l["rollouts"])
	}
	// No replicas: a pointer move (below). With replicas, a publish that
	// activates rolls instead (TestPublishRolls).
	call(a, "PATCH", "/v1/deployments/app", `{"replicas":0}`, true)
	if r, d = call(a, "POST", "/v1/deployments/app/activate", `{"version_number":2}`, true); r.StatusCode != 200 || d["active_version_number"] != float64(2) {
		t.Errorf("activate without replicas: %d %v", r.StatusCode, d)
	}
	// Drain.
	call(a, "POST", "/v1/hosts", `{"id":"h1","driver":"runc","isolation":"container"}`, true)
	if r, h := call(a, "POST", "/v1/hosts/h1/drain", ``, true); r.StatusCode != 200 || h["state"] != "draining" {
		t.Errorf("drain: %d %v", r.StatusCode, h)
	}
	if r, _ := call(a, "POST", "/v1/hosts/nope/drain", ``, true); r.StatusCode != 404 {
		t.Errorf("drain unknown: %d", r.StatusCode)
	}
	if r, _ := call(a, "POST", "/v1/hosts/h1/drain", ``, false); r.StatusCode != 401 {
		t.Errorf("drain without a token: %d", r.StatusCode)
	}
	// Heartbeats carry the cache; bad digests are refused.
	if r, _ := call(a, "POST", "/v1/hosts/h1/heartbeat", `{"used":{},"instances":[],"cached_releases":["nothex"]}`, true); r.StatusCode != 400 {
		t.Errorf("bad cached_releases: %d", r.StatusCode)
	}
	sha := hex.EncodeToString(make([]byte, 32))
	if r, _ := call(a, "POST", "/v1/hosts/h1/heartbeat", `{"used":{},"instances":[],"cached_releases":["`+sha+`"]}`, true); r.StatusCode != 204 {
		t.Errorf("heartbeat with cache: %d", r.StatusCode)
	}
	if h, _ := store.GetHost(t.Context(), "h1"); len(h.Cached) != 1 || h.Cached[0] != sha {
		t.Errorf("cached = %v", h.Cached)
	}
}

func sameJSONText(a, b string) bool {
	var x, y any
	json.Unmarshal([]byte(a), &x)
	json.Unmarshal([]byte(b), &y)
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// FuzzDesiredPatch: any PATCH body either fails to decode, is refused by
// ApplyDesired, or gives a state that passes the checks and survives a
// JSON round trip.
func FuzzDesiredPatch(f *testing.F) {
	for _, s := range []string{`{"replicas":2}`, `{"regions":"spread"}`, `{"regions":{"eu":1}}`, `{"min_healthy":null}`,
		`{"health_check":{"path":"/h","interval":"1s"}}`, `{"autostop":"1h","isolation":"microvm"}`, `{"regions":[1]}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var p DesiredPatch
		if json.Unmarshal([]byte(body), &p) != nil {
			return
		}
		d, err := ApplyDesired(meta.Desired{}, &p)
		if err != nil {
			return
		}
		if err := checkDesired(d); err != nil {
			t.Fatalf("ApplyDesired gave a state its checks refuse: %+v: %v", d, err)
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var back meta.Desired
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("round trip of %s: %v", b, err)
		}
	})
}

// TestPublishRolls: a publish that activates a dynamic deployment with
// instances publishes the version and starts a rollout to it (header
// Cairn-Rollout); the pointer stays until the scheduler switches it.
func TestPublishRolls(t *testing.T) {
	a, _ := newSchedAPI(t)
	call(a, "PATCH", "/v1/deployments/app", `{"replicas":2}`, true)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "app", Mode: 0o755, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("v3"))
	tw.Close()
	rt := url.QueryEscape(`{"cmd":["/app"],"port":8080}`)
	req := httptest.NewRequest("POST", "/v1/deployments/app/versions?runtime="+rt, &buf)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	if rec.Code != 201 || !strings.HasPrefix(rec.Header().Get("Cairn-Rollout"), "/v1/deployments/app/rollouts/ro_") {
		t.Fatalf("publish: %d %q %s", rec.Code, rec.Header().Get("Cairn-Rollout"), rec.Body)
	}
	_, d := call(a, "GET", "/v1/deployments/app", ``, true)
	if d["active_version_number"] != float64(1) || d["rollout"].(map[string]any)["to_version_number"] != float64(3) {
		t.Fatalf("deployment = %v", d)
	}
}
