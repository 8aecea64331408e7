package e2e

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRollbackUnderLoad: 32 connections read a page while the deployment
// flips between two versions 45 times. Zero errors; every body belongs to
// exactly one version, and matches the version the edge says it served.
func TestRollbackUnderLoad(t *testing.T) {
	e := start(t)
	bodies := map[string]string{}
	for _, tag := range []string{"blue", "green"} {
		tree := site(tag)
		tree["page.html"] = fmt.Sprintf("<p>%s</p>%0200d", tag, 0)
		v := e.publish("flip", tree)
		bodies[v["id"].(string)] = tree["page.html"]
	}
	const conns, flips = 32, 45
	var reqs, bad atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second)
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
			for time.Now().Before(deadline) {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", e.edge+"/page.html", nil)
				req.Host = "flip.localhost"
				resp, err := client.Do(req)
				if err != nil {
					bad.Add(1)
					t.Errorf("request: %v", err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				reqs.Add(1)
				want, ok := bodies[resp.Header.Get("X-Cairn-Version")]
				if err != nil || resp.StatusCode != 200 || !ok || string(b) != want {
					bad.Add(1)
					t.Errorf("bad response: %d %q (version %q)", resp.StatusCode, b, resp.Header.Get("X-Cairn-Version"))
					return
				}
			}
		}()
	}
	for i := range flips {
		n := 1 + i%2
		if code, _ := e.do("POST", "/v1/deployments/flip/activate", e.jsonBody(map[string]any{"version_number": n}), nil); code != 200 {
			t.Fatalf("flip %d: %d", i, code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d requests across %d flips, %d bad", reqs.Load(), flips, bad.Load())
	if bad.Load() != 0 || reqs.Load() < conns {
		t.Fatalf("%d bad responses of %d", bad.Load(), reqs.Load())
	}
}
