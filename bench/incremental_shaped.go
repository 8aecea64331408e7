package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// The ports of the servers of shapedPublishes and memoryRepublish.
const (
	incr2APIAddr  = "127.0.0.1:17911"
	incr2EdgeAddr = "127.0.0.1:17991"
)

// benchServer starts `cairn server` on a fresh data dir at incr2APIAddr.
func benchServer(bin, data string) (*exec.Cmd, error) {
	if c, err := net.Dial("tcp", incr2APIAddr); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s is taken (another bench?)", incr2APIAddr)
	}
	srv := exec.Command(bin, "server", "--data", data, "--api-addr", incr2APIAddr, "--edge-addr", incr2EdgeAddr)
	srv.Stderr = io.Discard
	if err := srv.Start(); err != nil {
		return nil, err
	}
	if err := waitPort(incr2APIAddr); err != nil {
		srv.Process.Kill()
		srv.Wait()
		return nil, err
	}
	return srv, nil
}

// cliPublish runs `cairn publish tree --deployment dep --json` against api;
// it returns the output, the wall time and the CLI's peak RSS (rusage).
func cliPublish(bin, tree, dep, api, data, cache string) (out publishJSON, wall float64, rss int64, err error) {
	cmd := exec.Command(bin, "publish", tree, "--deployment", dep, "--api", "http://"+api, "--data", data, "--json")
	cmd.Env = append(os.Environ(), "CAIRN_CACHE_DIR="+cache)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return out, 0, 0, fmt.Errorf("cairn publish %s: %v: %s", dep, err, stderr.String())
	}
	wall = time.Since(t0).Seconds()
	rss = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
	return out, wall, rss, json.Unmarshal(stdout.Bytes(), &out)
}

// changeFile appends a line to the file of tree at rel.
func changeFile(tree, rel string) error {
	p := filepath.Join(tree, filepath.FromSlash(rel))
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return os.WriteFile(p, append(b, fmt.Sprintf("\n/* changed %d */\n", time.Now().UnixNano())...), 0o644)
}

// shapedPublishes publishes tree through a 100 Mbit/s shaping proxy to a
// fresh server: a cold publish by the digest-first protocol (to a
// deployment that holds one small file, so every content is sent), the
// one-file re-publish, and the raw tar upload of the same tree (the CLI's
// one-request tar path, as for a deployment not created yet, which is
// also what a cold `cairn publish` sends today).
func shapedPublishes(bin, work, tree string, results map[string]any) error {
	data := filepath.Join(work, "data-shaped")
	srv, err := benchServer(bin, data)
	if err != nil {
		return err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	px, err := startShaper(incr2APIAddr, 100e6)
	if err != nil {
		return err
	}
	defer px.Close()
	cache := filepath.Join(work, "cache-shaped")
	small := filepath.Join(work, "small")
	os.MkdirAll(small, 0o755)
	if err := os.WriteFile(filepath.Join(small, "index.html"), []byte("<h1>small</h1>\n"), 0o644); err != nil {
		return err
	}
	if _, _, _, err := cliPublish(bin, small, "dfp", incr2APIAddr, data, cache); err != nil {
		return err
	}
	in, files := dirSize(tree)
	fmt.Printf("\n== through a 100 Mbit/s shaping proxy (%d files, %s)\n", files, mb(float64(in)))
	cold, coldWall, _, err := cliPublish(bin, tree, "dfp", px.Addr(), data, cache)
	if err != nil {
		return err
	}
	if cold.Sent.Reused != 0 {
		return fmt.Errorf("the cold digest-first publish reused %d bytes", cold.Sent.Reused)
	}
	time.Sleep(1100 * time.Millisecond) // the changed file's mtime differs
	_, rel, _ := pick([]site{{"monaco", "monaco-editor", tree}}, 10<<10)
	if err := changeFile(tree, rel); err != nil {
		return err
	}
	one, oneWall, _, err := cliPublish(bin, tree, "dfp", px.Addr(), data, cache)
	if err != nil {
		return err
	}
	tar, tarWall, _, err := cliPublish(bin, tree, "tar", px.Addr(), data, cache)
	if err != nil {
		return err
	}
	if tar.ArtifactSHA256 != one.ArtifactSHA256 {
		return fmt.Errorf("the tar upload stored %s, the re-publish %s", tar.ArtifactSHA256, one.ArtifactSHA256)
	}
	fmt.Printf("raw tar upload (one request, uncompressed; a cold `cairn publish` today): %.2f s\n", tarWall)
	fmt.Printf("cold publish, digest-first (%d contents, %s sent): %.2f s = %.3f× the tar upload (target ≤ 0.35×)\n",
		cold.Sent.New, mb(float64(cold.Sent.BytesSent)), coldWall, coldWall/tarWall)
	fmt.Printf("one file changed (%d B sent): %.3f s = %.3f× the tar upload (target ≤ 0.05×)\n",
		one.Sent.BytesSent, oneWall, oneWall/tarWall)
	for k, v := range map[string]any{
		"shaped_tar_s": tarWall, "shaped_cold_s": coldWall, "shaped_cold_ratio": coldWall / tarWall,
		"shaped_cold_sent_bytes": cold.Sent.BytesSent, "shaped_one_file_s": oneWall,
		"shaped_one_file_ratio": oneWall / tarWall,
	} {
		results[k] = v
	}
	return nil
}

// memoryRepublish publishes the memory bench's 2 GB tree, restarts the
// server (so that its peak RSS is the re-publish's), changes one 1 MB file
// and publishes again; it reports the peak RSS (VmHWM) of the server and of
// the CLI (rusage) of that re-publish, its digest cache empty, so the CLI
// hashes the whole tree, and then of a second one-file re-publish with the
// cache filled.
func memoryRepublish(bin, work string, results map[string]any) error {
	tree := filepath.Join(work, "tree")
	fmt.Println("\ngenerating a 2 GB tree in", tree)
	if err := genTree(tree); err != nil {
		return err
	}
	data := filepath.Join(work, "data-memory")
	cache := filepath.Join(work, "cache-memory")
	srv, err := benchServer(bin, data)
	if err != nil {
		return err
	}
	_, coldWall, _, err := cliPublish(bin, tree, "big", incr2APIAddr, data, cache)
	srv.Process.Kill()
	srv.Wait()
	if err != nil {
		return err
	}
	fmt.Printf("\n== memory: the 2 GB tree, cold publish %.1f s; re-published with one 1 MB file changed\n", coldWall)
	for i, label := range []string{"digest cache empty", "digest cache filled"} {
		if srv, err = benchServer(bin, data); err != nil {
			return err
		}
		base, err := peakRSS(srv.Process.Pid)
		if err == nil {
			time.Sleep(1100 * time.Millisecond)
			if err = changeFile(tree, fmt.Sprintf("parts/p%04d.bin", 500+i)); err == nil {
				var out publishJSON
				var wall float64
				var cliRSS, srvRSS int64
				out, wall, cliRSS, err = cliPublish(bin, tree, "big", incr2APIAddr, data, cache)
				if err == nil {
					srvRSS, err = peakRSS(srv.Process.Pid)
				}
				if err == nil {
					fmt.Printf("%s: %.1f s, %d files hashed, %s sent; server peak RSS %s (%s after start), CLI peak RSS %s (target: both < 256 MB)\n",
						label, wall, out.Sent.Hashed, mb(float64(out.Sent.BytesSent)), mb(float64(srvRSS)), mb(float64(base)), mb(float64(cliRSS)))
					results[fmt.Sprintf("memory_republish%d_server_rss_bytes", i+1)] = srvRSS
					results[fmt.Sprintf("memory_republish%d_cli_rss_bytes", i+1)] = cliRSS
					results[fmt.Sprintf("memory_republish%d_s", i+1)] = wall
				}
			}
		}
		srv.Process.Kill()
		srv.Wait()
		if err != nil {
			return err
		}
	}
	return nil
}
