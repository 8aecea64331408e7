package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/meta"
)

// domainVerbs are `cairn domain ls|rm|set`.
func (a *app) domainVerbs() []*cobra.Command {
	var dep string
	ls := &cobra.Command{
		Use:   "ls [--deployment NAME]",
		Short: "List domains: what each serves",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c := a.client()
			ds, err := c.ListDomains(cmd.Context(), dep)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, ds)
			}
			if len(ds) == 0 {
				_, err := fmt.Fprintln(a.stdout, "no domains: cairn domain add HOST --deployment NAME")
				return err
			}
			names := a.deploymentNames(cmd.Context())
			numbers := a.versionNumbers(cmd, ds)
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "HOSTNAME\tDEPLOYMENT\tSERVES")
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", d.Hostname, orID(names, d.DeploymentID), serves(d, numbers))
			}
			return tw.Flush()
		},
	}
	ls.Flags().StringVar(&dep, "deployment", "", "only the domains of this deployment")
	_ = ls.RegisterFlagCompletionFunc("deployment", a.completeDeploymentFlag)

	rm := &cobra.Command{
		Use:   "rm HOST",
		Short: "Stop serving anything at HOST",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			host := strings.ToLower(args[0])
			if err := a.client().DeleteDomain(cmd.Context(), host); err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, map[string]any{"hostname": host, "removed": true})
			}
			_, err := fmt.Fprintf(a.stdout, "removed domain %s\n", host)
			return err
		},
	}

	var version int64
	var follow, httpsRedirect, hstsOn bool
	set := &cobra.Command{
		Use:   "set HOST --version N | --follow | --https-redirect[=false] | --hsts[=false]",
		Short: "Pin HOST to version N of its deployment, or make it follow the active version; set its HTTPS settings",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var redirect, hsts *bool
			if cmd.Flags().Changed("https-redirect") {
				redirect = &httpsRedirect
			}
			if cmd.Flags().Changed("hsts") {
				hsts = &hstsOn
			}
			httpsOnly := (redirect != nil || hsts != nil) && !follow && version == 0
			if !httpsOnly && follow == (version > 0) {
				return fmt.Errorf("give exactly one of --version N and --follow (or only --https-redirect, --hsts)")
			}
			if version < 0 {
				return fmt.Errorf("--version: %d is not a version number", version)
			}
			c := a.client()
			host := strings.ToLower(args[0])
			var d *meta.Domain
			var err error
			if redirect != nil || hsts != nil {
				if d, err = c.SetDomainHTTPS(cmd.Context(), host, redirect, hsts); err != nil {
					return err
				}
			}
			if !httpsOnly {
				if d, err = c.SetDomainVersion(cmd.Context(), host, version); err != nil {
					return err
				}
			}
			if httpsOnly && !a.json {
				_, err := fmt.Fprintf(a.stdout, "domain %s: https_redirect %v, hsts %v\n", d.Hostname, d.HTTPSRedirect, d.HSTS)
				return err
			}
			names := a.deploymentNames(cmd.Context())
			return a.printDomain(d, orID(names, d.DeploymentID), version)
		},
	}
	set.Flags().Int64Var(&version, "version", 0, "pin to this version number")
	set.Flags().BoolVar(&follow, "follow", false, "follow the deployment's active version")
	set.Flags().BoolVar(&httpsRedirect, "https-redirect", false, "answer plain HTTP requests with 308 to HTTPS (edges with --edge-tls-addr)")
	set.Flags().BoolVar(&hstsOn, "hsts", false, "send Strict-Transport-Security (max-age one year) on HTTPS responses")
	return []*cobra.Command{ls, rm, set}
}

// serves says what a domain serves: "v3 (pinned)" or "active version".
func serves(d meta.Domain, numbers map[string]int64) string {
	if d.VersionID == nil {
		return "active version"
	}
	if n, ok := numbers[*d.VersionID]; ok {
		return fmt.Sprintf("v%d (pinned)", n)
	}
	return *d.VersionID + " (pinned)"
}

// versionNumbers looks up the numbers of the versions domains are pinned to.
func (a *app) versionNumbers(cmd *cobra.Command, ds []meta.Domain) map[string]int64 {
	out := map[string]int64{}
	c := a.client()
	for _, d := range ds {
		if d.VersionID == nil {
			continue
		}
		if _, ok := out[*d.VersionID]; ok {
			continue
		}
		if v, err := c.GetVersionByID(cmd.Context(), *d.VersionID); err == nil {
			out[v.ID] = v.VersionNumber
		}
	}
	return out
}

func orID(names map[string]string, id string) string {
	if n, ok := names[id]; ok {
		return n
	}
	return id
}
