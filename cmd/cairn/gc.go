package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/gc"
)

func (a *app) gcCmd() *cobra.Command {
	var dry bool
	cmd := &cobra.Command{
		Use:   "gc [--dry-run]",
		Short: "Collect the releases nobody may roll back to any more",
		Long: "Run one garbage collection on the server and print its report: the releases\n" +
			"collected (their versions answer 410 from now on), those marked and waiting\n" +
			"for the grace period, those kept and the root that keeps them, and the orphan\n" +
			"blobs deleted. --dry-run changes nothing and shows what a run would do.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			stop := a.spinner("collecting")
			rep, err := a.client().GC(cmd.Context(), dry)
			stop()
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, rep)
			}
			return printReport(a.stdout, rep, a.deploymentNames(cmd.Context()))
		},
	}
	cmd.Flags().BoolVar(&dry, "dry-run", false, "report what a collection would do, change nothing")
	return cmd
}

// spinner shows desc and the elapsed time on a terminal until stop is called.
func (a *app) spinner(desc string) (stop func()) {
	if !a.stderrTTY || a.json {
		return func() {}
	}
	bar := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription(desc), progressbar.OptionSpinnerType(14),
		progressbar.OptionSetElapsedTime(true), progressbar.OptionClearOnFinish())
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = bar.Add(1)
			}
		}
	}()
	return func() { close(done); endBar(bar) }
}

// deploymentNames maps deployment ids to names (empty if they cannot be listed).
func (a *app) deploymentNames(ctx context.Context) map[string]string {
	names := map[string]string{}
	if ds, err := a.client().AllDeployments(ctx); err == nil {
		for _, d := range ds {
			names[d.ID] = d.Name
		}
	}
	return names
}

func printReport(w io.Writer, rep *gc.Report, names map[string]string) error {
	t := rep.Totals
	verb, freed := "collected", "freed"
	if rep.DryRun {
		verb, freed = "would collect", "would free"
		fmt.Fprintln(w, "dry run: nothing was changed")
	}
	fmt.Fprintf(w, "%s %d release(s) of %d version(s), %s %s\n", verb, t.ReleasesCollected, t.VersionsCollected,
		freed, humanBytes(t.BytesFreed))
	for _, c := range rep.Collected {
		fmt.Fprintf(w, "  %s  %9s  %s\n", shortSHA(c.SHA256), humanBytes(c.SizeBytes), versionList(c.Versions, names))
	}
	if len(rep.Marked) > 0 {
		fmt.Fprintf(w, "marked %d release(s), collectable after the grace period (%s):\n", t.ReleasesMarked,
			time.Duration(rep.GraceSeconds*float64(time.Second)))
		for _, m := range rep.Marked {
			fmt.Fprintf(w, "  %s  from %s  %s\n", shortSHA(m.SHA256), formatTime(m.CollectableAt), versionList(m.Versions, names))
		}
	}
	for _, c := range rep.Cancelled {
		fmt.Fprintf(w, "cancelled %s: %s\n", shortSHA(c.SHA256), rootText(c, names))
	}
	var by []string
	for root, n := range t.KeptBy {
		by = append(by, fmt.Sprintf("%s %d", root, n))
	}
	sort.Strings(by)
	fmt.Fprintf(w, "kept %d release(s)", t.ReleasesKept)
	if len(by) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(by, ", "))
	}
	fmt.Fprintln(w)
	_, err := fmt.Fprintf(w, "orphan blobs deleted: %d, %s\n", t.OrphansDeleted, humanBytes(t.OrphanBytesFreed))
	return err
}

func versionList(vs []gc.VersionRef, names map[string]string) string {
	var parts []string
	for _, v := range vs {
		parts = append(parts, fmt.Sprintf("%s v%d", nameOf(v.DeploymentID, names), v.VersionNumber))
	}
	if len(parts) == 0 {
		return "(no versions)"
	}
	return strings.Join(parts, ", ")
}

func rootText(k gc.Kept, names map[string]string) string {
	if k.VersionID == "" {
		return "kept by " + k.Reason
	}
	return fmt.Sprintf("kept by %s (%s v%d)", k.Reason, nameOf(k.DeploymentID, names), k.VersionNumber)
}

func nameOf(id string, names map[string]string) string {
	if n := names[id]; n != "" {
		return n
	}
	return id
}
