package server

import (
	"context"
	"io"

	"github.com/cairnhq/cairn/internal/release"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/cairnhq/cairn/internal/api"
	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/derive"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/registry"
)

// rootfsPacker packs derived rootfs releases: the rootfs format of
// internal/release, from the flattened image's tar stream.
func rootfsPacker(ctx context.Context, r io.Reader, w io.Writer, dir string) (*release.Result, error) {
	return release.PackRootfsTar(ctx, r, w, release.RootfsOptions{ScratchDir: dir})
}

// newDeriver builds the maker of derived artifacts, with its scratch space
// under the data dir (emptied at start).
func newDeriver(cfg Config, store meta.Full, blobs blob.Store, reg *registry.Registry, log *slog.Logger) (api.Derivations, error) {
	tmp := filepath.Join(cfg.DataDir, "derive")
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	dc := derive.Config{Meta: store, Blobs: blobs, Pack: rootfsPacker, TempDir: tmp, Log: log.With("role", "derive")}
	if reg != nil {
		dc.Images = reg
	}
	d, err := derive.New(dc)
	if err != nil {
		return nil, err
	}
	return d, nil
}
