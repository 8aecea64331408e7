package main

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/ignore"
	"github.com/cairnhq/cairn/internal/release"
)

// A source snapshot (docs/design.md, "Sources, builds and rebuilds") is
// the tree of `publish --source DIR` packed by the static packer, through
// the publish filter and .gitignore as git reads it: the same tree gives the
// same sha256 on every machine.

// sourceOutput is what --json says of the snapshot.
type sourceOutput struct {
	SHA256     string         `json:"sha256"`
	SizeBytes  int64          `json:"size_bytes"`
	TreeSHA256 string         `json:"tree_sha256"`
	Files      int64          `json:"files"`
	Uploaded   bool           `json:"uploaded"` // false: the server had it
	Excluded   ignore.Summary `json:"excluded"`
	// Sent: what the incremental upload sent and reused (an existing
	// deployment); absent when the server had the snapshot or took it
	// whole.
	Sent *client.IncrementalStats `json:"sent,omitempty"`
}

// snapshot is a packed source tree in a temporary file; remove it.
type snapshot struct {
	path  string
	dir   string      // the tree
	rules *ignore.Set // what it leaves out
	sourceOutput
}

func (s *snapshot) remove() {
	if s != nil {
		os.Remove(s.path)
	}
}

// packSource packs dir into a temporary file, with progress. A tree that
// holds a data directory is refused, as publishes refuse it.
func packSource(ctx context.Context, dir string, progress func(int64)) (*snapshot, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("--source: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("--source: %s is not a directory", dir)
	}
	rules, err := ignore.Load(dir, ignore.Options{GitIgnore: true})
	if err != nil {
		return nil, fmt.Errorf("--source: %w", err)
	}
	f, err := os.CreateTemp("", "cairn-source-*.tar.zst")
	if err != nil {
		return nil, err
	}
	s := &snapshot{path: f.Name(), dir: dir, rules: rules}
	bw := bufio.NewWriterSize(f, 1<<20)
	res, err := release.PackDir(ctx, dir, bw, release.PackOptions{Progress: progress, Filter: rules})
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.remove()
		return nil, fmt.Errorf("packing the source %s: %w", dir, err)
	}
	s.sourceOutput = sourceOutput{SHA256: res.SHA256, SizeBytes: res.Size, TreeSHA256: res.TOC.TreeSHA256,
		Files: res.TOC.Manifest("").Files, Excluded: rules.Summary()}
	return s, nil
}

// snapshotSource is packSource with a progress bar on a terminal; dir ""
// is no snapshot (nil).
func (a *app) snapshotSource(ctx context.Context, dir string) (*snapshot, error) {
	if dir == "" {
		return nil, nil
	}
	total := int64(-1)
	if a.stderrTTY && !a.json {
		if rules, err := ignore.Load(dir, ignore.Options{GitIgnore: true}); err == nil {
			if t, err := client.ScanTree(dir, rules); err == nil {
				_, total = t.Size()
			}
		}
	}
	bar := a.progressBar(total, "packing the source")
	defer endBar(bar)
	return packSource(ctx, dir, barFunc(bar))
}

// sendSourceOf sends the snapshot of o, if any, to o.deployment.
func (a *app) sendSourceOf(ctx context.Context, c *client.Client, o publishOptions) error {
	if o.src == nil {
		return nil
	}
	return a.sendSource(ctx, c, o.deployment, o.src)
}

// sourceSHA256 is the sha256 of o's snapshot, or "".
func (o publishOptions) sourceSHA256() string {
	if o.src == nil {
		return ""
	}
	return o.src.SHA256
}

// sendSource uploads s as a snapshot of dep unless the server has it.
func (a *app) sendSource(ctx context.Context, c *client.Client, dep string, s *snapshot) error {
	_, err := c.GetSource(ctx, dep, s.SHA256)
	if err == nil {
		return nil
	}
	if !client.IsNotFound(err) {
		return fmt.Errorf("source snapshot %s: %w", shortSHA(s.SHA256), err)
	}
	// An existing deployment: the digest-first protocol sends only the
	// contents the server lacks, and the server assembles the snapshot,
	// which must come out as the one packed here. A deployment not created
	// yet (404), or a server without incremental publishes (405): the
	// whole snapshot.
	if tree, err := client.ScanTree(s.dir, s.rules); err == nil {
		total := int64(-1)
		if a.stderrTTY && !a.json {
			_, total = tree.Size()
		}
		bar := a.progressBar(total, "sending the source")
		rel, st, err := c.PublishSourceIncremental(ctx, dep, s.SHA256, tree, 4, barFunc(bar))
		endBar(bar)
		switch {
		case err == nil && rel.SHA256 != s.SHA256:
			return fmt.Errorf("the server assembled the source snapshot as %s, not %s", rel.SHA256, s.SHA256)
		case err == nil:
			s.Uploaded, s.Sent = true, st
			return nil
		case !client.IsNotFound(err) && client.StatusOf(err) != 405:
			return fmt.Errorf("sending the source snapshot: %w", err)
		}
	}
	f, err := os.Open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	bar := a.progressBar(s.SizeBytes, "uploading the source")
	body := &progressReader{r: f, progress: barFunc(bar)}
	rel, err := c.PutSource(ctx, dep, s.SHA256, body, s.SizeBytes)
	endBar(bar)
	if err != nil {
		return fmt.Errorf("uploading the source snapshot: %w", err)
	}
	if rel.SHA256 != "" && rel.SHA256 != s.SHA256 {
		return fmt.Errorf("the server stored the source snapshot as %s, not %s", rel.SHA256, s.SHA256)
	}
	s.Uploaded = true
	return nil
}

// progressReader reports the bytes read through it.
type progressReader struct {
	r        *os.File
	progress func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 && p.progress != nil {
		p.progress(int64(n))
	}
	return n, err
}

// sourceLine is the human summary of a snapshot.
func sourceLine(s *snapshot) string {
	how := "already stored"
	if s.Uploaded {
		how = "uploaded " + humanBytes(s.SizeBytes)
	}
	files := "files"
	if s.Files == 1 {
		files = "file"
	}
	line := fmt.Sprintf("source sha256 %s… (%d %s, %s)", shortSHA(s.SHA256), s.Files, files, how)
	if s.Excluded.Paths > 0 {
		line += "; " + s.Excluded.String()
	}
	return line
}
