package main

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob/s3"
	"github.com/cairnhq/cairn/internal/client"
)

// scaleout measures cairn on PostgreSQL + S3: the cold first byte of one
// file from a never-read release against the naive path (download the whole
// artifact, extract it, read the file), warm req/s over S3 against the
// filesystem backend, and rollback propagation to two edge processes.
func scaleout() error {
	if err := ensure(map[string]string{"wrk": "wrk", "npm": "npm"}); err != nil {
		return err
	}
	work, err := workDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	stopS3, err := startS3(work)
	if err != nil {
		return err
	}
	defer stopS3()
	pg, dropSchema, err := pgSchema()
	if err != nil {
		return err
	}
	defer dropSchema()
	sites, err := installSites(work)
	if err != nil {
		return err
	}
	monaco := sites[0]
	bin, err := buildCairn(work)
	if err != nil {
		return err
	}
	blobs := "s3://cairn-bench?endpoint=" + url.QueryEscape(os.Getenv("S3_ENDPOINT")) + "&region=us-east-1"
	common := []string{"--database", pg, "--blobs", blobs, "--token", benchToken}
	stopAPI, err := serve(bin, append(common, "--roles", "api", "--api-addr", apiAddr, "--data", filepath.Join(work, "api"))...)
	if err != nil {
		return err
	}
	defer stopAPI()
	ctx := context.Background()
	v, err := publishDir(ctx, bin, monaco.dir, "monaco")
	if err != nil {
		return err
	}
	file := "min/vs/loader.js"

	fmt.Printf("\n== cold first byte of %s from a never-read release (median of 5)\n", file)
	var cold, naive []float64
	for i := range 5 {
		stop, err := serve(bin, append(common, "--roles", "edge", "--edge-addr", edgeAddr, "--data", filepath.Join(work, fmt.Sprint("edge", i)))...)
		if err != nil {
			return err
		}
		d, err := firstByte("http://"+edgeAddr+"/"+file, "monaco.localhost")
		stop()
		if err != nil {
			return err
		}
		cold = append(cold, d.Seconds())
		n, err := naivePath(ctx, blobs, v, file, filepath.Join(work, "naive"))
		if err != nil {
			return err
		}
		naive = append(naive, n.Seconds())
	}
	fmt.Printf("cairn edge (footer+TOC+1 ranged GET) %8.1f ms\n", median(cold)*1000)
	fmt.Printf("naive (GET artifact, extract, read)  %8.1f ms   ratio %.1f×\n", median(naive)*1000, median(naive)/median(cold))

	fmt.Printf("\n== warm req/s on a small file, S3 vs filesystem backend (wrk -c32, median of 3)\n")
	_, small, _ := pick([]site{monaco}, 4<<10)
	stopS3Edge, err := serve(bin, append(common, "--roles", "edge", "--edge-addr", edgeAddr, "--data", filepath.Join(work, "edge-warm"))...)
	if err != nil {
		return err
	}
	defer stopS3Edge()
	fsData, fsEdge := filepath.Join(work, "fsdata"), "127.0.0.1:17883"
	stopFS, err := serve(bin, "--data", fsData, "--api-addr", "127.0.0.1:17900", "--edge-addr", fsEdge)
	if err != nil {
		return err
	}
	defer stopFS()
	if err := run("", bin, "publish", monaco.dir, "--deployment", "monaco", "--api", "http://127.0.0.1:17900", "--data", fsData); err != nil {
		return err
	}
	var rs3, rfs []float64
	for round := range 4 {
		a, err := wrk("http://"+edgeAddr+"/"+small, "monaco.localhost")
		if err != nil {
			return err
		}
		b, err := wrk("http://"+fsEdge+"/"+small, "monaco.localhost")
		if err != nil {
			return err
		}
		if round > 0 {
			rs3, rfs = append(rs3, a.rps), append(rfs, b.rps)
		}
	}
	stopS3Edge()
	fmt.Printf("S3 %10.0f req/s   filesystem %10.0f req/s   ratio %.2f\n", median(rs3), median(rfs), median(rs3)/median(rfs))

	return propagation(bin, common, work)
}

// propagation flips a deployment 50 times through the API and measures how
// long until two edge processes both serve the new version.
func propagation(bin string, common []string, work string) error {
	e2 := "127.0.0.1:17882"
	var stops []func()
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	for i, addr := range []string{edgeAddr, e2} {
		stop, err := serve(bin, append(common, "--roles", "edge", "--edge-addr", addr, "--data", filepath.Join(work, fmt.Sprint("pedge", i)))...)
		if err != nil {
			return err
		}
		stops = append(stops, stop)
	}
	site := filepath.Join(work, "flip")
	ctx := context.Background()
	for _, body := range []string{"one", "two"} {
		os.MkdirAll(site, 0o755)
		os.WriteFile(filepath.Join(site, "index.html"), []byte(body), 0o644)
		if _, err := publishDir(ctx, bin, site, "flip"); err != nil {
			return err
		}
	}
	c := client.New("http://"+apiAddr, benchToken)
	var lags []float64
	for i := range 50 {
		n, want := int64(1+i%2), []string{"one", "two"}[i%2]
		start := time.Now()
		if _, err := c.Activate(ctx, "flip", n); err != nil {
			return err
		}
		for _, addr := range []string{edgeAddr, e2} {
			for body(addr, "flip.localhost") != want {
				if time.Since(start) > 5*time.Second {
					return fmt.Errorf("edge %s did not switch within 5 s", addr)
				}
				time.Sleep(time.Millisecond)
			}
		}
		lags = append(lags, time.Since(start).Seconds()*1000)
	}
	sort.Float64s(lags)
	fmt.Printf("\n== rollback propagation to 2 edge processes over 50 flips (PostgreSQL NOTIFY)\n")
	fmt.Printf("p50 %.1f ms   p99 %.1f ms   max %.1f ms\n", lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1])
	return nil
}

func body(addr, host string) string {
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// publishDir publishes with the CLI and returns the artifact sha256.
func publishDir(ctx context.Context, bin, dir, name string) (string, error) {
	out, err := output("", bin, "publish", dir, "--deployment", name, "--api", "http://"+apiAddr, "--token", benchToken, "--json")
	if err != nil {
		return "", err
	}
	i := strings.Index(out, `"artifact_sha256": "`)
	if i < 0 {
		return "", fmt.Errorf("no artifact_sha256 in %s", out)
	}
	return out[i+20 : i+84], nil
}

// firstByte returns the time to the first response byte of a GET.
func firstByte(u, host string) (time.Duration, error) {
	req, _ := http.NewRequest("GET", u, nil)
	req.Host = host
	var first time.Time
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotFirstResponseByte: func() { first = time.Now() },
	}))
	start := time.Now()
	resp, err := (&http.Transport{}).RoundTrip(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("%s: status %d", u, resp.StatusCode)
	}
	return first.Sub(start), nil
}

// naivePath downloads the whole artifact, extracts it to dir and reads the
// first byte of file.
func naivePath(ctx context.Context, blobs, sha, file, dir string) (time.Duration, error) {
	st, err := s3.New(ctx, blobs)
	if err != nil {
		return 0, err
	}
	os.RemoveAll(dir)
	os.MkdirAll(dir, 0o755)
	start := time.Now()
	rc, err := st.Open(ctx, digest.NewDigestFromEncoded(digest.SHA256, sha), 0, -1)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	art := filepath.Join(dir, "artifact.tar.zst")
	f, err := os.Create(art)
	if err != nil {
		return 0, err
	}
	if _, err := io.Copy(f, rc); err != nil {
		return 0, err
	}
	f.Seek(0, 0)
	zr, err := zstd.NewReader(f)
	if err != nil {
		return 0, err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			return 0, err
		}
		p := filepath.Join(dir, "tree", filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		out, err := os.Create(p)
		if err != nil {
			return 0, err
		}
		io.Copy(out, tr)
		out.Close()
		if h.Name == file {
			b := make([]byte, 1)
			g, _ := os.Open(p)
			g.Read(b)
			g.Close()
			return time.Since(start), nil
		}
	}
}

// serve starts `cairn server args…` and waits for its first address.
func serve(bin string, args ...string) (func(), error) {
	cmd := exec.Command(bin, append([]string{"server"}, args...)...)
	cmd.Stderr = os.Stderr
	cmd.Env = append(os.Environ(), "CAIRN_LOG_LEVEL=warn")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var once sync.Once
	stop := func() { once.Do(func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }) }
	for i, a := range args {
		if (a == "--api-addr" || a == "--edge-addr") && i+1 < len(args) {
			if err := waitPort(args[i+1]); err != nil {
				stop()
				return nil, err
			}
		}
	}
	return stop, nil
}

// startS3 uses S3_ENDPOINT if set, else starts versitygw from ../shared/tools.
func startS3(work string) (func(), error) {
	if os.Getenv("S3_ENDPOINT") != "" {
		return func() {}, nil
	}
	tool, _ := filepath.Abs("../shared/tools/s3-server")
	dir := filepath.Join(work, "s3")
	out, err := output("", tool, "start", dir, "127.0.0.1:19900")
	if err != nil {
		return nil, err
	}
	for _, kv := range strings.Fields(strings.TrimPrefix(strings.TrimSpace(out), "export ")) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			os.Setenv(k, v)
		}
	}
	return func() { exec.Command(tool, "stop", dir).Run() }, nil
}

// pgSchema creates a fresh schema and returns a URL that uses it.
func pgSchema() (string, func(), error) {
	base := os.Getenv("CAIRN_TEST_POSTGRES")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	schema := fmt.Sprintf("cairn_bench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", nil, err
	}
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), func() { conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); conn.Close(ctx) }, nil
}
