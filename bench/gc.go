package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/edge"
	"github.com/cairnhq/cairn/internal/gc"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/release"
)

const (
	gcDeployments = 100
	gcVersions    = 100 // per deployment
	gcKeep        = 10  // keep_versions of every deployment
	gcWorkers     = 8   // edge load: sequential loopback clients
	gcIdle        = 3 * time.Second
)

// gcBench creates 10,000 versions of small static releases across 100
// deployments (retention 0, keep_versions 10) directly through the meta and
// blob stores, then times one mark+sweep (grace 0) and compares the edge's
// latency under a bounded loopback load while it runs with the idle latency.
func gcBench() error {
	work, err := workDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(work, "meta.db"))
	if err != nil {
		return err
	}
	defer store.Close()
	blobs, err := fs.New(filepath.Join(work, "blobs"))
	if err != nil {
		return err
	}
	t0 := time.Now()
	if err := gcPopulate(ctx, store, blobs, work); err != nil {
		return err
	}
	fmt.Printf("created %d versions in %d deployments in %.1f s\n", gcDeployments*gcVersions, gcDeployments, time.Since(t0).Seconds())

	ed := edge.New(edge.Config{Meta: store, Blobs: blobs, BaseDomain: "localhost"})
	go ed.Run(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: ed}
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()
	idle, err := gcLoad(addr, func() error { time.Sleep(gcIdle); return nil })
	if err != nil {
		return err
	}
	col, err := gc.New(gc.Config{Meta: store, Blobs: blobs, Changed: ed.Invalidate})
	if err != nil {
		return err
	}
	var rep *gc.Report
	var took time.Duration
	during, err := gcLoad(addr, func() error {
		t := time.Now()
		rep, err = col.Run(ctx, false)
		took = time.Since(t)
		return err
	})
	if err != nil {
		return err
	}
	t1 := time.Now()
	again, err := col.Run(ctx, false)
	if err != nil {
		return err
	}
	scan := time.Since(t1)
	tt := rep.Totals
	fmt.Printf("\n== gc: mark+sweep of %d versions (grace 0, retention 0, keep_versions %d)\n", gcDeployments*gcVersions, gcKeep)
	fmt.Printf("run        %8.2f s  collected %d releases (%d versions), freed %s, kept %d %v\n",
		took.Seconds(), tt.ReleasesCollected, tt.VersionsCollected, mb(float64(tt.BytesFreed)), tt.ReleasesKept, tt.KeptBy)
	fmt.Printf("rerun      %8.2f s  (nothing to collect: %d collected, %d kept)\n", scan.Seconds(),
		again.Totals.ReleasesCollected, again.Totals.ReleasesKept)
	fmt.Printf("edge idle  %s\nedge sweep %s\n", idle, during)
	js, _ := json.MarshalIndent(map[string]any{"versions": gcDeployments * gcVersions, "run_s": took.Seconds(),
		"rerun_s": scan.Seconds(), "collected_releases": tt.ReleasesCollected, "bytes_freed": tt.BytesFreed,
		"edge_idle": idle, "edge_during_sweep": during}, "", "  ")
	fmt.Printf("\nresults (json):\n%s\n", js)
	return nil
}

// gcPopulate publishes gcVersions versions in each deployment, each one
// activated in turn, with unique small releases.
func gcPopulate(ctx context.Context, store *sqlite.Store, blobs *fs.Store, work string) error {
	tree := filepath.Join(work, "tree")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return err
	}
	for i := range gcDeployments {
		d := &meta.Deployment{Name: fmt.Sprintf("d%03d", i), Kind: meta.KindStatic, KeepVersions: gcKeep}
		if err := store.CreateDeploymentWithPolicy(ctx, d, "bench"); err != nil {
			return err
		}
		for n := range gcVersions {
			page := fmt.Sprintf("<h1>%s v%d</h1>%s", d.Name, n+1, bytes.Repeat([]byte("x"), 512))
			if err := os.WriteFile(filepath.Join(tree, "index.html"), []byte(page), 0o644); err != nil {
				return err
			}
			var buf bytes.Buffer
			res, err := release.PackDir(ctx, tree, &buf, release.PackOptions{})
			if err != nil {
				return err
			}
			dg := digest.NewDigestFromEncoded(digest.SHA256, res.SHA256)
			if err := blobs.Put(ctx, dg, res.Size, bytes.NewReader(buf.Bytes())); err != nil {
				return err
			}
			m := res.TOC.Manifest("index.html")
			_, err = store.CreateVersion(ctx, meta.NewVersion{DeploymentID: d.ID, Activate: true, Actor: "bench",
				Release:  meta.Release{SHA256: res.SHA256, SizeBytes: res.Size, URI: blobs.URI(dg), TreeSHA256: res.TOC.TreeSHA256},
				Manifest: meta.Manifest{Files: m.Files, TotalBytes: m.TotalBytes, Entrypoint: m.Entrypoint}})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// latency sums up the requests of one load phase.
type latency struct {
	Requests int     `json:"requests"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	Errors   int     `json:"errors"`
}

func (l latency) String() string {
	return fmt.Sprintf("%7d requests  p50 %6.2f ms  p99 %6.2f ms  errors %d", l.Requests, l.P50ms, l.P99ms, l.Errors)
}

// gcLoad drives the edge with gcWorkers sequential keep-alive clients,
// each fetching active pages of random deployments, while fn runs.
func gcLoad(addr string, fn func() error) (latency, error) {
	stop := make(chan struct{})
	var mu sync.Mutex
	var lat []time.Duration
	var errs int
	var wg sync.WaitGroup
	for range gcWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			var mine []time.Duration
			bad := 0
			for {
				select {
				case <-stop:
					mu.Lock()
					lat, errs = append(lat, mine...), errs+bad
					mu.Unlock()
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
				req.Host = fmt.Sprintf("d%03d.localhost", rand.IntN(gcDeployments))
				t := time.Now()
				resp, err := c.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						bad++
					}
				}
				if err != nil {
					bad++
				}
				mine = append(mine, time.Since(t))
			}
		}()
	}
	err := fn()
	close(stop)
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	l := latency{Requests: len(lat), Errors: errs}
	if n := len(lat); n > 0 {
		l.P50ms = float64(lat[n/2].Microseconds()) / 1000
		l.P99ms = float64(lat[n*99/100].Microseconds()) / 1000
	}
	return l, err
}
