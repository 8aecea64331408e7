package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/meta"
)

// deploymentsCmd is `cairn deployments`: every deployment with its kind,
// active version and URL.
func (a *app) deploymentsCmd() *cobra.Command {
	var deleted bool
	cmd := &cobra.Command{
		Use:   "deployments",
		Short: "List deployments with their active version and URL",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := a.client()
			list := c.ListDeployments
			if deleted {
				list = c.AllDeployments
			}
			ds, err := list(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, ds)
			}
			if len(ds) == 0 {
				_, err := fmt.Fprintln(a.stdout, "no deployments yet: cairn publish DIR --deployment NAME")
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tKIND\tACTIVE\tURL")
			for _, d := range ds {
				active := "-"
				if d.ActiveVersionNumber > 0 {
					active = "v" + strconv.FormatInt(d.ActiveVersionNumber, 10)
				}
				if d.DeletedAt != nil {
					active = "deleted"
				}
				url := d.URL
				if url == "" {
					url = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Name, d.Kind, active, url)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&deleted, "deleted", false, "include deleted deployments")
	return cmd
}

// deploymentCmd is `cairn deployment delete|set`.
func (a *app) deploymentCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deployment",
		Short: "Delete a deployment or change its settings",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var force bool
	del := &cobra.Command{
		Use:   "delete NAME [--force]",
		Short: "Stop serving a deployment and archive its versions (records stay for audit)",
		Long: "Stop serving NAME: its active version is archived and the deployment has\n" +
			"none. Its records stay for audit, and GC collects its releases on the usual\n" +
			"retention rules. While domains point at it the API refuses (409) unless\n" +
			"--force removes them too. Publishing to NAME again brings it back.",
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeDeployments,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := a.client().DeleteDeployment(cmd.Context(), args[0], force)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, d)
			}
			_, err = fmt.Fprintf(a.stdout, "deleted %s: it serves nothing; its versions stay archived until GC collects them\n", d.Name)
			return err
		},
	}
	del.Flags().BoolVar(&force, "force", false, "also remove the domains that point at it")
	var retention, keep, srcRetention int
	var spa, clean, proxy bool
	var onPush string
	var ds desiredFlags
	set := &cobra.Command{
		Use: "set NAME [--retention-days N] [--keep-versions N] [--source-retention-days N] [--spa[=false]] [--clean-urls[=false]] [--proxy-rewrites[=false]]\n" +
			"  [--activate-on-push TAG]\n" +
			"  [--replicas N --cpu C --memory M --regions spread|R=N,… --min-healthy N --isolation container|microvm\n" +
			"   --autostop D --health-path P --health-interval D --health-timeout D]",
		Short:             "Change a deployment's retention, how the edge serves its site, what a registry push activates, or a dynamic deployment's desired state",
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeDeployments,
		RunE: func(cmd *cobra.Command, args []string) error {
			var rp, kp, srp *int
			var sp, cp, pp *bool
			if cmd.Flags().Changed("retention-days") {
				rp = &retention
			}
			if cmd.Flags().Changed("keep-versions") {
				kp = &keep
			}
			if cmd.Flags().Changed("source-retention-days") {
				srp = &srcRetention
			}
			if cmd.Flags().Changed("spa") {
				sp = &spa
			}
			if cmd.Flags().Changed("clean-urls") {
				cp = &clean
			}
			if cmd.Flags().Changed("proxy-rewrites") {
				pp = &proxy
			}
			var op *string
			if cmd.Flags().Changed("activate-on-push") {
				op = &onPush
			}
			patch, err := ds.patch(cmd)
			if err != nil {
				return err
			}
			if rp == nil && kp == nil && srp == nil && sp == nil && cp == nil && pp == nil && op == nil && len(patch) == 0 {
				return fmt.Errorf("nothing to set: give --retention-days, --keep-versions, --source-retention-days, --spa, --clean-urls, --proxy-rewrites, --activate-on-push or a desired-state flag (--replicas, --cpu, …)")
			}
			if srp != nil && *srp < 0 {
				return fmt.Errorf("--source-retention-days: %d is negative", *srp)
			}
			var d *meta.Deployment
			if rp != nil || kp != nil {
				if d, err = a.client().SetPolicy(cmd.Context(), args[0], rp, kp); err != nil {
					return err
				}
			}
			if srp != nil {
				if d, err = a.client().SetSourceRetention(cmd.Context(), args[0], *srp); err != nil {
					return err
				}
			}
			if sp != nil || cp != nil || pp != nil {
				if d, err = a.client().SetSite(cmd.Context(), args[0], sp, cp, pp); err != nil {
					return err
				}
			}
			if op != nil {
				if d, err = a.client().SetActivateOnPush(cmd.Context(), args[0], *op); err != nil {
					return err
				}
			}
			if len(patch) > 0 {
				if d, err = a.client().SetDesired(cmd.Context(), args[0], patch); err != nil {
					return err
				}
			}
			if a.json {
				return printJSON(a.stdout, d)
			}
			if len(patch) > 0 && d.Desired != nil {
				printDesired(a.stdout, d.Name, d.Desired)
			}
			if rp != nil || kp != nil {
				fmt.Fprintf(a.stdout, "%s: retention %d days, keeps the newest %d archived versions\n",
					d.Name, d.RetentionDays, d.KeepVersions)
			}
			if srp != nil {
				fmt.Fprintf(a.stdout, "%s: source snapshots kept %d days after their version's publish\n",
					d.Name, d.SourceRetentionDays)
			}
			if sp != nil || cp != nil || pp != nil {
				fmt.Fprintf(a.stdout, "%s: spa %s, clean URLs %s, proxy rewrites %s\n",
					d.Name, onOff(d.SPA), onOff(d.CleanURLs), onOff(d.ProxyRewrites))
			}
			if op != nil {
				if d.ActivateOnPush == "" {
					fmt.Fprintf(a.stdout, "%s: a registry push never activates (cairn activate does)\n", d.Name)
				} else {
					fmt.Fprintf(a.stdout, "%s: a registry push of tag %s activates the image it names\n", d.Name, d.ActivateOnPush)
				}
			}
			return nil
		},
	}
	ds.bind(set)
	set.Flags().IntVar(&retention, "retention-days", 0, "days an archived version's release is kept (0: collectable once archived)")
	set.Flags().IntVar(&keep, "keep-versions", 0, "the newest N archived versions are never collected")
	set.Flags().IntVar(&srcRetention, "source-retention-days", 0, "days the source snapshot of a version is kept after its publish, for rebuilds and restores (default 365)")
	set.Flags().BoolVar(&spa, "spa", false, "static sites: serve the entrypoint (200) for unknown paths of requests that accept HTML")
	set.Flags().BoolVar(&clean, "clean-urls", false, "static sites: serve /about from about.html and redirect /about.html to /about (308)")
	set.Flags().BoolVar(&proxy, "proxy-rewrites", false, "static sites: allow _redirects rules that rewrite (200) to an external http(s) URL; the edge proxies them")
	set.Flags().StringVar(&onPush, "activate-on-push", "", "oci: a registry push of this tag activates the image it names (\"\": a push never activates)")
	cmd.AddCommand(del, set)
	return cmd
}

// completeDeployments completes a first argument with deployment names.
func (a *app) completeDeployments(cmd *cobra.Command, args []string, word string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return a.completeDeploymentFlag(cmd, args, word)
}

// completeDeploymentFlag completes a --deployment value.
func (a *app) completeDeploymentFlag(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	ds, err := a.client().ListDeployments(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, 0, len(ds))
	for _, d := range ds {
		names = append(names, d.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
