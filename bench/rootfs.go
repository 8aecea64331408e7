package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/release/unpack"
)

// debianTree is the debootstrap tree the rootfs tests cache.
const debianTree = "/var/cache/cairn-test/debootstrap-bookworm"

// rootfsBench packs a Debian root filesystem (debootstrap --variant=minbase
// --include=nginx-light bookworm, built once and cached) as a rootfs
// release against tar | zstd -3 -T0, and unpacks it with the verified
// unpacker against tar --zstd -xpf, alternating, median of 5. Runs as root.
func rootfsBench() error {
	if os.Getuid() != 0 {
		return fmt.Errorf("the rootfs benchmark runs as root (owners, devices)")
	}
	if err := ensure(map[string]string{"zstd": "zstd", "debootstrap": "debootstrap"}); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(debianTree, "usr/sbin/nginx")); err != nil {
		fmt.Println("building", debianTree, "with debootstrap")
		os.MkdirAll(filepath.Dir(debianTree), 0o755)
		if err := run("", "debootstrap", "--variant=minbase", "--include=nginx-light", "bookworm", debianTree+".tmp"); err != nil {
			return err
		}
		if err := os.Rename(debianTree+".tmp", debianTree); err != nil {
			return err
		}
	}
	work, err := workDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	in, files := dirSize(debianTree)
	fmt.Printf("tree %s: %s in %d files\n", debianTree, mb(float64(in)), files)
	ctx := context.Background()
	art, ref := filepath.Join(work, "c.tar.zst"), filepath.Join(work, "r.tar.zst")

	var tc, tr, cc, cr []float64
	var sizeC, sizeR int64
	for range 5 {
		t0, c0 := time.Now(), cpu(syscall.RUSAGE_SELF)
		f, err := os.Create(art)
		if err != nil {
			return err
		}
		res, err := release.PackRootfsDir(ctx, debianTree, f, release.RootfsOptions{ScratchDir: work})
		f.Close()
		if err != nil {
			return err
		}
		tc, cc = append(tc, time.Since(t0).Seconds()), append(cc, cpu(syscall.RUSAGE_SELF)-c0)
		sizeC = res.Size
		t0, c0 = time.Now(), cpu(syscall.RUSAGE_CHILDREN)
		if err := run("", "sh", "-c", fmt.Sprintf("tar -C %s --numeric-owner -cf - . | zstd -3 -T0 -q -f -o %s", debianTree, ref)); err != nil {
			return err
		}
		tr, cr = append(tr, time.Since(t0).Seconds()), append(cr, cpu(syscall.RUSAGE_CHILDREN)-c0)
		fi, _ := os.Stat(ref)
		sizeR = fi.Size()
	}
	pc, pr := median(tc), median(tr)
	pcc, pcr := median(cc), median(cr)
	fmt.Printf("\n== pack: rootfs release vs tar | zstd -3 -T0 (median of 5, alternating)\n")
	fmt.Printf("cairn %.2f s, tar|zstd %.2f s: time %.2f× (target ≤ 1.5×); size %s vs %s: %.3f× (target ≤ 1.10×)\n",
		pc, pr, pc/pr, mb(float64(sizeC)), mb(float64(sizeR)), float64(sizeC)/float64(sizeR))
	fmt.Printf("cpu time (user+sys): cairn %.2f s, tar|zstd %.2f s: %.2f× (wall times depend on the machine's load)\n", pcc, pcr, pcc/pcr)

	var uc, ux, ucc, uxc []float64
	for i := range 5 {
		d := filepath.Join(work, fmt.Sprint("u", i))
		os.Mkdir(d, 0o755)
		t0, c0 := time.Now(), cpu(syscall.RUSAGE_SELF)
		f, err := os.Open(art)
		if err != nil {
			return err
		}
		fi, _ := f.Stat()
		_, err = unpack.Unpack(ctx, f, fi.Size(), d, unpack.Options{AllowDevices: true})
		f.Close()
		if err != nil {
			return err
		}
		uc, ucc = append(uc, time.Since(t0).Seconds()), append(ucc, cpu(syscall.RUSAGE_SELF)-c0)
		os.RemoveAll(d)
		os.Mkdir(d, 0o755)
		t0, c0 = time.Now(), cpu(syscall.RUSAGE_CHILDREN)
		if out, err := exec.Command("tar", "--zstd", "-xpf", art, "-C", d).CombinedOutput(); err != nil {
			return fmt.Errorf("tar -x: %v\n%s", err, out)
		}
		ux, uxc = append(ux, time.Since(t0).Seconds()), append(uxc, cpu(syscall.RUSAGE_CHILDREN)-c0)
		os.RemoveAll(d)
	}
	mc, mx := median(uc), median(ux)
	fmt.Printf("\n== unpack: verified unpack vs tar --zstd -xpf of the same artifact (median of 5, alternating)\n")
	fmt.Printf("cairn %.2f s, tar %.2f s: time %.2f× (target ≤ 1.2×)\n", mc, mx, mc/mx)
	fmt.Printf("cpu time (user+sys): cairn %.2f s, tar %.2f s: %.2f×\n", median(ucc), median(uxc), median(ucc)/median(uxc))
	js, _ := json.MarshalIndent(map[string]any{
		"pack_s": pc, "tar_zstd_s": pr, "pack_time_ratio": pc / pr,
		"size_bytes": sizeC, "tar_zstd_bytes": sizeR, "size_ratio": float64(sizeC) / float64(sizeR),
		"unpack_s": mc, "tar_x_s": mx, "unpack_time_ratio": mc / mx,
		"pack_cpu_s": pcc, "tar_zstd_cpu_s": pcr, "unpack_cpu_s": median(ucc), "tar_x_cpu_s": median(uxc),
	}, "", "  ")
	fmt.Printf("\nresults (json):\n%s\n", js)
	return nil
}

// cpu is the user and system time of the process or its waited-for
// children so far, in seconds.
func cpu(who int) float64 {
	var ru syscall.Rusage
	syscall.Getrusage(who, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
