package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/server"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// cairnBinary builds cmd/cairn once per test run.
func cairnBinary(t *testing.T) string {
	buildOnce.Do(func() {
		_, self, _, _ := runtime.Caller(0)
		repo := filepath.Join(filepath.Dir(self), "..", "..")
		dir, err := os.MkdirTemp("", "cairn-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "cairn")
		c := exec.Command("go", "build", "-o", binPath, "./cmd/cairn")
		c.Dir = repo
		if out, err := c.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// process runs `cairn server` with args until the test ends.
func process(t *testing.T, dir string, args ...string) {
	t.Helper()
	c := exec.Command(cairnBinary(t), append([]string{"server"}, args...)...)
	c.Dir = dir
	c.Env = append(os.Environ(), "CAIRN_LOG_LEVEL=warn")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Signal(os.Interrupt); c.Wait() })
}

func waitListen(t *testing.T, addr string) {
	t.Helper()
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if i > 300 {
			t.Fatalf("nothing listens on %s after 15 s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestThreeProcesses: one API process and two edge processes share one
// PostgreSQL database and one blob store. After a rollback through the API,
// both edges serve the rolled-back version within 1 s (NOTIFY), and keep
// doing so over repeated flips.
func TestThreeProcesses(t *testing.T) {
	if !scaleOut() {
		// Processes learn of each other's changes through PostgreSQL: this
		// test runs in the scale-out pass of the suite (scripts/test).
		t.Log("runs in the scale-out pass (CAIRN_E2E_BACKENDS=scale-out)")
		return
	}
	var cfg server.Config
	useBackends(t, &cfg)
	dir := t.TempDir()
	blobs := cfg.Blobs
	if blobs == "" {
		blobs = "file://" + filepath.Join(dir, "shared-blobs")
	}
	common := []string{"--database", cfg.Database, "--blobs", blobs, "--token", sharedToken}
	api := freeAddr(t)
	process(t, dir, append(common, "--roles", "api", "--api-addr", api, "--data", filepath.Join(dir, "api"))...)
	var edges []string
	for i := range 2 {
		e := freeAddr(t)
		process(t, dir, append(common, "--roles", "edge", "--edge-addr", e, "--data", filepath.Join(dir, fmt.Sprint("edge", i)))...)
		edges = append(edges, e)
	}
	waitListen(t, api)
	for _, e := range edges {
		waitListen(t, e)
	}
	env := &env{t: t, api: "http://" + api, token: sharedToken}
	env.publish("multi", site("one"))
	env.publish("multi", site("two"))

	fetch := func(edge string) string { return fetchHost(edge, "multi.localhost") }
	var lags []time.Duration
	for i := range 10 {
		want, n := "<h1>one</h1>", 1
		if i%2 == 1 {
			want, n = "<h1>two</h1>", 2
		}
		start := time.Now()
		if code, _ := env.do("POST", "/v1/deployments/multi/activate", env.jsonBody(map[string]any{"version_number": n}), nil); code != 200 {
			t.Fatalf("activate: %d", code)
		}
		for _, e := range edges {
			for fetch(e) != want {
				if time.Since(start) > time.Second {
					t.Fatalf("flip %d: edge %s still serves %q after 1 s", i, e, fetch(e))
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		lags = append(lags, time.Since(start))
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	t.Logf("propagation to both edges over %d flips: p50 %v, max %v", len(lags), lags[len(lags)/2], lags[len(lags)-1])
	if s := strings.TrimSpace(fetch(edges[0])); s != "<h1>two</h1>" {
		t.Fatalf("edge serves %q", s)
	}
}

// fetchHost returns the body of / on the edge at addr for host, or the
// error as text.
func fetchHost(addr, host string) string {
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
