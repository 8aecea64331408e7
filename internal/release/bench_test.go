package release

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkPackDir packs the tree named by CAIRN_BENCH_DIR.
func BenchmarkPackDir(b *testing.B) {
	dir := os.Getenv("CAIRN_BENCH_DIR")
	if dir == "" {
		b.Skip("set CAIRN_BENCH_DIR to a directory to pack")
	}
	for b.Loop() {
		if _, err := PackDir(context.Background(), dir, io.Discard, PackOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPackRootfsDir packs the root filesystem named by
// CAIRN_BENCH_ROOTFS (as root), as go run ./bench rootfs does; with
// -trace it shows when the cores idle.
func BenchmarkPackRootfsDir(b *testing.B) {
	dir := os.Getenv("CAIRN_BENCH_ROOTFS")
	if dir == "" {
		b.Skip("set CAIRN_BENCH_ROOTFS to a root filesystem to pack")
	}
	art := filepath.Join(b.TempDir(), "art")
	for b.Loop() {
		f, err := os.Create(art)
		if err != nil {
			b.Fatal(err)
		}
		_, err = PackRootfsDir(context.Background(), dir, f, RootfsOptions{})
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
}
