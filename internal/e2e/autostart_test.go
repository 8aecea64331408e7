package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
)

// TestAutostart: scale to zero with a real `cairn agent --driver runc` and
// the probe (a static Go server) as a rootfs. A deployment with
// autostop 4s and 1 replica runs no instance; the first request to its
// stopped preview host ({name}--v2, an old version never active) and to
// its active host are each answered 200 by an instance started for them
// (the cold-start latency is logged); once no request came for the
// autostop time the instances are stopped and nothing is left on the
// host; a second cold start (the release now in the host's cache) is
// logged too.
func TestAutostart(t *testing.T) {
	const bridge, subnet = "cairne2eas", "10.91.45.0/24"
	e, ag := runcEnv(t, bridge, subnet)
	root := runtimetest.ProbeRoot(t)
	e.publishRootfs("wake", root, "--cmd", "/probe", "--port", "8080", "--env", "GREETING=v1", "--health-path", "/")
	if out, err := e.cli(e.token, "deployment", "set", "wake", "--autostop", "4s", "--replicas", "1"); err != nil {
		t.Fatalf("deployment set: %v\n%s", err, out)
	}
	e.publishRootfs("wake", root, "--cmd", "/probe", "--port", "8080", "--env", "GREETING=v2", "--health-path", "/", "--no-activate")
	out, err := e.cli(e.token, "ps", "wake")
	if err != nil || !strings.Contains(out, "asleep (autostop 4s)") {
		t.Fatalf("ps of the sleeping deployment: %v\n%s", err, out)
	}
	time.Sleep(time.Second) // a few scheduler runs: still nothing placed
	if is := e.ps("wake"); len(is) != 0 {
		t.Fatalf("asleep: %d instances", len(is))
	}

	edge := strings.TrimPrefix(e.edge, "http://")
	get := func(host string) (int, string, time.Duration) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+edge+"/", nil)
		req.Host = host
		start := time.Now()
		resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", host, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, strings.TrimSpace(string(b)), time.Since(start)
	}
	versions := func() map[int]int {
		out, err := e.cli(e.token, "ps", "wake", "--json")
		if err != nil {
			t.Fatalf("ps: %v\n%s", err, out)
		}
		var is []struct {
			VersionNumber int `json:"version_number"`
		}
		json.Unmarshal([]byte(out), &is)
		n := map[int]int{}
		for _, in := range is {
			n[in.VersionNumber]++
		}
		return n
	}
	var last time.Time // of the last request
	for _, tc := range []struct {
		host, body, what string
		version          int
	}{
		{"wake--v2.localhost", "ok v2", "preview host of an old version", 2},
		{"wake.localhost", "ok v1", "active version (autostop)", 1},
	} {
		code, body, took := get(tc.host)
		if code != 200 || body != tc.body {
			t.Fatalf("first request to the stopped %s: %d %q", tc.what, code, body)
		}
		t.Logf("autostart cold start, %s: %v", tc.what, took.Round(time.Millisecond))
		if code, body, took := get(tc.host); code != 200 || body != tc.body || took > time.Second {
			t.Errorf("second request to the %s: %d %q in %v", tc.what, code, body, took)
		}
		last = time.Now()
		if n := versions()[tc.version]; n != 1 {
			t.Errorf("%d instances of v%d after its wake, want 1", n, tc.version)
		}
	}
	waitUntil(t, "idle instances stopped", 30*time.Second, func() bool { return len(e.ps("wake")) == 0 })
	t.Logf("no instance left %v after the last request (autostop 4s)", time.Since(last).Round(time.Millisecond))
	var left []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if left = ag.leftovers(); len(left) == 0 {
			break
		}
	}
	if len(left) > 0 {
		t.Fatalf("after autostop, left on the host:\n%s", strings.Join(left, "\n"))
	}

	// Woken again: the release is in the host's cache now.
	code, body, took := get("wake.localhost")
	if code != 200 || body != "ok v1" {
		t.Fatalf("request after the autostop: %d %q", code, body)
	}
	t.Logf("autostart cold start, active version, release cached on the host: %v", took.Round(time.Millisecond))
	ag.scaleToZero("wake")
}
