package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/metrics"
	"github.com/cairnhq/cairn/internal/release"
	cruntime "github.com/cairnhq/cairn/internal/runtime"
	"github.com/cairnhq/cairn/internal/runtime/cache"
	"github.com/cairnhq/cairn/internal/runtime/netns"
	"github.com/cairnhq/cairn/internal/runtime/qemu"
	"github.com/cairnhq/cairn/internal/runtime/runc"
)

// microVMBench (go run ./bench instances --driver qemu-microvm) times
// "start requested" to the first HTTP answer of the static Go server on
// two Runtimes side by side, alternating: runc, and qemu-microvm (KVM
// where /dev/kvm exists, else TCG). p50 and p99 of each over --boots
// boots, warm cache. Runs as root with QEMU, mkfs.erofs, runc, the CNI
// plugins and the guest kernel (scripts/guest-kernel).
func microVMBench(args []string) error {
	fs := flag.NewFlagSet("instances", flag.ContinueOnError)
	driver := fs.String("driver", "qemu-microvm", "the microVM driver to compare with runc")
	boots := fs.Int("boots", 5, "boots of each driver")
	kernel := fs.String("kernel", "/var/cache/cairn/guest-kernel/vmlinux", "the guest kernel (scripts/guest-kernel)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *driver != "qemu-microvm" {
		return fmt.Errorf("--driver %q: want qemu-microvm", *driver)
	}
	if os.Getuid() != 0 {
		return fmt.Errorf("the instances benchmark runs as root")
	}
	ctx := context.Background()
	work, err := workDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	_, self, _, _ := runtime.Caller(0)
	repo := filepath.Dir(filepath.Dir(self))
	tree := filepath.Join(work, "tree")
	os.MkdirAll(tree, 0o755)
	for _, b := range [][2]string{{filepath.Join(tree, "probe"), "./internal/runtime/testdata/probe"}, {filepath.Join(work, "init"), "./cmd/cairn-guest-init"}} {
		build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", b[0], b[1])
		build.Dir, build.Env = repo, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", b[1], err, out)
		}
	}
	var art bytes.Buffer
	res, err := release.PackRootfsDir(ctx, tree, &art, release.RootfsOptions{})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(art.Bytes()))
	}))
	host := func(name, bridge, subnet string, d cruntime.Driver) (*cruntime.Runtime, error) {
		data := filepath.Join(work, name)
		c, err := cache.Open(filepath.Join(data, "cache"), &cache.HTTP{Base: "http://" + ln.Addr().String()}, cache.Options{Metrics: metrics.New()})
		if err != nil {
			return nil, err
		}
		nets, err := netns.New(netns.Config{Bridge: bridge, Subnet: subnet, Dir: filepath.Join(data, "net")})
		if err != nil {
			return nil, err
		}
		return cruntime.New(ctx, cruntime.Config{Dir: data, Cache: c, Net: nets, Driver: d})
	}
	rd, err := runc.New(filepath.Join(work, "runc-state"))
	if err != nil {
		return err
	}
	qd, err := qemu.New(qemu.Config{Kernel: *kernel, Init: filepath.Join(work, "init"), State: filepath.Join(work, "qemu-state")})
	if err != nil {
		return err
	}
	defer exec.Command("ip", "link", "del", "cairnb1").Run()
	defer exec.Command("ip", "link", "del", "cairnb2").Run()
	rr, err := host("runc", "cairnb1", "10.251.0.0/24", rd)
	if err != nil {
		return err
	}
	defer rr.Close()
	qr, err := host("qemu", "cairnb2", "10.252.0.0/24", qd)
	if err != nil {
		return err
	}
	defer qr.Close()
	start := func(rt *cruntime.Runtime, id string, within time.Duration) (time.Duration, error) {
		t0 := time.Now()
		o, err := rt.Start(ctx, hostapi.Desired{ID: id, Release: res.SHA256, TreeDigest: res.TOC.TreeSHA256,
			Cmd: []string{"/probe"}, Port: 8080, Limits: hostapi.Limits{CPU: 1, MemoryBytes: 256 << 20, Pids: 128}})
		if err != nil {
			return 0, err
		}
		err = firstAnswerWithin("http://"+o.Addr+"/", within)
		d := time.Since(t0)
		if err := rt.Stop(ctx, o.ID, 0); err != nil {
			return 0, err
		}
		rt.Settle()
		return d, err
	}
	// Warm both caches (and the page cache) first, untimed.
	if _, err := start(rr, "warm-runc", 10*time.Second); err != nil {
		return err
	}
	var rs, qs []time.Duration
	for i := 1; i <= *boots; i++ {
		r, err := start(rr, fmt.Sprintf("runc-%d", i), 10*time.Second)
		if err != nil {
			return err
		}
		q, err := start(qr, fmt.Sprintf("vm-%d", i), 3*time.Minute)
		if err != nil {
			return err
		}
		rs, qs = append(rs, r), append(qs, q)
		fmt.Fprintf(os.Stderr, "boot %d: runc %s, qemu-microvm %s\n", i, ms(r), ms(q))
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("boot to first healthy answer, %d boots each, alternating, warm cache (static Go server); load average %s", *boots, load)
	fmt.Printf("  %-34s p50 %9s  p99 %9s\n", "runc", ms(pct(rs, 50)), ms(pct(rs, 99)))
	fmt.Printf("  %-34s p50 %9s  p99 %9s\n", "qemu-microvm ("+qd.Accel()+")", ms(pct(qs, 50)), ms(pct(qs, 99)))
	fmt.Printf("  ratio qemu-microvm/runc: p50 %.1fx  p99 %.1fx\n", float64(pct(qs, 50))/float64(pct(rs, 50)), float64(pct(qs, 99))/float64(pct(rs, 99)))
	return nil
}
