package release

import (
	"context"
	"io"
	"os"
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
