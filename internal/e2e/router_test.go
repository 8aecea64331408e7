package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// TestRouter runs real processes: `cairn server --roles api,edge,sched`, a second
// `cairn server --roles edge` on the same data dir, and an agent with the
// testproc driver. A rootfs deployment scaled to 2 is served through both
// edges under 32 keep-alive connections; its active version is switched
// under that load with no failed request (requests wait while the new
// version's instances start: router.HoldFor); a scale to 0 reaches the
// second edge process within 1 s.
func TestRouter(t *testing.T) {
	if scaleOut() {
		t.Log("runs in the embedded pass (the edges share a SQLite data dir)")
		return
	}
	app := hostApp(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	const token = "router-e2e-test-token-0123456789abcdef"
	api, edge1, edge2 := freeAddr(t), freeAddr(t), freeAddr(t)
	process(t, dir, "--data", data, "--token", token, "--roles", "api,edge,sched", "--api-addr", api, "--edge-addr", edge1)
	waitListen(t, api)
	process(t, dir, "--data", data, "--roles", "edge", "--edge-addr", edge2)
	waitListen(t, edge1)
	waitListen(t, edge2)
	e := &env{t: t, api: "http://" + api, token: token}

	var tok struct{ Secret string }
	if code, _ := e.do("POST", "/v1/tokens", e.jsonBody(map[string]any{"name": "agent", "scopes": []string{"agent"}}), &tok); code != 201 {
		t.Fatalf("token: %d", code)
	}
	if code, _ := e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "web", "kind": "rootfs"}), nil); code != 201 {
		t.Fatalf("create: %d", code)
	}
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	tw.WriteHeader(&tar.Header{Name: "app", Typeflag: tar.TypeReg, Mode: 0o755, Size: 2})
	tw.Write([]byte("hi"))
	tw.Close()
	enc, _ := zstd.NewWriter(nil)
	for n, activate := range []string{"true", "false"} {
		rt, _ := json.Marshal(map[string]any{"cmd": []string{app}, "port": 8080,
			"health_check": map[string]any{"path": "/healthz"}, "env": map[string]string{"BODY": fmt.Sprintf("v%d", n+1)}})
		var v map[string]any
		if code, _ := e.do("POST", "/v1/deployments/web/versions?activate="+activate+"&runtime="+url.QueryEscape(string(rt)),
			bytes.NewReader(enc.EncodeAll(plain.Bytes(), nil)), &v); code != 201 {
			t.Fatalf("publish %d: %d %v", n+1, code, v)
		}
	}
	startAgent(t, e, tok.Secret, t.TempDir())
	if out, err := e.cli(e.token, "scale", "web", "2"); err != nil {
		t.Fatalf("scale: %s %v", out, err)
	}
	healthy := func() int {
		out, err := e.cli(e.token, "ps", "web", "--json")
		if err != nil {
			t.Fatalf("ps: %s %v", out, err)
		}
		var is []instanceJSON
		json.Unmarshal([]byte(out), &is)
		n := 0
		for _, in := range is {
			if in.State == "healthy" {
				n++
			}
		}
		return n
	}
	waitUntil(t, "2 healthy instances", 30*time.Second, func() bool { return healthy() == 2 })
	for _, ed := range []string{edge1, edge2} {
		waitUntil(t, "edge "+ed+" serves v1", 5*time.Second, func() bool { return fetchHost(ed, "web.localhost") == "v1\n" })
	}

	// 32 keep-alive connections, half on each edge, for the rest of the
	// test's load phase.
	type result struct {
		at   time.Time
		code int
		body string
		err  error
	}
	var (
		mu      sync.Mutex
		results []result
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	for i := range 32 {
		ed := []string{edge1, edge2}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
			defer c.CloseIdleConnections()
			for !stop.Load() {
				req, _ := http.NewRequest("GET", "http://"+ed+"/", nil)
				req.Host = "web.localhost"
				resp, err := c.Do(req)
				r := result{at: time.Now(), err: err}
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					r.code, r.body = resp.StatusCode, string(b)
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(time.Second)
	switched := time.Now()
	// A dynamic deployment's activation is a rolling replacement (202):
	// the pointer moves once v2's instances are healthy.
	if code, _ := e.do("POST", "/v1/deployments/web/activate", e.jsonBody(map[string]any{"version_number": 2}), nil); code != 200 && code != 202 {
		t.Fatalf("activate: %d", code)
	}
	for _, ed := range []string{edge1, edge2} {
		waitUntil(t, "edge "+ed+" serves v2", 30*time.Second, func() bool { return fetchHost(ed, "web.localhost") == "v2\n" })
	}
	t.Logf("both edges serve v2 %v after the activation request", time.Since(switched).Round(time.Millisecond))
	switched = time.Now()
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()

	var ok int
	var failures []string
	lastV1 := time.Time{}
	for _, r := range results {
		switch {
		case r.err != nil:
			failures = append(failures, r.err.Error())
		case r.code == 200 && (r.body == "v1\n" || r.body == "v2\n"):
			ok++
			if r.body == "v1\n" && r.at.After(lastV1) {
				lastV1 = r.at
			}
		default:
			failures = append(failures, fmt.Sprintf("%d %q", r.code, r.body))
		}
	}
	t.Logf("%d requests under load: %d answered by v1 or v2; last v1 answer %v after both edges served v2",
		len(results), ok, lastV1.Sub(switched).Round(time.Millisecond))
	if len(failures) > 0 {
		t.Errorf("%d failed requests, e.g. %v", len(failures), failures[:min(5, len(failures))])
	}
	if lastV1.Sub(switched) > 5*time.Second {
		t.Errorf("v1 still answered %v after both edges served v2", lastV1.Sub(switched))
	}
	if ok < 100 {
		t.Errorf("only %d successful requests under load", ok)
	}

	// A scale to 0 removes the instances; the second edge process stops
	// sending to them within 1 s (503 problem+json with Retry-After).
	var lags []time.Duration
	for i := range 2 {
		if i > 0 {
			if out, err := e.cli(e.token, "scale", "web", "2"); err != nil {
				t.Fatalf("scale: %s %v", out, err)
			}
			waitUntil(t, "2 healthy instances again", 30*time.Second, func() bool { return healthy() == 2 })
			waitUntil(t, "edge 2 serves v2 again", 5*time.Second, func() bool { return fetchHost(edge2, "web.localhost") == "v2\n" })
		}
		start := time.Now()
		if out, err := e.cli(e.token, "scale", "web", "0"); err != nil {
			t.Fatalf("scale 0: %s %v", out, err)
		}
		for {
			req, _ := http.NewRequest("GET", "http://"+edge2+"/", nil)
			req.Host = "web.localhost"
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "" && strings.Contains(string(b), "no-healthy-instance") {
					break
				}
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("edge 2 still sends to removed instances 5 s after the scale to 0")
			}
			time.Sleep(5 * time.Millisecond)
		}
		lags = append(lags, time.Since(start))
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	t.Logf("instance removal reached the second edge process in %v", lags)
	if lags[len(lags)-1] > time.Second {
		t.Errorf("instance removal took %v to reach the second edge process, want <= 1 s", lags[len(lags)-1])
	}
}
