package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/meta"
)

type publishOptions struct {
	deployment, domain, entrypoint string
	noActivate                     bool
}

func (a *app) publishCmd() *cobra.Command {
	var o publishOptions
	cmd := &cobra.Command{
		Use:   "publish DIR --deployment NAME",
		Short: "Upload DIR as a new version of a deployment and activate it",
		Long: "Upload DIR as a new version of deployment NAME (created, kind static, if\n" +
			"missing) and make it the active version unless --no-activate.\n" +
			"--domain HOST makes HOST serve the deployment: following its active version,\n" +
			"or pinned to the new version with --no-activate.\n" +
			"The printed edge URLs use CAIRN_BASE_DOMAIN and CAIRN_EDGE_ADDR if set.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.publish(cmd.Context(), args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.deployment, "deployment", "", "deployment name (required)")
	f.StringVar(&o.domain, "domain", "", "a hostname to serve the deployment at")
	f.StringVar(&o.entrypoint, "entrypoint", "", "file served at / (default index.html)")
	f.BoolVar(&o.noActivate, "no-activate", false, "publish without making the version active")
	_ = cmd.MarkFlagRequired("deployment")
	return cmd
}

func (a *app) publish(ctx context.Context, dir string, o publishOptions) error {
	if fi, err := os.Stat(dir); err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	c := a.client()
	if err := a.ensureDeployment(ctx, c, o.deployment); err != nil {
		return err
	}
	v, err := a.upload(ctx, c, dir, o)
	if err != nil {
		return err
	}
	if a.json {
		if err := printJSON(a.stdout, v); err != nil {
			return err
		}
	} else {
		m := v.ArtifactManifest
		files := "files"
		if m.Files == 1 {
			files = "file"
		}
		fmt.Fprintf(a.stdout, "published %s v%d (sha256 %s…, %d %s, %s)",
			o.deployment, v.VersionNumber, shortSHA(v.ArtifactSHA256), m.Files, files, humanBytes(m.TotalBytes))
		if v.URL != "" {
			fmt.Fprintf(a.stdout, " → %s", v.URL)
		}
		fmt.Fprintln(a.stdout)
		if v.PreviewURL != "" {
			fmt.Fprintf(a.stdout, "preview: %s\n", v.PreviewURL)
		}
	}
	if o.domain == "" {
		return nil
	}
	return a.attachDomain(ctx, c, o, v)
}

// ensureDeployment creates the deployment (kind static) if it is missing.
func (a *app) ensureDeployment(ctx context.Context, c *client.Client, name string) error {
	_, err := c.GetDeployment(ctx, name)
	if !client.IsNotFound(err) {
		return err
	}
	if _, err = c.CreateDeployment(ctx, name, meta.KindStatic, 0); client.IsConflict(err) {
		return nil // created meanwhile by someone else
	} else if err != nil {
		return fmt.Errorf("creating deployment %s: %w", name, err)
	}
	if !a.json {
		fmt.Fprintf(a.stdout, "created deployment %s (static)\n", name)
	}
	return nil
}

// upload streams a tar of dir into PublishTar through a pipe. A failed walk
// aborts the request; a failed request stops the walk.
func (a *app) upload(ctx context.Context, c *client.Client, dir string, o publishOptions) (*meta.Version, error) {
	total := int64(-1)
	if a.stderrTTY && !a.json {
		if _, n, err := client.TreeSize(dir); err == nil {
			total = n
		}
	}
	bar := a.progressBar(total, "uploading")
	defer endBar(bar)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	walkErr := make(chan error, 1)
	go func() {
		err := client.WriteTree(ctx, dir, pw, barFunc(bar))
		pw.CloseWithError(err) // nil closes with EOF
		if err != nil {
			cancel()
		} else if bar != nil {
			bar.Describe("processing") // the server packs and stores it now
		}
		walkErr <- err
	}()
	v, err := c.PublishTar(ctx, o.deployment, pr, o.entrypoint, !o.noActivate)
	pr.CloseWithError(errUploadEnded) // unblock the walk if the request ended early
	werr := <-walkErr
	if werr != nil && !errors.Is(werr, errUploadEnded) && !errors.Is(werr, io.ErrClosedPipe) &&
		!(errors.Is(werr, context.Canceled) && err != nil) {
		return nil, fmt.Errorf("reading %s: %w", dir, werr)
	}
	if err != nil {
		return nil, fmt.Errorf("publishing %s: %w", o.deployment, err)
	}
	return v, nil
}

var errUploadEnded = errors.New("upload ended")
