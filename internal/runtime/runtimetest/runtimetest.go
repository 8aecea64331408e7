// Package runtimetest holds what the runtime's tests share: the probe
// instance (a static Go server), rootfs releases packed from directories,
// an artifact server with ranges, and a host network of a test's own.
// They need root and runc: outside CI they skip without them, under
// CI=true they fail.
package runtimetest

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/runtime/netns"
)

// Need skips (or, under CI=true, fails) t unless it runs as root with
// runc and the CNI plugins installed.
func Need(t testing.TB) {
	t.Helper()
	fail := t.Skipf
	if os.Getenv("CI") == "true" {
		fail = t.Fatalf
	}
	if os.Getuid() != 0 {
		fail("the runtime's tests need root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		fail("runc is not installed (apt-get install runc; .ci/run does)")
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		fail("the CNI plugins are not installed (apt-get install containernetworking-plugins; .ci/run does)")
	}
}

var (
	probeOnce sync.Once
	probeBin  string
	probeErr  error
)

// Probe returns the path of the probe binary, built static once.
func Probe(t testing.TB) string {
	t.Helper()
	probeOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		src := filepath.Join(filepath.Dir(file), "..", "testdata", "probe")
		dir, err := os.MkdirTemp("", "cairn-probe-")
		if err != nil {
			probeErr = err
			return
		}
		probeBin = filepath.Join(dir, "probe")
		cmd := exec.Command("go", "build", "-o", probeBin, ".")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = fmt.Errorf("build probe: %v\n%s", err, out)
		}
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	return probeBin
}

// ProbeRoot returns a directory holding only /probe.
func ProbeRoot(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(Probe(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "probe"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Pack packs dir as a rootfs release.
func Pack(t testing.TB, dir string) (*release.Result, []byte) {
	t.Helper()
	var buf bytes.Buffer
	res, err := release.PackRootfsDir(context.Background(), dir, &buf, release.RootfsOptions{ScratchDir: t.TempDir()})
	if err != nil {
		t.Fatalf("pack %s: %v", dir, err)
	}
	return res, buf.Bytes()
}

// Artifacts serves release artifacts as the API does
// (GET /v1/releases/{sha}/artifact, with ranges), counting requests.
type Artifacts struct {
	URL      string
	mu       sync.Mutex
	byID     map[string][]byte
	Requests atomic.Int64
}

// Serve starts an artifact server for t.
func Serve(t testing.TB) *Artifacts {
	a := &Artifacts{byID: map[string][]byte{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.Requests.Add(1)
		if r.Header.Get("Authorization") != "Bearer test-token" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		sha := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/v1/releases/"), "/artifact")
		a.mu.Lock()
		b, ok := a.byID[sha]
		a.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	}))
	t.Cleanup(srv.Close)
	a.URL = srv.URL
	return a
}

// Add serves an artifact.
func (a *Artifacts) Add(sha string, b []byte) {
	a.mu.Lock()
	a.byID[sha] = b
	a.mu.Unlock()
}

// Net returns a host network of t's own (a bridge and a /24 named after
// t), removed when t ends.
func Net(t testing.TB, dir string) *netns.Manager {
	t.Helper()
	m, err := netns.New(NetConfig(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// NetConfig is the config of Net, for a test that makes its Managers
// itself (one per simulated agent process); the bridge goes when t ends.
func NetConfig(t testing.TB, dir string) netns.Config {
	h := fnv.New32a()
	h.Write([]byte(t.Name()))
	n := h.Sum32()
	bridge := fmt.Sprintf("ct%06x", n&0xffffff)
	subnet := fmt.Sprintf("10.%d.%d.0/24", 200+n%50, (n>>8)%256)
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	return netns.Config{Bridge: bridge, Subnet: subnet, Dir: dir}
}

// Get answers GET url's body, or the error, within a second.
func Get(url string) (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != 200 {
		return b.String(), fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b.String(), nil
}

// WaitHTTP waits until url answers 200 and returns its body.
func WaitHTTP(t testing.TB, url string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		body, err := Get(url)
		if err == nil {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within %s: %v", url, within, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
