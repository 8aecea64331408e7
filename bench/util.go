package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// workDir is a temporary directory for one bench run.
func workDir() (string, error) { return os.MkdirTemp("", "cairn-bench-") }

// ensure installs Debian packages whose commands are missing.
func ensure(cmds map[string]string) error {
	var pkgs []string
	for cmd, pkg := range cmds {
		if _, err := exec.LookPath(cmd); err != nil {
			if _, err := os.Stat("/usr/sbin/" + cmd); err != nil {
				pkgs = append(pkgs, pkg)
			}
		}
	}
	if len(pkgs) == 0 {
		return nil
	}
	fmt.Println("installing", strings.Join(pkgs, " "), "with apt-get")
	if err := run("", "apt-get", "update", "-qq"); err != nil {
		return err
	}
	return run("", "apt-get", append([]string{"install", "-y", "-qq"}, pkgs...)...)
}

func run(dir, name string, args ...string) error {
	c := exec.Command(name, args...)
	c.Dir = dir
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

func output(dir, name string, args ...string) (string, error) {
	c := exec.Command(name, args...)
	c.Dir = dir
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

// repoDir is the repository's root directory.
func repoDir() string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(self))
}

// buildCairn builds the CLI binary into dir.
func buildCairn(dir string) (string, error) {
	bin := filepath.Join(dir, "cairn")
	c := exec.Command("go", "build", "-o", bin, "./cmd/cairn")
	c.Dir = repoDir()
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	return bin, c.Run()
}

func waitPort(addr string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s", addr)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// dirSize sums regular file sizes under dir.
func dirSize(dir string) (n int64, files int) {
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			n += info.Size()
			files++
		}
		return nil
	})
	return
}

func mb(n float64) string { return fmt.Sprintf("%.1f MB", n/1e6) }

// benchToken is the --token of the servers the benchmarks start (the
// server wants at least 32 characters).
const benchToken = "bench-admin-token-0123456789abcdef"
