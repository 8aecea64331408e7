package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/ignore"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release"
)

// publishFile publishes path, a release made by `cairn pack` (a tar.zst
// with cairn's TOC): it is verified here first (digest of every frame,
// the TOC, the tree), then uploaded as it is; the server unpacks it, packs
// it again and must come out with the same sha256 (?sha256=), else it
// refuses it and nothing is published.
func (a *app) publishFile(ctx context.Context, path string, o publishOptions) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	toc, err := release.Verify(ctx, f, fi.Size())
	if err != nil {
		return fmt.Errorf("%s is neither a directory nor a release made by cairn pack (%v)", path, err)
	}
	if o.entrypoint != "" {
		if e, ok := toc.Lookup(o.entrypoint); !ok || e.Type != release.TypeFile {
			return fmt.Errorf("--entrypoint: %q is not a file of %s", o.entrypoint, path)
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, fi.Size())); err != nil {
		return err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if o.src, err = a.snapshotSource(ctx, o.source); err != nil {
		return err
	}
	defer o.src.remove()
	c := a.client()
	dep, err := a.publishTarget(ctx, c, o, meta.KindStatic, "deployment %s is of kind %s; a cairn pack artifact is a static release")
	if err != nil {
		return err
	}
	if err := a.sendSourceOf(ctx, c, o); err != nil {
		return err
	}
	bar := a.progressBar(fi.Size(), "uploading")
	body := io.Reader(io.NewSectionReader(f, 0, fi.Size()))
	if bar != nil {
		body = io.TeeReader(body, bar)
	}
	v, err := c.PublishTar(ctx, o.deployment, body, client.PublishOptions{
		Entrypoint: o.entrypoint, Activate: !o.noActivate, Create: dep == nil, SHA256: sum, SourceSHA256: o.sourceSHA256()})
	endBar(bar)
	if err != nil {
		return err
	}
	if v.ArtifactSHA256 != sum { // the server checked it; a server without the check did not
		return fmt.Errorf("published as release %s, not %s (an older server?)", v.ArtifactSHA256, sum)
	}
	if err := a.printPublished(v, dep == nil, o, ignore.Summary{}, nil); err != nil {
		return err
	}
	if o.domain == "" {
		return nil
	}
	return a.attachDomain(ctx, c, o, v)
}

// isFile reports whether path names a regular file (not a directory).
func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
