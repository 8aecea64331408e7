package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/cairnhq/cairn/internal/blob/faultproxy"
	"github.com/cairnhq/cairn/internal/server"
)

// brokenRegion is a second region that is unreachable until healed.
type brokenRegion struct {
	url     string                  // its --blobs URL
	heal    func()                  // makes it reachable
	corrupt func(sha string)        // flips a byte of its copy of sha
	read    func(sha string) []byte // its copy of sha
}

// TestRegions: two regions, the second unreachable at first. The publish
// succeeds on the primary; the release shows the copy failed, then ready
// once the region is back; edges started with --region of that region
// serve correct bytes throughout, also from a corrupt copy, which is then
// repaired. On PostgreSQL + S3 (scale-out) the broken region is an S3
// bucket behind a faultproxy that resets every connection; otherwise a
// file:// store under a path that cannot be created yet.
func TestRegions(t *testing.T) {
	var db, primary string
	var eu brokenRegion
	e := start(t, func(c *server.Config) {
		db, primary = c.Database, c.Blobs
		if scaleOut() {
			eu = s3Broken(t)
		} else {
			dir := t.TempDir()
			primary = "file://" + filepath.Join(dir, "us")
			eu = fsBroken(t, dir)
		}
		c.Blobs = "us=" + primary + ",eu=" + eu.url
		c.ReplicaRetry = 300 * time.Millisecond
	})
	if db == "" {
		db = "sqlite://" + filepath.Join(e.data, "cairn.db")
	}
	edge := func() string { // an edge process reading eu first
		addr := freeAddr(t)
		dir := t.TempDir()
		process(t, dir, "--roles", "edge", "--region", "eu", "--edge-addr", addr, "--data", dir,
			"--database", db, "--blobs", "us="+primary+",eu="+eu.url)
		waitListen(t, addr)
		return "http://" + addr
	}
	edgeA := edge()

	tree := site("regions")
	sha := e.publish("regions", tree)["artifact_sha256"].(string) // eu is down: the primary acknowledges
	if st, _ := replica(e, sha); st != "pending" && st != "failed" {
		t.Fatalf("eu right after the publish: %q, want pending or failed", st)
	}
	eventually(t, "eu failed", func() bool { st, why := replica(e, sha); return st == "failed" && why == "unreachable" })
	wantSite(t, edgeA, tree)
	wantSite(t, e.edge, tree)

	eu.heal()
	eventually(t, "eu ready", func() bool { st, _ := replica(e, sha); return st == "ready" })
	if got := sum(eu.read(sha)); got != sha {
		t.Fatalf("eu's copy hashes to %s", got)
	}
	wantSite(t, edgeA, tree)

	// A corrupt copy is never served; it is reported and copied again.
	eu.corrupt(sha)
	wantSite(t, edge(), tree)
	eventually(t, "eu repaired", func() bool {
		st, _ := replica(e, sha)
		return st == "ready" && sum(eu.read(sha)) == sha
	})
}

// replica returns the state and reason of the eu copy of release sha, as
// GET /v1/releases/{sha} shows them.
func replica(e *env, sha string) (state, reason string) {
	e.t.Helper()
	var rel struct {
		SHA256   string `json:"sha256"`
		Replicas map[string]struct {
			State     string    `json:"state"`
			Error     string    `json:"error"`
			UpdatedAt time.Time `json:"updated_at"`
		} `json:"replicas"`
	}
	if code, _ := e.do("GET", "/v1/releases/"+sha, nil, &rel); code != 200 || rel.SHA256 != sha {
		e.t.Fatalf("GET release: %d %+v", code, rel)
	}
	if _, ok := rel.Replicas["us"]; ok || len(rel.Replicas) != 1 {
		e.t.Fatalf("replicas %+v, want eu only", rel.Replicas)
	}
	r := rel.Replicas["eu"]
	if r.UpdatedAt.IsZero() || strings.ContainsAny(r.Error, " :/") {
		e.t.Fatalf("eu replica %+v: want updated_at and a short reason", r)
	}
	return r.State, r.Error
}

// wantSite checks that the edge at base serves every file of tree.
func wantSite(t *testing.T, base string, tree map[string]string) {
	t.Helper()
	for path, want := range tree {
		req, _ := http.NewRequest("GET", base+"/"+path, nil)
		req.Host = "regions.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(got) != want {
			t.Fatalf("%s /%s: %d, %d bytes (%v), want the %d published", base, path, resp.StatusCode, len(got), err, len(want))
		}
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 30 s waiting for %s", what)
		}
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// fsBroken is a file:// region under dir whose directory cannot be
// created while a plain file stands in its way.
func fsBroken(t *testing.T, dir string) brokenRegion {
	block := filepath.Join(dir, "eu-block")
	if err := os.WriteFile(block, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(block, "blobs")
	path := func(sha string) string { return filepath.Join(root, "sha256", sha[:2], sha) }
	return brokenRegion{
		url:  "file://" + root,
		heal: func() { os.Remove(block) },
		read: func(sha string) []byte { b, _ := os.ReadFile(path(sha)); return b },
		corrupt: func(sha string) {
			b, err := os.ReadFile(path(sha))
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0xff
			os.Chmod(path(sha), 0o600)
			if err := os.WriteFile(path(sha), b, 0o600); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// s3Broken is a fresh bucket reached through a faultproxy that resets
// every connection until healed.
func s3Broken(t *testing.T) brokenRegion {
	direct, err := url.Parse(s3URL(t)) // its cleanup empties the bucket
	if err != nil {
		t.Fatal(err)
	}
	ep := os.Getenv("S3_ENDPOINT")
	proxy, err := faultproxy.New(ep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proxy.Close() })
	proxy.Set(faultproxy.Plan{Fault: faultproxy.Reset, Fraction: 1})
	q := direct.Query()
	q.Set("endpoint", proxy.URL())
	viaProxy := *direct
	viaProxy.RawQuery = q.Encode()

	e, _ := url.Parse(ep)
	c, err := minio.New(e.Host, &minio.Options{Secure: e.Scheme == "https", Region: q.Get("region"),
		Creds: credentials.NewStaticV4(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), "")})
	if err != nil {
		t.Fatal(err)
	}
	bucket := direct.Host
	read := func(sha string) []byte {
		o, err := c.GetObject(context.Background(), bucket, "sha256/"+sha, minio.GetObjectOptions{})
		if err != nil {
			return nil
		}
		defer o.Close()
		b, _ := io.ReadAll(o)
		return b
	}
	return brokenRegion{
		url:  viaProxy.String(),
		heal: proxy.Clear,
		read: read,
		corrupt: func(sha string) {
			b := read(sha)
			if len(b) == 0 {
				t.Fatal("no copy to corrupt")
			}
			b[len(b)/2] ^= 0xff
			if _, err := c.PutObject(context.Background(), bucket, "sha256/"+sha, bytes.NewReader(b), int64(len(b)),
				minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		},
	}
}
