package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release"
)

// errMismatch: a downloaded release is not what its records say.
var errMismatch = errors.New("verification failed")

func mismatchf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", errMismatch, fmt.Sprintf(format, a...))
}

func (a *app) verifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify DEPLOYMENT N",
		Short: "Download version N's release and check it against its records",
		Long: "Download the release of version N (streamed to a temporary file) and check\n" +
			"its size and sha256 against the version and release records. For static and\n" +
			"rootfs releases, also check the whole artifact: the table of contents, the\n" +
			"tree digest, every file's content hash, and that the TOC agrees with the\n" +
			"version's artifact_manifest. For oci releases the sha256 is the manifest digest.\n" +
			"Exits 2 when something does not match; a collected release answers 410.",
		Args:              exactArgs(2),
		ValidArgsFunction: a.completeDeployments,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || n < 1 {
				return fmt.Errorf("version number %q must be a positive integer", args[1])
			}
			rep, err := a.verifyVersion(cmd.Context(), args[0], n)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, rep)
			}
			w := a.stdout
			fmt.Fprintf(w, "%s v%d verified\n", args[0], n)
			fmt.Fprintf(w, "  release  sha256:%s  %s  %s\n", rep.SHA256, humanBytes(rep.SizeBytes), rep.Kind)
			if rep.Kind == meta.KindOCI {
				fmt.Fprintln(w, "  the bytes hash to the manifest digest")
				return nil
			}
			fmt.Fprintf(w, "  tree     sha256:%s\n", rep.TreeSHA256)
			fmt.Fprintf(w, "  files    %d (%s): TOC, tree digest and every file checked\n",
				rep.Files, humanBytes(rep.TotalBytes))
			return nil
		},
	}
}

// verifyReport is what verify checked; the --json output.
type verifyReport struct {
	Deployment    string `json:"deployment"`
	VersionID     string `json:"version_id"`
	VersionNumber int64  `json:"version_number"`
	Kind          string `json:"kind"`
	SHA256        string `json:"sha256"`
	SizeBytes     int64  `json:"size_bytes"`
	TreeSHA256    string `json:"tree_sha256,omitempty"`
	Files         int64  `json:"files,omitempty"`
	TotalBytes    int64  `json:"total_bytes,omitempty"`
}

func (a *app) verifyVersion(ctx context.Context, dep string, n int64) (*verifyReport, error) {
	c := a.client()
	v, err := c.GetVersion(ctx, dep, n)
	if err != nil {
		return nil, err
	}
	rel, err := c.GetRelease(ctx, v.ArtifactSHA256)
	if err != nil {
		return nil, err
	}
	gone := func() error {
		return fmt.Errorf("%s v%d was collected: its release sha256:%s is gone (410); the version keeps "+
			"its hashes: rebuild it from source sha256:%s and compare", dep, n, rel.SHA256, v.SourceSHA256)
	}
	if v.CollectedAt != nil || rel.CollectedAt != nil {
		return nil, gone()
	}
	f, err := os.CreateTemp("", "cairn-verify-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := sha256.New()
	var sink io.Writer = io.MultiWriter(f, h)
	bar := a.progressBar(rel.SizeBytes, "downloading")
	if bar != nil {
		sink = io.MultiWriter(f, h, bar)
	}
	size, err := c.DownloadArtifact(ctx, rel.SHA256, sink)
	endBar(bar)
	if client.StatusOf(err) == http.StatusGone {
		return nil, gone()
	}
	if err != nil {
		return nil, fmt.Errorf("downloading release sha256:%s: %w", rel.SHA256, err)
	}
	rep := &verifyReport{Deployment: dep, VersionID: v.ID, VersionNumber: v.VersionNumber,
		Kind: rel.Kind, SHA256: rel.SHA256, SizeBytes: size}
	if size != rel.SizeBytes {
		return nil, mismatchf("release sha256:%s: downloaded %d bytes, the record says %d", rel.SHA256, size, rel.SizeBytes)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != v.ArtifactSHA256 {
		return nil, mismatchf("release sha256:%s: the downloaded bytes hash to sha256:%s", rel.SHA256, got)
	}
	if rel.Kind == meta.KindOCI {
		return rep, nil
	}
	toc, err := release.Verify(ctx, f, size)
	if err != nil {
		return nil, fmt.Errorf("release sha256:%s: %w", rel.SHA256, err)
	}
	m := toc.Manifest(v.ArtifactManifest.Entrypoint)
	rep.TreeSHA256, rep.Files, rep.TotalBytes = toc.TreeSHA256, m.Files, m.TotalBytes
	if rel.TreeSHA256 != "" && toc.TreeSHA256 != rel.TreeSHA256 {
		return nil, mismatchf("release sha256:%s: the TOC's tree digest is sha256:%s, the record says sha256:%s",
			rel.SHA256, toc.TreeSHA256, rel.TreeSHA256)
	}
	if got := v.ArtifactManifest; m.Files != got.Files || m.TotalBytes != got.TotalBytes {
		return nil, mismatchf("release sha256:%s: the TOC holds %d files of %d bytes, the version's manifest says %d of %d",
			rel.SHA256, m.Files, m.TotalBytes, got.Files, got.TotalBytes)
	}
	return rep, nil
}
