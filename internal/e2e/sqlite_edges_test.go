package e2e

import (
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta/sqlite"
)

// TestSQLiteEdgeProcess: a separate `--roles edge` process on the embedded
// default (the same SQLite file and blob directory as the API process)
// serves an activation within the documented bound: SQLite's data_version
// poll interval plus the edge's reload. It kept the old version for more
// than 13 s before the poller.
func TestSQLiteEdgeProcess(t *testing.T) {
	if scaleOut() {
		t.Log("runs in the embedded pass")
		return
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	const token = "sqlite-edge-test-token-0123456789abcdef"
	api, edge := freeAddr(t), freeAddr(t)
	process(t, dir, "--data", data, "--token", token, "--roles", "api", "--api-addr", api)
	waitListen(t, api)
	process(t, dir, "--data", data, "--roles", "edge", "--edge-addr", edge)
	waitListen(t, edge)

	env := &env{t: t, api: "http://" + api, token: token}
	env.publish("lite", site("one"))
	env.publish("lite", site("two"))

	fetch := func() string { return fetchHost(edge, "lite.localhost") }
	bound := 4 * sqlite.PollInterval
	var lags []time.Duration
	for i := range 6 {
		want, n := "<h1>one</h1>", 1
		if i%2 == 1 {
			want, n = "<h1>two</h1>", 2
		}
		start := time.Now()
		if code, _ := env.do("POST", "/v1/deployments/lite/activate", env.jsonBody(map[string]any{"version_number": n}), nil); code != 200 {
			t.Fatalf("activate: %d", code)
		}
		for fetch() != want {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("flip %d: the edge process still serves %q after 5 s", i, fetch())
			}
			time.Sleep(5 * time.Millisecond)
		}
		lags = append(lags, time.Since(start))
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	t.Logf("propagation to the SQLite edge process over %d flips: p50 %v, max %v", len(lags), lags[len(lags)/2], lags[len(lags)-1])
	if max := lags[len(lags)-1]; max > bound {
		t.Errorf("slowest propagation %v, documented bound %v", max, bound)
	}
}
