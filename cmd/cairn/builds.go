package main

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/meta"
)

// buildsCmd is `cairn builds NAME`.
func (a *app) buildsCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "builds NAME",
		Short:             "List a deployment's builds, rebuilds and restores, newest first",
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeDeployments,
		RunE: func(cmd *cobra.Command, args []string) error {
			bs, err := a.client().ListBuilds(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, bs)
			}
			if len(bs) == 0 {
				_, err := fmt.Fprintf(a.stdout, "no builds of %s yet: cairn publish --source DIR --build CMD --builder NAME:N --deployment %s\n", args[0], args[0])
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tSTATE\tVERSION\tHOST\tDURATION\tEXIT\tCREATED")
			for _, b := range bs {
				ver, dur, exit := "-", "-", "-"
				if b.VersionNumber > 0 {
					ver = "v" + strconv.FormatInt(b.VersionNumber, 10)
				}
				if b.FinishedAt != nil {
					dur = msDuration(b.DurationMS)
				}
				if b.ExitCode != nil {
					exit = strconv.Itoa(*b.ExitCode)
				}
				state := b.State
				if b.Verdict != "" {
					state += " (" + b.Verdict + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.ID, b.Kind, state, ver, dash(b.Host), dur, exit, formatTime(b.CreatedAt))
			}
			return tw.Flush()
		},
	}
}

// rebuildCmd is `cairn rebuild NAME N [--host ID]`.
func (a *app) rebuildCmd() *cobra.Command {
	var host string
	cmd := &cobra.Command{
		Use:   "rebuild NAME N [--host ID]",
		Short: "Run a version's recorded build again and check that it gives the same release",
		Long: "Run the build that made version N again, from the recorded source snapshot,\n" +
			"builder, command, env and SOURCE_DATE_EPOCH, and compare the result with the\n" +
			"version's release. The verdict, reproducible or differs (with the paths that\n" +
			"differ), is stored with the version and in the audit log. Exits 0 only when\n" +
			"reproducible. --host runs it on that host (to check another machine).\n" +
			"The CLI waits for the rebuild; Ctrl-C stops waiting, not the rebuild.",
		Args:              exactArgs(2),
		ValidArgsFunction: a.completeDeployments,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := versionArg(args[1])
			if err != nil {
				return err
			}
			c := a.client()
			b, err := c.Rebuild(cmd.Context(), args[0], n, host)
			if err != nil {
				return err
			}
			return a.followVersionBuild(cmd.Context(), c, b, args[0], n)
		},
	}
	cmd.Flags().StringVar(&host, "host", "", "only this host may run the rebuild")
	return cmd
}

// restoreCmd is `cairn restore NAME N`.
func (a *app) restoreCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "restore NAME N",
		Short: "Rebuild a collected version's release from its source and store it again if it matches",
		Long: "Rebuild version N, whose release GC collected, from its source snapshot. If\n" +
			"the result has the recorded sha256 the release is stored again and the\n" +
			"version can be activated again; if not, the restore fails and nothing is\n" +
			"stored. The CLI waits for it; Ctrl-C stops waiting, not the restore.",
		Args:              exactArgs(2),
		ValidArgsFunction: a.completeDeployments,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := versionArg(args[1])
			if err != nil {
				return err
			}
			c := a.client()
			b, err := c.Restore(cmd.Context(), args[0], n)
			if err != nil {
				return err
			}
			return a.followVersionBuild(cmd.Context(), c, b, args[0], n)
		},
	}
}

func versionArg(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("N: %q is not a version number", s)
	}
	return n, nil
}

// followVersionBuild waits for a rebuild or restore of dep's version n
// and prints its verdict: the build record with --json. Only a success
// (a rebuild that is reproducible) returns nil.
func (a *app) followVersionBuild(ctx context.Context, c *client.Client, b *meta.Build, dep string, n int64) error {
	b, err := a.waitBuild(ctx, c, b, dep)
	if err != nil {
		return err
	}
	what := fmt.Sprintf("%s %s of %s v%d", b.Kind, b.ID, dep, n)
	after := ""
	if b.Kind == meta.BuildKindRestore {
		after = "; nothing was stored"
	}
	if b.State != meta.BuildSucceeded && b.Verdict != meta.VerdictDiffers {
		return a.buildFailed(ctx, c, b, &buildOutput{Build: b}, what+" failed", after)
	}
	if a.json {
		if err := printJSON(a.stdout, b); err != nil {
			return err
		}
	}
	switch {
	case b.Verdict == meta.VerdictDiffers:
		if !a.json {
			fmt.Fprintf(a.stdout, "%s v%d: differs (the rebuild %s gave sha256 %s…)\n", dep, n, b.ID, shortSHA(b.ArtifactSHA256))
			for _, p := range b.Differs {
				fmt.Fprintf(a.stdout, "  differs: %s\n", p)
			}
		}
		paths := "paths"
		if len(b.Differs) == 1 {
			paths = "path"
		}
		return fmt.Errorf("%s differs from the recorded release (%d %s)%s", what, len(b.Differs), paths, after)
	case a.json:
		return nil
	case b.Kind == meta.BuildKindRestore:
		_, err = fmt.Fprintf(a.stdout, "%s v%d: restored (sha256 %s…, stored again; cairn activate %s %d serves it)\n",
			dep, n, shortSHA(b.ArtifactSHA256), dep, n)
	default:
		verdict := b.Verdict
		if verdict == "" { // a server that records no verdict in the build
			verdict = b.State
		}
		_, err = fmt.Fprintf(a.stdout, "%s v%d: %s (the rebuild %s gave sha256 %s…, on %s)\n",
			dep, n, verdict, b.ID, shortSHA(b.ArtifactSHA256), dash(b.Host))
	}
	return err
}

// buildLog prints a build's kept log: with --json {"build_id", "log"}.
func (a *app) buildLog(ctx context.Context, c *client.Client, id string) error {
	log, err := c.BuildLog(ctx, id)
	if err != nil {
		return err
	}
	if a.json {
		return printJSON(a.stdout, struct {
			BuildID string `json:"build_id"`
			Log     string `json:"log"`
		}{id, log})
	}
	if log != "" && log[len(log)-1] != '\n' {
		log += "\n"
	}
	_, err = fmt.Fprint(a.stdout, log)
	return err
}
