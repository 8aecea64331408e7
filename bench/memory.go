package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// memory publishes a generated 2 GB tree (one 1 GB file and 1000 files of
// 1 MB) and reports the peak RSS of the server and of the CLI; then it
// publishes a 128 MB tree six times at once to fresh servers with
// --max-packs 1, 2 (the default) and 6 (no waiting) and reports each
// server's peak RSS.
func memory() error {
	work, err := workDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin, err := buildCairn(work)
	if err != nil {
		return err
	}
	if err := bigPublish(bin, work); err != nil {
		return err
	}
	return concurrentPublishes(bin, work)
}

// bigPublish publishes the 2 GB tree.
func bigPublish(bin, work string) error {
	tree := filepath.Join(work, "tree")
	fmt.Println("generating a 2 GB tree in", tree)
	if err := genTree(tree); err != nil {
		return err
	}
	data := filepath.Join(work, "data")
	srv := exec.Command(bin, "server", "--data", data, "--api-addr", apiAddr, "--edge-addr", edgeAddr)
	srv.Stderr = io.Discard
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	if err := waitPort(apiAddr); err != nil {
		return err
	}
	t0 := time.Now()
	cli := exec.Command(bin, "publish", tree, "--deployment", "big", "--api", "http://"+apiAddr, "--data", data)
	cli.Stdout, cli.Stderr = os.Stdout, os.Stderr
	if err := cli.Run(); err != nil {
		return err
	}
	took := time.Since(t0)
	cliRSS := cli.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
	srvRSS, err := peakRSS(srv.Process.Pid)
	if err != nil {
		return err
	}
	fmt.Printf("\n== memory: publish of a 2 GB tree (one 1 GB file) in %.1f s\n", took.Seconds())
	fmt.Printf("server peak RSS %s, CLI peak RSS %s (target: both under 256 MB)\n", mb(float64(srvRSS)), mb(float64(cliRSS)))
	return nil
}

// concurrentPublishes publishes one 128 MB tree six times at once.
func concurrentPublishes(bin, work string) error {
	tree := filepath.Join(work, "tree128")
	if err := genFiles(tree, 128, 0); err != nil {
		return err
	}
	fmt.Printf("\n== memory: six concurrent publishes of a 128 MB tree (128 files of 1 MB)\n")
	for _, packs := range []string{"1", "2", "6"} {
		data := filepath.Join(work, "data-"+packs)
		srv := exec.Command(bin, "server", "--data", data, "--api-addr", apiAddr, "--edge-addr", edgeAddr, "--max-packs", packs)
		srv.Stderr = io.Discard
		if err := srv.Start(); err != nil {
			return err
		}
		stop := func() { srv.Process.Kill(); srv.Wait() }
		if err := waitPort(apiAddr); err != nil {
			stop()
			return err
		}
		t0 := time.Now()
		errs := make(chan error, 6)
		for i := range 6 {
			go func() {
				_, err := output("", bin, "publish", tree, "--deployment", fmt.Sprintf("c%d", i),
					"--api", "http://"+apiAddr, "--data", data)
				errs <- err
			}()
		}
		var err error
		for range 6 {
			err = errors.Join(err, <-errs)
		}
		took := time.Since(t0)
		rss, rerr := peakRSS(srv.Process.Pid)
		stop()
		if err = errors.Join(err, rerr); err != nil {
			return err
		}
		fmt.Printf("--max-packs %s: server peak RSS %s, all six published in %.1f s\n", packs, mb(float64(rss)), took.Seconds())
	}
	return nil
}

// peakRSS reads VmHWM of a process.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", pid)
}

// fill writes mildly compressible bytes, a function of seed, into block.
func fill(block []byte, seed int) {
	x := uint32(seed*2654435761 + 1)
	for i := range block {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		block[i] = "abcdefghijklmnop"[x&15]
	}
}

// genFiles writes n files of 1 MB (seeds from seed on) under dir/parts and
// an index.html.
func genFiles(dir string, n, seed int) error {
	if err := os.MkdirAll(filepath.Join(dir, "parts"), 0o755); err != nil {
		return err
	}
	block := make([]byte, 1<<20)
	for i := range n {
		fill(block, seed+i)
		if err := os.WriteFile(filepath.Join(dir, "parts", fmt.Sprintf("p%04d.bin", i)), block, 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>big</h1>"), 0o644)
}

// genTree writes 1 GB in one file and 1 GB in 1000 files, with mildly
// compressible content.
func genTree(dir string) error {
	if err := genFiles(dir, 1000, 10000); err != nil {
		return err
	}
	block := make([]byte, 1<<20)
	big, err := os.Create(filepath.Join(dir, "big.bin"))
	if err != nil {
		return err
	}
	for i := range 1024 {
		fill(block, i)
		if _, err := big.Write(block); err != nil {
			return err
		}
	}
	return big.Close()
}
