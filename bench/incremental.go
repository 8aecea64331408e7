package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/cairnhq/cairn/internal/client"
)

// incremental measures re-publishes of monaco-editor (issue 17) against a
// cold publish and a cold pack of the same tree, in one run, to one server:
//   - unchanged re-publish, digests cached: time, files hashed, same release;
//   - one 10 KB file changed (three times; medians): bytes sent vs (that file + the manifest, each
//     zstd-compressed), time vs the cold publish, server CPU vs cold pack CPU;
//   - one small file inserted first in path order: % of the artifact's
//     compressed bytes copied from the stored release (server metrics);
//   - through a 100 Mbit/s shaping proxy (shapedPublishes): a cold publish
//     and the one-file re-publish vs the raw tar upload;
//   - memory (memoryRepublish): the 2 GB tree of the memory bench
//     re-published with one file changed, server and CLI peak RSS.
//
// args name the parts to run (default all): local, shaped, memory.
func incremental(args []string) error {
	parts := map[string]bool{"local": len(args) == 0, "shaped": len(args) == 0, "memory": len(args) == 0}
	for _, a := range args {
		if _, ok := parts[a]; !ok {
			return fmt.Errorf("incremental: unknown part %q (local, shaped, memory)", a)
		}
		parts[a] = true
	}
	work, err := workDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin, err := buildCairn(work)
	if err != nil {
		return err
	}
	results := map[string]any{}
	if parts["local"] || parts["shaped"] {
		tree, err := monacoTree(work)
		if err != nil {
			return err
		}
		if parts["local"] {
			if err := incrementalLocal(bin, work, tree, results); err != nil {
				return err
			}
		}
		if parts["shaped"] {
			if err := shapedPublishes(bin, work, tree, results); err != nil {
				return err
			}
		}
	}
	if parts["memory"] {
		if err := memoryRepublish(bin, work, results); err != nil {
			return err
		}
	}
	js, _ := json.MarshalIndent(results, "", "  ")
	fmt.Printf("\nresults (json):\n%s\n", js)
	return nil
}

// monacoTree installs monaco-editor from npm and copies it to work/monaco.
func monacoTree(work string) (string, error) {
	if err := ensure(map[string]string{"npm": "npm"}); err != nil {
		return "", err
	}
	npm := filepath.Join(work, "npm")
	os.MkdirAll(npm, 0o755)
	if err := run(npm, "npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", npm, "monaco-editor"); err != nil {
		return "", err
	}
	tree := filepath.Join(work, "monaco")
	return tree, run("", "cp", "-a", filepath.Join(npm, "node_modules", "monaco-editor"), tree)
}

// incrementalLocal: the re-publishes to one local server, unshaped.
func incrementalLocal(bin, work, tree string, results map[string]any) error {
	in, files := dirSize(tree)
	fmt.Printf("monaco-editor: %d files, %s\n", files, mb(float64(in)))

	// The cold pack, run alone: its CPU time is the reference.
	pk := exec.Command(bin, "pack", tree, "-o", filepath.Join(work, "cold.tar.zst"))
	t0 := time.Now()
	if out, err := pk.CombinedOutput(); err != nil {
		return fmt.Errorf("cairn pack: %v: %s", err, out)
	}
	packWall := time.Since(t0).Seconds()
	ru := pk.ProcessState.SysUsage().(*syscall.Rusage)
	packCPU := float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9

	data := filepath.Join(work, "data")
	if c, err := net.Dial("tcp", incrAPIAddr); err == nil {
		c.Close()
		return fmt.Errorf("%s is taken (another bench?)", incrAPIAddr)
	}
	srv := exec.Command(bin, "server", "--data", data, "--api-addr", incrAPIAddr, "--edge-addr", incrEdgeAddr)
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if err := waitPort(incrAPIAddr); err != nil {
		return err
	}
	cache := filepath.Join(work, "cache")
	var cliCPU float64 // of the last publish
	publish := func() (out publishJSON, wall, srvCPU float64, err error) {
		c0, err := procCPU(srv.Process.Pid)
		if err != nil {
			return out, 0, 0, err
		}
		cmd := exec.Command(bin, "publish", tree, "--deployment", "monaco", "--api", "http://"+incrAPIAddr, "--data", data, "--json")
		cmd.Env = append(os.Environ(), "CAIRN_CACHE_DIR="+cache)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		t0 := time.Now()
		if err := cmd.Run(); err != nil {
			return out, 0, 0, fmt.Errorf("cairn publish: %v: %s", err, stderr.String())
		}
		wall = time.Since(t0).Seconds()
		ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cliCPU = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
		c1, err := procCPU(srv.Process.Pid)
		if err != nil {
			return out, 0, 0, err
		}
		return out, wall, c1 - c0, json.Unmarshal(stdout.Bytes(), &out)
	}

	cold, coldWall, coldCPU, err := publish()
	if err != nil {
		return err
	}
	fmt.Printf("\n== cold pack: %.2f s, %.2f s CPU; cold publish (tar upload): %.2f s, server CPU %.2f s\n", packWall, packCPU, coldWall, coldCPU)
	if cold.ArtifactSHA256 != packSHA(filepath.Join(work, "cold.tar.zst")) {
		return fmt.Errorf("the cold publish stored %s, not the cold pack's release", cold.ArtifactSHA256)
	}
	// First incremental publish: the cache is empty, every file is hashed.
	time.Sleep(client.RacyWindow) // the copy's ctimes are older than the window
	first, firstWall, _, err := publish()
	if err != nil {
		return err
	}
	fmt.Printf("unchanged re-publish, no digest cache: %.3f s, %d files hashed, same release: %v\n",
		firstWall, first.Sent.Hashed, first.ArtifactSHA256 == cold.ArtifactSHA256)
	var unchanged, unchangedSrv, unchangedCLI []float64
	var again publishJSON
	for range 5 {
		var wall, srvCPU float64
		if again, wall, srvCPU, err = publish(); err != nil {
			return err
		}
		unchanged, unchangedSrv, unchangedCLI = append(unchanged, wall), append(unchangedSrv, srvCPU), append(unchangedCLI, cliCPU)
		if again.Sent.Hashed != 0 || again.ArtifactSHA256 != cold.ArtifactSHA256 {
			return fmt.Errorf("unchanged re-publish hashed %d files, release %s", again.Sent.Hashed, again.ArtifactSHA256)
		}
	}
	fmt.Printf("unchanged re-publish, digests cached: median of 5 %.3f s (target < 0.300 s; CPU: CLI %.2f s, server %.2f s), %d files hashed, %d B sent, same release: true\n",
		median(unchanged), median(unchangedCLI), median(unchangedSrv), again.Sent.Hashed, again.Sent.BytesSent)

	// One 10 KB file changed, three times (the same file, changed again
	// each time): the figures of the last, the times and CPU the median.
	_, rel, size := pick([]site{{"monaco", "monaco-editor", tree}}, 10<<10)
	path := filepath.Join(tree, filepath.FromSlash(rel))
	var (
		one               publishJSON
		ref               int64
		m0, m1            [2]float64
		oneWalls, oneCPUs []float64
	)
	for range 3 {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		b = append(b, []byte(fmt.Sprintf("\n/* changed %d */\n", time.Now().UnixNano()))...)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
		if ref, err = referenceBytes(tree, b); err != nil {
			return err
		}
		if m0, err = reuseMetrics(); err != nil {
			return err
		}
		var wall, cpu float64
		if one, wall, cpu, err = publish(); err != nil {
			return err
		}
		if m1, err = reuseMetrics(); err != nil {
			return err
		}
		oneWalls, oneCPUs = append(oneWalls, wall), append(oneCPUs, cpu)
	}
	oneWall, oneCPU := median(oneWalls), median(oneCPUs)
	fmt.Printf("\n== one %d B file changed (%s), three times\n", size, rel)
	fmt.Printf("bytes sent %d vs compressed file + manifest %d: %.2f× (target ≤ 1.2×)\n", one.Sent.BytesSent, ref, float64(one.Sent.BytesSent)/float64(ref))
	fmt.Printf("end to end %.3f s (median; %.3f %.3f %.3f) vs cold publish %.2f s: %.3f× (target ≤ 0.15×)\n",
		oneWall, oneWalls[0], oneWalls[1], oneWalls[2], coldWall, oneWall/coldWall)
	fmt.Printf("server CPU %.2f s (median; %.2f %.2f %.2f) vs cold pack CPU %.2f s: %.3f× (target ≤ 0.10×)\n",
		oneCPU, oneCPUs[0], oneCPUs[1], oneCPUs[2], packCPU, oneCPU/packCPU)
	fmt.Printf("files hashed %d, %s of %s compressed bytes copied from the stored release\n",
		one.Sent.Hashed, mb(m1[0]-m0[0]), mb(m1[1]-m0[1]))

	// One small file inserted first in path order.
	if err := os.WriteFile(filepath.Join(tree, "0-inserted.txt"), []byte("inserted first in path order\n"), 0o644); err != nil {
		return err
	}
	ins, insWall, insCPU, err := publish()
	if err != nil {
		return err
	}
	m2, err := reuseMetrics()
	if err != nil {
		return err
	}
	reused := (m2[0] - m1[0]) / (m2[1] - m1[1])
	fmt.Printf("\n== one small file inserted first in path order\n")
	fmt.Printf("%.1f%% of the artifact's %s compressed bytes reused (target ≥ 90%%); %.3f s end to end, server CPU %.2f s, %d B sent\n",
		100*reused, mb(m2[1]-m1[1]), insWall, insCPU, ins.Sent.BytesSent)
	for k, v := range map[string]any{
		"pack_cpu_s": packCPU, "cold_publish_s": coldWall, "cold_publish_server_cpu_s": coldCPU,
		"unchanged_s": median(unchanged), "unchanged_files_hashed": again.Sent.Hashed,
		"unchanged_cli_cpu_s": median(unchangedCLI), "unchanged_server_cpu_s": median(unchangedSrv),
		"one_file_sent_bytes": one.Sent.BytesSent, "one_file_reference_bytes": ref,
		"one_file_sent_ratio": float64(one.Sent.BytesSent) / float64(ref),
		"one_file_s":          oneWall, "one_file_time_ratio": oneWall / coldWall,
		"one_file_server_cpu_s": oneCPU, "one_file_cpu_ratio": oneCPU / packCPU,
		"insert_reused_fraction": reused,
	} {
		results[k] = v
	}
	return nil
}

// The incremental bench's own ports: other benches may run at once.
const (
	incrAPIAddr  = "127.0.0.1:17910"
	incrEdgeAddr = "127.0.0.1:17990"
)

type publishJSON struct {
	ArtifactSHA256 string                  `json:"artifact_sha256"`
	Sent           client.IncrementalStats `json:"sent"`
}

// referenceBytes is the changed file and the tree's manifest, each
// zstd-compressed as the CLI compresses what it sends.
func referenceBytes(tree string, changed []byte) (int64, error) {
	t, err := client.ScanTree(tree, nil)
	if err != nil {
		return 0, err
	}
	entries, _, err := t.Manifest(context.Background())
	if err != nil {
		return 0, err
	}
	m, err := json.Marshal(map[string]any{"version": 1, "entries": entries})
	if err != nil {
		return 0, err
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	return int64(len(enc.EncodeAll(m, nil)) + len(enc.EncodeAll(changed, nil))), nil
}

// procCPU is the user and system CPU time of process pid so far, in
// seconds (/proc/PID/stat, clock ticks of 1/100 s).
func procCPU(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100, nil
}

// reuseMetrics reads the server's counters of compressed bytes copied from
// stored frames and of assembled release bytes.
func reuseMetrics() ([2]float64, error) {
	var out [2]float64
	resp, err := http.Get("http://" + incrAPIAddr + "/metrics")
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "cairn_publish_reused_bytes_total":
			out[0] = v
		case "cairn_publish_assembled_bytes_total":
			out[1] = v
		}
	}
	return out, sc.Err()
}

// packSHA is the sha256 `cairn pack` printed for a file: computed again.
func packSHA(path string) string {
	out, err := exec.Command("sha256sum", path).Output()
	if err != nil {
		return ""
	}
	return strings.Fields(string(out))[0]
}
