package publish

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/cairnhq/cairn/internal/release"
)

// BenchmarkAssembleOneFile profiles the server side of a re-publish with
// one file changed (issue 17) on the tree at $CAIRN_BENCH_TREE (e.g. the
// monaco-editor npm package): the tree published once by a tar upload,
// then each iteration appends to its largest file under 64 KiB and
// publishes it incrementally (StartIncrementalTo, PutContent, Assemble).
//
//	CAIRN_BENCH_TREE=/path/to/tree go test ./internal/publish -run '^$' -bench AssembleOneFile -cpuprofile cpu.out
func BenchmarkAssembleOneFile(b *testing.B) {
	src := os.Getenv("CAIRN_BENCH_TREE")
	if src == "" {
		b.Skip("CAIRN_BENCH_TREE is not set")
	}
	dir := b.TempDir()
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		b.Fatal(err)
	}
	var changed string
	var best int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() < 64<<10 && fi.Size() > best {
			changed, best = p, fi.Size()
		}
		return nil
	})
	p, dep := newPublisher(b, 2)
	p.Limits = release.Limits{MaxFiles: 100000, MaxBytes: 1 << 32}
	if _, err := p.Publish(b.Context(), dep, bytes.NewReader(tarOf(b, dir)), Options{Actor: "bench", Activate: true}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		content, _ := os.ReadFile(changed)
		content = append(content, byte('a'+i%26))
		os.WriteFile(changed, content, 0o644)
		m := manifestOf(b, dir)
		dep, _ = p.Meta.GetDeployment(b.Context(), dep.ID)
		b.StartTimer()
		inc, err := p.StartIncrementalTo(b.Context(), dep, m)
		if err != nil {
			b.Fatal(err)
		}
		for _, sha := range inc.Missing {
			if err := inc.PutContent(b.Context(), sha, bytes.NewReader(content)); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := p.Assemble(b.Context(), dep, inc, Options{Actor: "bench", Activate: true}); err != nil {
			b.Fatal(err)
		}
		inc.Close()
	}
}
