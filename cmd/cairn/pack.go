package main

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/release"
)

func (a *app) packCmd() *cobra.Command {
	var out, entrypoint string
	cmd := &cobra.Command{
		Use:   "pack DIR -o FILE",
		Short: "Build a release (tar.zst) of DIR locally and print its sha256 and manifest",
		Long: "Build a release of DIR locally, with the same bytes the server would store,\n" +
			"and print its sha256 and manifest. FILE is written whole or not at all.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.pack(cmd.Context(), args[0], out, entrypoint)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the release file to write (required)")
	cmd.Flags().StringVar(&entrypoint, "entrypoint", "", "file served at / (default index.html)")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

// packOutput is what --json prints.
type packOutput struct {
	SHA256           string           `json:"sha256"`
	SizeBytes        int64            `json:"size_bytes"`
	TreeSHA256       string           `json:"tree_sha256"`
	ArtifactManifest release.Manifest `json:"artifact_manifest"`
}

func (a *app) pack(ctx context.Context, dir, out, entrypoint string) error {
	if fi, err := os.Stat(dir); err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	total := int64(-1)
	if a.stderrTTY && !a.json {
		if _, n, err := client.TreeSize(dir); err == nil {
			total = n
		}
	}
	bar := a.progressBar(total, "packing")
	res, err := packFile(ctx, dir, out, release.PackOptions{Progress: barFunc(bar)})
	endBar(bar)
	if err != nil {
		return err
	}
	m := res.TOC.Manifest(entrypoint)
	if entrypoint != "" {
		if e, ok := res.TOC.Lookup(entrypoint); !ok || e.Type != release.TypeFile {
			fmt.Fprintf(a.stderr, "cairn: warning: entrypoint %q is not a file in %s\n", entrypoint, dir)
		}
	}
	if a.json {
		return printJSON(a.stdout, packOutput{res.SHA256, res.Size, res.TOC.TreeSHA256, m})
	}
	fmt.Fprintf(a.stdout, "sha256       %s\n", res.SHA256)
	fmt.Fprintf(a.stdout, "size_bytes   %d (%s)\n", res.Size, humanBytes(res.Size))
	fmt.Fprintf(a.stdout, "tree_sha256  %s\n", res.TOC.TreeSHA256)
	fmt.Fprintf(a.stdout, "files        %d\n", m.Files)
	fmt.Fprintf(a.stdout, "total_bytes  %d (%s)\n", m.TotalBytes, humanBytes(m.TotalBytes))
	fmt.Fprintf(a.stdout, "entrypoint   %s\n", m.Entrypoint)
	return nil
}

// packFile packs dir into out.tmp and renames it to out; on any error
// nothing is left behind.
func packFile(ctx context.Context, dir, out string, opts release.PackOptions) (res *release.Result, err error) {
	tmp := out + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if res, err = release.PackDir(ctx, dir, bw, opts); err != nil {
		return nil, fmt.Errorf("packing %s: %w", dir, err)
	}
	if err = bw.Flush(); err != nil {
		return nil, err
	}
	if err = f.Sync(); err != nil {
		return nil, err
	}
	if err = f.Close(); err != nil {
		return nil, err
	}
	if err = os.Rename(tmp, out); err != nil {
		return nil, err
	}
	return res, nil
}
