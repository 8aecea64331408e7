package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/meta"
)

func (a *app) domainCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "domain",
		Short: "Manage the hostnames that serve deployments",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var dep string
	var version int64
	add := &cobra.Command{
		Use:   "add HOST --deployment NAME [--version N]",
		Short: "Serve a deployment at HOST: its active version, or version N pinned",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version < 0 {
				return fmt.Errorf("--version: %d is not a version number", version)
			}
			d, err := a.client().CreateDomain(cmd.Context(), strings.ToLower(args[0]), dep, version)
			if err != nil {
				return err
			}
			return a.printDomain(d, dep, version)
		},
	}
	add.Flags().StringVar(&dep, "deployment", "", "deployment name or id (required)")
	add.Flags().Int64Var(&version, "version", 0, "pin to this version number (default: follow the active version)")
	_ = add.MarkFlagRequired("deployment")
	_ = add.RegisterFlagCompletionFunc("deployment", a.completeDeploymentFlag)
	cmd.AddCommand(add)
	cmd.AddCommand(a.domainVerbs()...)
	return cmd
}

func (a *app) printDomain(d *meta.Domain, dep string, pinned int64) error {
	if a.json {
		return printJSON(a.stdout, d)
	}
	how := "follows the active version"
	if pinned > 0 {
		how = fmt.Sprintf("pinned to v%d", pinned)
	}
	_, err := fmt.Fprintf(a.stdout, "domain %s → %s (%s)\n", d.Hostname, dep, how)
	return err
}

// attachDomain makes o.domain serve the published version: following the
// active version, or pinned to v with --no-activate. A hostname already on
// this deployment is repointed (a deploy token may repoint, not add, so
// its 403 on the add is checked the same way); one on another deployment
// is an error.
func (a *app) attachDomain(ctx context.Context, c *client.Client, o publishOptions, v *meta.Version) error {
	host := strings.ToLower(o.domain)
	pin := int64(0)
	if o.noActivate {
		pin = v.VersionNumber
	}
	d, err := c.CreateDomain(ctx, host, o.deployment, pin)
	if client.IsConflict(err) || client.IsForbidden(err) {
		cur, gerr := c.GetDomain(ctx, host)
		switch {
		case gerr != nil:
			// keep the conflict as the error
		case cur.DeploymentID != v.DeploymentID:
			return fmt.Errorf("domain %s already serves another deployment (%s); v%d was published",
				host, cur.DeploymentID, v.VersionNumber)
		case pin == 0 && cur.VersionID == nil:
			d, err = cur, nil
		default:
			d, err = c.SetDomainVersion(ctx, host, pin)
		}
	}
	if err != nil {
		return fmt.Errorf("domain %s: %w; v%d was published", host, err, v.VersionNumber)
	}
	if a.json {
		return nil // --json prints the Version record only
	}
	return a.printDomain(d, o.deployment, pin)
}
