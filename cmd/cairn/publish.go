package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/ignore"
	"github.com/cairnhq/cairn/internal/meta"
)

type publishOptions struct {
	deployment, domain, entrypoint string
	noActivate, includeIgnored     bool
	noCache                        bool
	kind                           string
	rt                             runtimeFlags
	source                         string // --source DIR
	src                            *snapshot
	b                              buildFlags
}

func (a *app) publishCmd() *cobra.Command {
	var o publishOptions
	cmd := &cobra.Command{
		Use:   "publish DIR|FILE --deployment NAME [--kind rootfs] [--source SRC [--build CMD --builder REF]]",
		Short: "Upload DIR as a new version of a deployment and activate it",
		Long: "Upload DIR as a new version of deployment NAME (created, kind static, if\n" +
			"missing, together with its first version) and make it the active version\n" +
			"unless --no-activate.\n" +
			"--domain HOST makes HOST serve the deployment: following its active version,\n" +
			"or pinned to the new version with --no-activate.\n" +
			"Left out: .git/, .env, .env.*, .DS_Store, .cairnignore and what the tree's\n" +
			".cairnignore (gitignore syntax) lists; --include-ignored keeps them. A tree\n" +
			"that contains a cairn data directory is refused.\n" +
			"FILE.tar.zst, a release made by cairn pack, is verified, uploaded as it is\n" +
			"and must come out on the server as the same release (sha256).\n" +
			"Everything is checked before anything changes: on a non-zero exit nothing\n" +
			"was published.\n\n" +
			"--kind rootfs publishes a Linux root filesystem: DIR (run as root to read\n" +
			"every file, owner, device and xattr) or a tar stream file (plain, gzip or\n" +
			"zstd, such as a tar of a debootstrap tree or docker export output), with\n" +
			"its runtime settings: --cmd, --env K=V, --port, --user, --workdir,\n" +
			"--health-path (--health-interval, --health-timeout).\n\n" +
			"--source SRC also uploads a snapshot of the source tree SRC (packed as a\n" +
			"release, without what the publish rules and SRC's .gitignore files and\n" +
			".git/info/exclude leave out; sent only if the server lacks it), recorded\n" +
			"with the version.\n" +
			"--build CMD (no DIR then) has the platform build the release from the\n" +
			"snapshot: CMD runs in SRC's copy, without network, on an agent, inside\n" +
			"--builder (a rootfs version NAME:N or sha256:HEX with the tools), and\n" +
			"the --output directory is the release. The CLI waits for the build and\n" +
			"shows its state; Ctrl-C stops waiting, not the build.",
		Args: func(cmd *cobra.Command, args []string) error {
			if o.b.command != "" {
				if len(args) > 0 {
					return fmt.Errorf("--build publishes the build's --output directory: give no DIR (%s); the source is --source", args[0])
				}
				return nil
			}
			return exactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.b.command != "" {
				return a.publishBuild(cmd.Context(), o)
			}
			if err := o.b.unused(cmd); err != nil {
				return err
			}
			return a.publish(cmd.Context(), args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.deployment, "deployment", "", "deployment name (required)")
	f.StringVar(&o.domain, "domain", "", "a hostname to serve the deployment at")
	f.StringVar(&o.entrypoint, "entrypoint", "", "file served at / (default index.html)")
	f.BoolVar(&o.noActivate, "no-activate", false, "publish without making the version active")
	f.BoolVar(&o.includeIgnored, "include-ignored", false, "publish the paths the default rules and .cairnignore leave out (never a data directory)")
	f.StringVar(&o.kind, "kind", meta.KindStatic, "release kind: static or rootfs")
	f.BoolVar(&o.noCache, "no-cache", false, "hash every file, not trusting the local cache of digests ($CAIRN_CACHE_DIR, ~/.cache/cairn)")
	o.rt.register(f)
	f.StringVar(&o.source, "source", "", "also upload a snapshot of the source tree SRC and record it with the version")
	o.b.register(f)
	_ = cmd.MarkFlagRequired("deployment")
	_ = cmd.RegisterFlagCompletionFunc("deployment", a.completeDeploymentFlag)
	return cmd
}

// publishOutput is what --json prints: the Version record and what the
// ignore rules left out.
type publishOutput struct {
	*meta.Version
	Excluded ignore.Summary `json:"excluded"`
	// Sent: an incremental publish's files, new contents, bytes sent and
	// bytes reused.
	Sent *client.IncrementalStats `json:"sent,omitempty"`
	// Source: the snapshot of --source.
	Source *sourceOutput `json:"source,omitempty"`
}

// publishIncremental publishes tree to the existing deployment by the
// digest-first protocol, with progress. The digests of files unchanged
// since a publish of dir come from the local cache (client.HashCache)
// unless --no-cache; the cache is best-effort: one that cannot be read or
// written costs only the hashing.
func (a *app) publishIncremental(ctx context.Context, c *client.Client, dir string, tree *client.Tree, o publishOptions) (*meta.Version, *client.IncrementalStats, error) {
	if !o.noCache {
		if cdir, err := client.CacheDir(a.getenv); err == nil {
			if hc, err := client.OpenHashCache(cdir, dir); err == nil {
				tree.Cache = hc
				defer hc.Save()
			}
		}
	}
	total := int64(-1)
	if a.stderrTTY && !a.json {
		_, total = tree.Size()
	}
	bar := a.progressBar(total, "sending")
	defer endBar(bar)
	return c.PublishIncremental(ctx, o.deployment, tree, client.PublishOptions{
		Entrypoint: o.entrypoint, Activate: !o.noActivate, SourceSHA256: o.sourceSHA256()}, 4, barFunc(bar))
}

func (a *app) publish(ctx context.Context, dir string, o publishOptions) error {
	switch {
	case o.source != "" && o.kind != meta.KindStatic:
		return fmt.Errorf("--source: only a static release records its source (not --kind %s)", o.kind)
	case o.kind == meta.KindRootfs:
		return a.publishRootfs(ctx, dir, o)
	case o.kind != meta.KindStatic:
		return fmt.Errorf("--kind %q: want static or rootfs", o.kind)
	case o.rt.set():
		return errors.New("--cmd, --env, --port, --user, --workdir and --health-* need --kind rootfs")
	case isFile(dir):
		return a.publishFile(ctx, dir, o)
	}
	tree, rules, err := scanForUpload(dir, o.includeIgnored)
	if err != nil {
		return err
	}
	if err := tree.Check(o.entrypoint); err != nil {
		if sum := rules.Summary(); sum.Paths > 0 {
			return fmt.Errorf("%w; %s (--include-ignored keeps them)", err, sum)
		}
		return err
	}
	if o.src, err = a.snapshotSource(ctx, o.source); err != nil {
		return err
	}
	defer o.src.remove()
	c := a.client()
	dep, err := a.publishTarget(ctx, c, o, meta.KindStatic, "deployment %s is of kind %s; a directory publishes a static release")
	if err != nil {
		return err
	}
	if err := a.sendSourceOf(ctx, c, o); err != nil {
		return err
	}
	var (
		v  *meta.Version
		st *client.IncrementalStats
	)
	if dep != nil {
		// An existing deployment: send the manifest, then only what the
		// server lacks. A server without incremental publishes answers
		// 404 or 405: the tar upload then.
		v, st, err = a.publishIncremental(ctx, c, dir, tree, o)
		if err != nil && !client.IsNotFound(err) && client.StatusOf(err) != 405 {
			return fmt.Errorf("publishing %s: %w", o.deployment, err)
		}
	}
	if v == nil {
		if v, err = a.upload(ctx, c, tree, o, dep == nil); err != nil {
			return err
		}
	}
	if err := a.printPublished(v, dep == nil, o, rules.Summary(), st); err != nil {
		return err
	}
	if o.domain == "" {
		return nil
	}
	return a.attachDomain(ctx, c, o, v)
}

// scanForUpload reads dir's ignore rules and lists what is sent. A data
// directory anywhere in the tree is an error.
func scanForUpload(dir string, includeIgnored bool) (*client.Tree, *ignore.Set, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, nil, err
	} else if !fi.IsDir() {
		return nil, nil, fmt.Errorf("%s is not a directory", dir)
	}
	rules, err := ignore.Load(dir, ignore.Options{IncludeIgnored: includeIgnored})
	if err != nil {
		return nil, nil, err
	}
	tree, err := client.ScanTree(dir, rules)
	if err != nil {
		return nil, nil, err
	}
	return tree, rules, nil
}

// checkDomainFree fails when host (valid, lower case) serves a deployment
// other than dep (nil: one not created yet), before anything is published.
func checkDomainFree(ctx context.Context, c *client.Client, host string, dep *meta.Deployment) error {
	cur, err := c.GetDomain(ctx, host)
	if client.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("domain %s: %w; nothing was published", host, err)
	}
	if dep == nil || cur.DeploymentID != dep.ID {
		return fmt.Errorf("domain %s already serves another deployment (%s); nothing was published", host, cur.DeploymentID)
	}
	return nil
}

// upload streams a tar of tree into PublishTar through a pipe. A failed
// walk aborts the request; a failed request stops the walk.
func (a *app) upload(ctx context.Context, c *client.Client, tree *client.Tree, o publishOptions, create bool) (*meta.Version, error) {
	total := int64(-1)
	if a.stderrTTY && !a.json {
		_, total = tree.Size()
	}
	bar := a.progressBar(total, "uploading")
	defer endBar(bar)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	walkErr := make(chan error, 1)
	go func() {
		err := tree.Write(ctx, pw, barFunc(bar))
		pw.CloseWithError(err) // nil closes with EOF
		if err != nil {
			cancel()
		} else if bar != nil {
			bar.Describe("processing") // the server packs and stores it now
		}
		walkErr <- err
	}()
	v, err := c.PublishTar(ctx, o.deployment, pr, client.PublishOptions{
		Entrypoint: o.entrypoint, Activate: !o.noActivate, Create: create, SourceSHA256: o.sourceSHA256(),
	})
	pr.CloseWithError(errUploadEnded) // unblock the walk if the request ended early
	werr := <-walkErr
	if werr != nil && !errors.Is(werr, errUploadEnded) && !errors.Is(werr, io.ErrClosedPipe) &&
		!(errors.Is(werr, context.Canceled) && err != nil) {
		return nil, fmt.Errorf("reading the tree: %w", werr)
	}
	if err != nil {
		return nil, fmt.Errorf("publishing %s: %w", o.deployment, err)
	}
	return v, nil
}

var errUploadEnded = errors.New("upload ended")

// printPublished prints the published version: the Version record (and
// what the ignore rules left out) with --json, else a summary with its
// URLs; warnings go to stderr either way.
func (a *app) printPublished(v *meta.Version, created bool, o publishOptions, sum ignore.Summary, st *client.IncrementalStats) error {
	if a.json {
		var src *sourceOutput
		if o.src != nil {
			src = &o.src.sourceOutput
		}
		if err := printJSON(a.stdout, publishOutput{v, sum, st, src}); err != nil {
			return err
		}
	} else {
		if created {
			kind := o.kind
			if kind == "" {
				kind = meta.KindStatic
			}
			fmt.Fprintf(a.stdout, "created deployment %s (%s)\n", o.deployment, kind)
		}
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
		if st != nil {
			fmt.Fprintf(a.stdout, "%d files, %d new, %s sent, %s reused\n", st.Files, st.New, humanBytes(st.BytesSent), humanBytes(st.Reused))
		}
		if sum.Paths > 0 {
			fmt.Fprintf(a.stdout, "%s\n", sum)
		}
		if o.src != nil {
			fmt.Fprintln(a.stdout, sourceLine(o.src))
		}
	}
	for _, w := range v.Warnings {
		fmt.Fprintf(a.stderr, "cairn: warning: %s\n", w)
	}
	return nil
}

// publishTarget checks, before anything is sent, that o.deployment is of
// kind (or missing: nil, created with its first version; wrongKind formats
// the error from its name and kind) and that o.domain serves no other
// deployment.
func (a *app) publishTarget(ctx context.Context, c *client.Client, o publishOptions, kind, wrongKind string) (*meta.Deployment, error) {
	dep, err := c.GetDeployment(ctx, o.deployment)
	switch {
	case client.IsNotFound(err):
		dep = nil
	case err != nil:
		return nil, fmt.Errorf("publishing %s: %w", o.deployment, err)
	case dep.Kind != kind:
		return nil, fmt.Errorf(wrongKind, o.deployment, dep.Kind)
	}
	if o.domain != "" {
		if err := checkDomainFree(ctx, c, strings.ToLower(o.domain), dep); err != nil {
			return nil, err
		}
	}
	return dep, nil
}
