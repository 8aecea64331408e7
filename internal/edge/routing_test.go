package edge

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

func TestRouting(t *testing.T) {
	v := newEnv(t, Config{})
	ctx := context.Background()
	d := v.deploy("site")
	v1, r1 := v.publish(d, map[string]string{"index.html": "one"}, true)
	v2, r2 := v.publish(d, map[string]string{"index.html": "two"}, true)

	t.Run("active version", func(t *testing.T) {
		resp, body := v.mustGet("site.localhost", "/", 200)
		if string(body) != "two" || resp.Header.Get("X-Cairn-Version") != v2.ID ||
			resp.Header.Get("X-Cairn-Release") != r2.SHA256 {
			t.Fatalf("body %q, headers %v", body, resp.Header)
		}
		if got := resp.Header.Get("Cache-Control"); got != "public, max-age=0, must-revalidate" {
			t.Errorf("Cache-Control %q", got)
		}
	})
	t.Run("host is case-insensitive, port and trailing dot ignored", func(t *testing.T) {
		_, body := v.mustGet("SITE.LocalHost.:8080", "/", 200)
		if string(body) != "two" {
			t.Fatalf("body %q", body)
		}
	})
	t.Run("preview of an older version", func(t *testing.T) {
		resp, body := v.mustGet("site--v1.localhost", "/", 200)
		if string(body) != "one" || resp.Header.Get("X-Cairn-Version") != v1.ID ||
			resp.Header.Get("X-Cairn-Release") != r1.SHA256 {
			t.Fatalf("body %q, headers %v", body, resp.Header)
		}
		if got := resp.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("Cache-Control %q", got)
		}
	})
	t.Run("custom domains", func(t *testing.T) {
		if err := v.meta.CreateDomain(ctx, &meta.Domain{Hostname: "www.example.com", DeploymentID: d.ID}, "t"); err != nil {
			t.Fatal(err)
		}
		if err := v.meta.CreateDomain(ctx, &meta.Domain{Hostname: "old.example.com", DeploymentID: d.ID, VersionID: &v1.ID}, "t"); err != nil {
			t.Fatal(err)
		}
		v.edge.Invalidate()
		if _, body := v.mustGet("www.example.com", "/", 200); string(body) != "two" {
			t.Errorf("following domain: %q", body)
		}
		resp, body := v.mustGet("old.example.com", "/", 200)
		if string(body) != "one" || resp.Header.Get("X-Cairn-Version") != v1.ID {
			t.Errorf("pinned domain: %q %v", body, resp.Header)
		}
	})
	t.Run("nothing to serve", func(t *testing.T) {
		v.deploy("empty") // no version yet
		oci := &meta.Deployment{Name: "image", Kind: meta.KindOCI}
		if err := v.meta.CreateDeployment(ctx, oci, "t"); err != nil {
			t.Fatal(err)
		}
		for _, host := range []string{"unknown.localhost", "nobody.example.org", "localhost", "empty.localhost",
			"image.localhost", "site--v9.localhost", "a.site.localhost", "[::1]:80", "bad_host", "127.0.0.1:1"} {
			resp, body := v.mustGet(host, "/", 404)
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") ||
				!strings.Contains(string(body), "404") || resp.Header.Get("X-Cairn-Version") != "" {
				t.Errorf("%s: %q %q", host, ct, body)
			}
		}
	})
	t.Run("activate then Invalidate", func(t *testing.T) {
		if _, err := v.meta.Activate(ctx, d.ID, 1, "t", meta.ActionRollback); err != nil {
			t.Fatal(err)
		}
		v.edge.Invalidate()
		if _, body := v.mustGet("site.localhost", "/", 200); string(body) != "one" {
			t.Fatalf("after rollback: %q", body)
		}
		if _, body := v.mustGet("www.example.com", "/", 200); string(body) != "one" {
			t.Fatalf("following domain after rollback: %q", body)
		}
		if _, body := v.mustGet("site--v2.localhost", "/", 200); string(body) != "two" {
			t.Fatalf("preview after rollback: %q", body)
		}
	})
}

func TestRouteCachedUntilInvalidate(t *testing.T) {
	v := newEnv(t, Config{})
	d := v.deploy("site")
	v.publish(d, map[string]string{"index.html": "one"}, true)
	v.mustGet("site.localhost", "/", 200)
	v.publish(d, map[string]string{"index.html": "two"}, true)
	if _, body := v.mustGet("site.localhost", "/", 200); string(body) != "one" {
		t.Fatalf("route re-resolved without a signal: %q", body)
	}
	v.edge.Invalidate()
	if _, body := v.mustGet("site.localhost", "/", 200); string(body) != "two" {
		t.Fatalf("after Invalidate: %q", body)
	}
}

func TestRunFollowsWatcher(t *testing.T) {
	v := newEnv(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- v.edge.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	d := v.deploy("site")
	v.publish(d, map[string]string{"index.html": "one"}, true)
	v.mustGet("site--v1.localhost", "/", 200)
	v.publish(d, map[string]string{"index.html": "two"}, true)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, body := v.mustGet("site.localhost", "/", 200)
		if string(body) == "two" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving %q after the watcher signal", body)
		}
	}
}

func TestRunPeriodicResync(t *testing.T) {
	v := newEnv(t, Config{}, func(e *Edge) {
		e.resync = 20 * time.Millisecond
		e.meta = noWatch{e.meta} // a store whose Watch never signals
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go v.edge.Run(ctx)
	d := v.deploy("site")
	v.publish(d, map[string]string{"index.html": "one"}, true)
	v.mustGet("site.localhost", "/", 200)
	v.publish(d, map[string]string{"index.html": "two"}, true)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, body := v.mustGet("site.localhost", "/", 200); string(body) == "two" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no resync")
		}
	}
}

type noWatch struct{ Store }

func (noWatch) Watch(context.Context) <-chan struct{} { return nil }

// TestRollbackIsAtomicPerRequest flips the active version while clients
// fetch: every response's body belongs to the version its header names.
func TestRollbackIsAtomicPerRequest(t *testing.T) {
	v := newEnv(t, Config{})
	ctx := context.Background()
	d := v.deploy("site")
	want := map[string]string{}
	for _, s := range []string{"one", "two"} {
		ver, _ := v.publish(d, map[string]string{"index.html": s, "a/b.txt": s + "-b"}, true)
		want[ver.ID] = s
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, body := v.get(http.MethodGet, "site.localhost", "/a/b.txt")
				if s := want[resp.Header.Get("X-Cairn-Version")]; string(body) != s+"-b" {
					t.Errorf("version %s served %q", resp.Header.Get("X-Cairn-Version"), body)
					return
				}
			}
		}()
	}
	for i := range 40 {
		if _, err := v.meta.Activate(ctx, d.ID, int64(i%2+1), "t", meta.ActionActivate); err != nil {
			t.Fatal(err)
		}
		v.edge.Invalidate()
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
}
