package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/meta"
)

func (a *app) auditCmd() *cobra.Command {
	var at string
	cmd := &cobra.Command{
		Use:   "audit HOST|NAME [--at TIME]",
		Short: "Show which version and release served a hostname (or a deployment) at a time",
		Long: "Answer from the audit log which version and release served HOST, a custom\n" +
			"domain, at TIME (RFC 3339, default now); for a deployment NAME, its active\n" +
			"version. It answers for collected versions too: their rows keep their hashes.\n" +
			"'cairn audit verify' checks the log's hash chain (for a deployment named\n" +
			"verify, write 'cairn audit verify.').",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			when := time.Now()
			if at != "" {
				t, err := time.Parse(time.RFC3339Nano, at)
				if err != nil {
					return fmt.Errorf("--at: %q is not an RFC 3339 time (e.g. 2024-05-01T12:00:00Z)", at)
				}
				when = t
			}
			target := strings.ToLower(strings.TrimSuffix(args[0], "."))
			var h *meta.History
			var err error
			if strings.Contains(target, ".") {
				h, err = a.client().DomainHistory(cmd.Context(), target, when)
			} else {
				h, err = a.client().DeploymentHistory(cmd.Context(), target, when)
			}
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, h)
			}
			return a.printHistory(target, h, a.deploymentNames(cmd.Context()))
		},
	}
	cmd.Flags().StringVar(&at, "at", "", "the time to answer for, RFC 3339 (default: now)")
	cmd.AddCommand(a.auditVerifyCmd())
	return cmd
}

func (a *app) printHistory(target string, h *meta.History, names map[string]string) error {
	v, rel := h.Version, h.Release
	how := "active version"
	switch {
	case h.Hostname != "" && h.FollowsActive:
		how = "following the active version"
	case h.Hostname != "":
		how = "pinned"
	}
	w := a.stdout
	fmt.Fprintf(w, "%s at %s: %s v%d (%s since %s, event %d)\n", target, h.At.Format(time.RFC3339),
		nameOf(h.DeploymentID, names), v.VersionNumber, how, h.Since.Format(time.RFC3339), h.EventID)
	fmt.Fprintf(w, "  version  %s  %s\n", v.ID, v.Status)
	fmt.Fprintf(w, "  release  sha256:%s  %s  %s\n", rel.SHA256, humanBytes(rel.SizeBytes), rel.Kind)
	fmt.Fprintf(w, "  source   sha256:%s\n", v.SourceSHA256)
	printHistoryBuild(w, v)
	switch {
	case rel.CollectedAt != nil && v.Build != nil && v.SourceSnapshot:
		fmt.Fprintf(w, "  collected %s: the bytes are gone; cairn restore %s %d rebuilds them from the source\n",
			rel.CollectedAt.Format(time.RFC3339), nameOf(h.DeploymentID, names), v.VersionNumber)
	case rel.CollectedAt != nil:
		fmt.Fprintf(w, "  collected %s: the bytes are gone; rebuild from the source and check the sha256\n",
			rel.CollectedAt.Format(time.RFC3339))
	}
	return nil
}
