package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/server"
)

// The sweep of temporary files in the crash test: every second, files
// untouched for a second.
const (
	crashSweep  = time.Second
	crashMaxAge = time.Second
)

// backendArgs are the flags of the test's backends: none (SQLite and files
// in the data dir), or in the scale-out pass a fresh PostgreSQL schema and
// S3 bucket, kept across restarts.
func backendArgs(t *testing.T) []string {
	var cfg server.Config
	useBackends(t, &cfg)
	var args []string
	if cfg.Database != "" {
		args = append(args, "--database", cfg.Database)
	}
	if cfg.Blobs != "" {
		args = append(args, "--blobs", cfg.Blobs)
	}
	return args
}

// crashArgs are the flags of the crash test's server: its backends, no
// periodic GC (the test runs it), no grace, a fast sweep, and drain as
// given (a long drain holds a collection between its commit and its
// deletions: a window to kill it in).
func crashArgs(backends []string, drain time.Duration) []string {
	return append([]string{"--gc-interval", "0", "--gc-grace", "0", "--gc-drain", drain.String(),
		"--tmp-sweep-interval", crashSweep.String(), "--tmp-max-age", crashMaxAge.String()}, backends...)
}

// bigTar is a tar of files of random bytes, n bytes in all.
func bigTar(t *testing.T, n int) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "index.html", Mode: 0o644, Size: 4, Typeflag: tar.TypeReg})
	tw.Write([]byte("big!"))
	for i := 0; n > 0; i++ {
		size := min(n, 4<<20)
		n -= size
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data/%d.bin", i), Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(noise(size))
	}
	tw.Close()
	return buf.Bytes()
}

// postAsync sends body to the API in the background through a pipe, and
// reports how many bytes the server read so far; done is closed when the
// request ended (answered, or the server went away).
func postAsync(e *env, path string, body []byte) (sent *atomic.Int64, done chan struct{}) {
	sent, done = &atomic.Int64{}, make(chan struct{})
	pr, pw := io.Pipe()
	go func() {
		for b := body; len(b) > 0; {
			n := min(len(b), 64<<10)
			if _, err := pw.Write(b[:n]); err != nil {
				return
			}
			sent.Add(int64(n))
			b = b[n:]
		}
		pw.Close()
	}()
	go func() {
		defer close(done)
		req, _ := http.NewRequest("POST", e.api+path, pr)
		req.Header.Set("Authorization", "Bearer "+e.token)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		pr.Close()
	}()
	return sent, done
}

// waitFor polls cond every millisecond until it holds or d passed.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// tempFiles lists the files in the blob store's tmp directory.
func tempFiles(data string) []string {
	m, _ := filepath.Glob(filepath.Join(data, "blobs", "tmp", "*"))
	return m
}

// stagedArtifacts lists the artifacts publishes are packing or storing.
func stagedArtifacts(data string) []string {
	m, _ := filepath.Glob(filepath.Join(data, "staging", "*", "artifact.tar.zst"))
	return m
}

// checkAfterCrash checks a server restarted after a kill: every version
// that is not collected has its release, which `cairn verify` passes; the
// audit chain verifies; after a sweep no temporary file older than the
// sweep interval is left; and GC runs at once (200, not 409).
func checkAfterCrash(t *testing.T, p *proc, deps ...string) {
	t.Helper()
	e := p.env
	for _, dep := range deps {
		var list struct {
			Versions []map[string]any `json:"versions"`
		}
		if code, _ := e.do("GET", "/v1/deployments/"+dep+"/versions?limit=100", nil, &list); code != 200 {
			t.Fatalf("versions of %s: %d", dep, code)
		}
		for _, v := range list.Versions {
			n := int(v["version_number"].(float64))
			if v["status"] == "collected" {
				continue
			}
			var rel map[string]any
			if code, _ := e.do("GET", "/v1/releases/"+v["artifact_sha256"].(string), nil, &rel); code != 200 || rel["collected_at"] != nil {
				t.Errorf("%s v%d: release %d %v", dep, n, code, rel)
			}
			if out, errOut, code := e.cairnCLI("verify", dep, fmt.Sprint(n)); code != 0 {
				t.Errorf("cairn verify %s %d: exit %d\n%s%s", dep, n, code, out, errOut)
			}
		}
	}
	if out, errOut, code := e.cairnCLI("audit", "verify"); code != 0 {
		t.Errorf("cairn audit verify: exit %d\n%s%s", code, out, errOut)
	}
	var rep map[string]any
	if code, _ := e.do("POST", "/v1/gc", e.jsonBody(map[string]any{"dry_run": false}), &rep); code != 200 {
		t.Errorf("POST /v1/gc after the restart: %d %v, want 200 at once", code, rep)
	}
	time.Sleep(crashSweep + crashMaxAge + crashSweep/2)
	cutoff := time.Now().Add(-crashSweep)
	for _, dir := range []string{filepath.Join(e.data, "blobs", "tmp"), filepath.Join(e.data, "staging"), filepath.Join(e.data, "registry-uploads")} {
		filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
			if err == nil && path != dir && info.ModTime().Before(cutoff) {
				t.Errorf("temporary file older than the sweep interval left: %s (%v)", path, info.ModTime())
			}
			return nil
		})
	}
}

// TestCrash kills a real server with SIGKILL during a publish (mid-body,
// and while its blob is being stored), during a garbage collection (between
// its commit and its deletions, holding the GC lock and deletion claims)
// and during a stream of activations, restarting it on the same data dir
// each time and checking what checkAfterCrash checks.
func TestCrash(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	backends := backendArgs(t)
	p := startProc(t, data, crashArgs(backends, 0)...)
	e := p.env
	if code, _ := e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "site", "kind": "static", "retention_days": 30}), nil); code != 201 {
		t.Fatalf("create site: %d", code)
	}
	e.publish("site", site("one"))
	e.publish("site", site("two"))
	restart := func(drain time.Duration) {
		t.Helper()
		p.args = crashArgs(backends, drain)
		p.start(t)
		e = p.env
	}

	t.Run("publish mid-body", func(t *testing.T) {
		body := bigTar(t, 32<<20)
		sent, _ := postAsync(e, "/v1/deployments/site/versions", body)
		if !waitFor(20*time.Second, func() bool { return sent.Load() > 8<<20 }) {
			t.Fatal("the upload did not start")
		}
		p.kill()
		restart(0)
		checkAfterCrash(t, p, "site")
	})

	t.Run("publish storing its release", func(t *testing.T) {
		if scaleOut() {
			t.Log("blobs on S3: no local temporary file to catch; the mid-body kill covers the publish")
			return
		}
		// Poll the blob store's tmp directory and the staging directory
		// while big publishes run, and kill the server once one is seen
		// packing or storing its release (the files store takes the staged
		// artifact by a hard link: no temporary blob then); a publish that
		// ends first is followed by a bigger one.
		var left []string
		for size := 24 << 20; left == nil && size <= 96<<20; size *= 2 {
			_, done := postAsync(e, "/v1/deployments/site/versions", bigTar(t, size))
			waitFor(60*time.Second, func() bool {
				left = append(tempFiles(e.data), stagedArtifacts(e.data)...)
				select {
				case <-done:
					return true
				default:
					return left != nil
				}
			})
			if left != nil {
				p.kill()
			}
		}
		if left == nil {
			t.Fatal("never caught a release being packed or stored")
		}
		restart(0)
		if !waitFor(3*(crashSweep+crashMaxAge), func() bool { _, err := os.Stat(left[0]); return os.IsNotExist(err) }) {
			t.Errorf("%s left by the killed put is still there", left[0])
		}
		checkAfterCrash(t, p, "site")
	})

	t.Run("gc", func(t *testing.T) {
		if code, _ := e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "old", "kind": "static", "retention_days": 0}), nil); code != 201 {
			t.Fatalf("create old: %d", code)
		}
		e.publish("old", site("old-1"))
		e.publish("old", site("old-2"))
		p.stop()
		restart(time.Hour) // a collection then waits an hour before it deletes
		go func(e *env) {
			req, _ := http.NewRequest("POST", e.api+"/v1/gc", strings.NewReader(`{"dry_run":false}`))
			req.Header.Set("Authorization", "Bearer "+e.token)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}(e)
		if !waitFor(20*time.Second, func() bool {
			var v map[string]any
			e.do("GET", "/v1/deployments/old/versions/1", nil, &v)
			return v["status"] == "collected"
		}) {
			t.Fatal("the collection did not commit")
		}
		p.kill() // holding the GC lock and a deletion claim, in its drain
		restart(0)
		checkAfterCrash(t, p, "site", "old")
		if r, b := e.get("old.localhost", "/"); r.StatusCode != 200 || string(b) != "<h1>old-2</h1>" {
			t.Errorf("old after the restart: %d %q", r.StatusCode, b)
		}
	})

	t.Run("activations", func(t *testing.T) {
		var flips atomic.Int64
		stop := make(chan struct{})
		done := make(chan struct{})
		go func(e *env) {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", e.api+"/v1/deployments/site/activate",
					strings.NewReader(fmt.Sprintf(`{"version_number":%d}`, 1+i%2)))
				req.Header.Set("Authorization", "Bearer "+e.token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the server is gone
				}
				resp.Body.Close()
				flips.Add(1)
			}
		}(e)
		if !waitFor(20*time.Second, func() bool { return flips.Load() >= 50 }) {
			t.Fatal("activations did not run")
		}
		p.kill()
		close(stop)
		<-done
		restart(0)
		checkAfterCrash(t, p, "site", "old")
		var d map[string]any
		e.do("GET", "/v1/deployments/site", nil, &d)
		r, b := e.get("site.localhost", "/")
		if r.StatusCode != 200 || (string(b) != "<h1>one</h1>" && string(b) != "<h1>two</h1>") {
			t.Errorf("site after the restart: %d %q (active %v)", r.StatusCode, b, d["active_version_id"])
		}
	})
}
