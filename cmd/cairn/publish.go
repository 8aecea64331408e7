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
	kind                           string
	rt                             runtimeFlags
}

func (a *app) publishCmd() *cobra.Command {
	var o publishOptions
	cmd := &cobra.Command{
		Use:   "publish DIR|ROOTFS.tar --deployment NAME [--kind rootfs]",
		Short: "Upload DIR as a new version of a deployment and activate it",
		Long: "Upload DIR as a new version of deployment NAME (created, kind static, if\n" +
			"missing) and make it the active version unless --no-activate.\n" +
			"--domain HOST makes HOST serve the deployment: following its active version,\n" +
			"or pinned to the new version with --no-activate.\n" +
			"The printed edge URLs use CAIRN_BASE_DOMAIN and CAIRN_EDGE_ADDR if set.\n\n" +
			"--kind rootfs publishes a Linux root filesystem: DIR (run as root to read\n" +
			"every file, owner, device and xattr) or a tar stream file (plain, gzip or\n" +
			"zstd, such as a tar of a debootstrap tree or docker export output), with\n" +
			"its runtime settings: --cmd, --env K=V, --port, --user, --workdir,\n" +
			"--health-path (--health-interval, --health-timeout).",
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
	f.StringVar(&o.kind, "kind", meta.KindStatic, "release kind: static or rootfs")
	o.rt.register(f)
	_ = cmd.MarkFlagRequired("deployment")
	return cmd
}

func (a *app) publish(ctx context.Context, dir string, o publishOptions) error {
	if o.kind != meta.KindStatic && o.kind != meta.KindRootfs {
		return fmt.Errorf("--kind %q: want static or rootfs", o.kind)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if o.kind == meta.KindStatic {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		if o.rt.set() {
			return errors.New("--cmd, --env, --port, --user, --workdir and --health-* need --kind rootfs")
		}
	}
	rt, err := o.rt.runtime()
	if err != nil {
		return err
	}
	c := a.client()
	if err := a.ensureDeployment(ctx, c, o.deployment, o.kind); err != nil {
		return err
	}
	var v *meta.Version
	if o.kind == meta.KindRootfs {
		v, err = a.uploadRootfs(ctx, c, dir, fi.IsDir(), rt, o)
	} else {
		v, err = a.upload(ctx, c, dir, o)
	}
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

// ensureDeployment creates the deployment (of kind) if it is missing; an
// existing one must have that kind.
func (a *app) ensureDeployment(ctx context.Context, c *client.Client, name, kind string) error {
	d, err := c.GetDeployment(ctx, name)
	if err == nil && d.Kind != kind {
		return fmt.Errorf("deployment %s has kind %s, not %s", name, d.Kind, kind)
	}
	if !client.IsNotFound(err) {
		return err
	}
	if _, err = c.CreateDeployment(ctx, name, kind, 0); client.IsConflict(err) {
		return nil // created meanwhile by someone else
	} else if err != nil {
		return fmt.Errorf("creating deployment %s: %w", name, err)
	}
	if !a.json {
		fmt.Fprintf(a.stdout, "created deployment %s (%s)\n", name, kind)
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
