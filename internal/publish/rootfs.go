package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release"
)

// publishRootfs packs an uploaded tar of a root filesystem (plain, gzip or
// zstd: a tar of a debootstrap tree, docker export, cairn publish DIR
// --kind rootfs) into a rootfs release (release.PackRootfsTar, which
// reads the stream while it holds a packing turn) and commits a version
// with its runtime settings.
func (p *Publisher) publishRootfs(ctx context.Context, dep *meta.Deployment, body io.Reader, o Options) (*meta.Version, error) {
	if o.Entrypoint != "" {
		return nil, badRuntime("a rootfs version's entrypoint is its cmd; entrypoint is not taken")
	}
	rt := o.Runtime
	if rt == nil {
		var err error
		if rt, err = ParseRuntime(nil); err != nil {
			return nil, err
		}
	}
	stage, err := os.MkdirTemp(p.StageDir, "upload-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(stage)
	src := sha256.New()
	in := io.TeeReader(body, src)
	res, drop, err := p.packWith(ctx, stage, func(ctx context.Context, w io.Writer) (*release.Result, error) {
		res, err := release.PackRootfsTar(ctx, in, w, release.RootfsOptions{Limits: p.Limits, ScratchDir: stage})
		if err != nil {
			return nil, err
		}
		if n, err := io.Copy(io.Discard, io.LimitReader(in, maxTrailing+1)); err != nil {
			return nil, fmt.Errorf("%w: reading the body: %v", release.ErrInvalid, err)
		} else if n > maxTrailing {
			return nil, fmt.Errorf("%w: data after the end of the archive", release.ErrInvalid)
		}
		return res, nil
	})
	if err != nil {
		return nil, err
	}
	defer drop()
	if o.SourceSHA256 == "" {
		o.SourceSHA256 = hex.EncodeToString(src.Sum(nil))
	}
	d := digest.NewDigestFromEncoded(digest.SHA256, res.SHA256)
	m := res.TOC.Manifest(strings.Join(rt.Cmd, " "))
	if len(rt.Cmd) == 0 {
		m.Entrypoint = ""
	}
	nv := meta.NewVersion{
		DeploymentID: dep.ID,
		SourceSHA256: o.SourceSHA256,
		Release: meta.Release{SHA256: res.SHA256, Kind: meta.KindRootfs, SizeBytes: res.Size,
			URI: blob.URIOf(p.Blobs, d), TreeSHA256: res.TOC.TreeSHA256},
		Manifest:       meta.Manifest{Files: m.Files, TotalBytes: m.TotalBytes, Entrypoint: m.Entrypoint},
		Runtime:        rt,
		Activate:       o.Activate,
		Actor:          o.Actor,
		SourceSnapshot: o.SourceSnapshot,
	}
	if o.Create { // created with its first version: a failed publish leaves nothing
		nv.NewDeployment = dep
	}
	return p.Meta.CreateVersion(ctx, nv)
}
