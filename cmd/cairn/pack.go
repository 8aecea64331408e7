package main

import (
	"bufio"
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/ignore"
	"github.com/cairnhq/cairn/internal/release"
)

func (a *app) packCmd() *cobra.Command {
	var out, entrypoint string
	var includeIgnored bool
	cmd := &cobra.Command{
		Use:   "pack DIR -o FILE",
		Short: "Build a release (tar.zst) of DIR locally and print its sha256 and manifest",
		Long: "Build a release of DIR locally, with the same bytes the server would store,\n" +
			"and print its sha256 and manifest. FILE is written whole or not at all.\n" +
			"The paths publish leaves out (.git/, .env, .env.*, .DS_Store, .cairnignore\n" +
			"and the .cairnignore's rules) are left out here too, unless --include-ignored;\n" +
			"a tree that contains a cairn data directory is refused.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.pack(cmd.Context(), args[0], out, entrypoint, includeIgnored)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "the release file to write (required)")
	cmd.Flags().StringVar(&entrypoint, "entrypoint", "", "file served at / (default index.html)")
	cmd.Flags().BoolVar(&includeIgnored, "include-ignored", false, "pack the paths the default rules and .cairnignore leave out (never a data directory)")
	_ = cmd.MarkFlagRequired("output")
	return cmd
}

// packOutput is what --json prints.
type packOutput struct {
	SHA256           string           `json:"sha256"`
	SizeBytes        int64            `json:"size_bytes"`
	TreeSHA256       string           `json:"tree_sha256"`
	ArtifactManifest release.Manifest `json:"artifact_manifest"`
	Excluded         ignore.Summary   `json:"excluded"`
}

func (a *app) pack(ctx context.Context, dir, out, entrypoint string, includeIgnored bool) error {
	if fi, err := os.Stat(dir); err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	rules, err := ignore.Load(dir, ignore.Options{IncludeIgnored: includeIgnored})
	if err != nil {
		return err
	}
	total := int64(-1)
	if a.stderrTTY && !a.json {
		if t, err := client.ScanTree(dir, rules); err == nil {
			_, total = t.Size()
		}
		rules, _ = ignore.Load(dir, ignore.Options{IncludeIgnored: includeIgnored}) // counts afresh
	}
	bar := a.progressBar(total, "packing")
	res, err := packFile(ctx, dir, out, release.PackOptions{Progress: barFunc(bar), Filter: rules})
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
		return printJSON(a.stdout, packOutput{res.SHA256, res.Size, res.TOC.TreeSHA256, m, rules.Summary()})
	}
	fmt.Fprintf(a.stdout, "sha256       %s\n", res.SHA256)
	fmt.Fprintf(a.stdout, "size_bytes   %d (%s)\n", res.Size, humanBytes(res.Size))
	fmt.Fprintf(a.stdout, "tree_sha256  %s\n", res.TOC.TreeSHA256)
	fmt.Fprintf(a.stdout, "files        %d\n", m.Files)
	fmt.Fprintf(a.stdout, "total_bytes  %d (%s)\n", m.TotalBytes, humanBytes(m.TotalBytes))
	fmt.Fprintf(a.stdout, "entrypoint   %s\n", m.Entrypoint)
	fmt.Fprintf(a.stdout, "excluded     %s\n", rules.Summary())
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
