package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func (a *app) versionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "versions NAME",
		Short:             "List a deployment's versions, newest first",
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeDeployments,
		RunE: func(cmd *cobra.Command, args []string) error {
			vs, err := a.client().AllVersions(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, vs)
			}
			if len(vs) == 0 {
				_, err := fmt.Fprintf(a.stdout, "%s has no versions yet\n", args[0])
				return err
			}
			doms, err := a.client().ListDomains(cmd.Context(), vs[0].DeploymentID)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tSTATUS\tCREATED\tSHA256\tFILES\tBYTES\tDOMAINS")
			for _, v := range vs {
				hosts := strings.Join(servingHosts(&v, doms), ",")
				if hosts == "" {
					hosts = "-"
				}
				fmt.Fprintf(tw, "v%d\t%s\t%s\t%s\t%d\t%s\t%s\n", v.VersionNumber, v.Status, formatTime(v.CreatedAt),
					shortSHA(v.ArtifactSHA256), v.ArtifactManifest.Files, humanBytes(v.ArtifactManifest.TotalBytes), hosts)
			}
			return tw.Flush()
		},
	}
}
