package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/meta"
)

func (a *app) activateCmd() *cobra.Command {
	var ro rolloutFlags
	cmd := &cobra.Command{
		Use:   "activate NAME N [--detach] [--rollout-timeout D]",
		Short: "Make version N the deployment's active version",
		Long: "Make version N the deployment's active version. For a static deployment this\n" +
			"moves a pointer. For a dynamic one (rootfs, oci) with instances it is a rolling\n" +
			"replacement: N instances of the version start, and once they are healthy the\n" +
			"pointer moves and the old instances stop. The command waits and shows the\n" +
			"progress (--detach: do not wait); a rollout that fails leaves the active\n" +
			"version as it was and exits non-zero.",
		Args:              exactArgs(2),
		ValidArgsFunction: a.completeDeployments,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || n < 1 {
				return fmt.Errorf("version number %q must be a positive integer", args[1])
			}
			d, err := a.client().Point(cmd.Context(), args[0], meta.ActionActivate, n, ro.timeout)
			if err != nil {
				return err
			}
			if d, err = a.followRollout(cmd.Context(), d, ro); err != nil {
				return err
			}
			return a.printActive(cmd.Context(), d, n, "is now active")
		},
	}
	ro.bind(cmd)
	return cmd
}

func (a *app) rollbackCmd() *cobra.Command {
	var to int64
	var ro rolloutFlags
	cmd := &cobra.Command{
		Use:               "rollback NAME [--to N] [--detach] [--rollout-timeout D]",
		Short:             "Make the previously active version (or version N) active again",
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeDeployments,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("to") && to < 1 {
				return fmt.Errorf("--to: %d is not a version number", to)
			}
			d, err := a.client().Point(cmd.Context(), args[0], meta.ActionRollback, to, ro.timeout)
			if err != nil {
				return err
			}
			if d, err = a.followRollout(cmd.Context(), d, ro); err != nil {
				return err
			}
			return a.printActive(cmd.Context(), d, to, "is active again")
		},
	}
	cmd.Flags().Int64Var(&to, "to", 0, "version number to roll back to (default: the previously active one)")
	ro.bind(cmd)
	return cmd
}

// printActive prints the deployment's new active version; n is its number
// if known (0: look it up by the deployment's active_version_id).
func (a *app) printActive(ctx context.Context, d *meta.Deployment, n int64, what string) error {
	if a.json {
		return printJSON(a.stdout, d)
	}
	if d.Rollout != nil && d.Rollout.State == meta.RolloutRunning {
		_, err := fmt.Fprintf(a.stdout, "%s: rolling out v%d (%s); follow it with cairn events or GET /v1/deployments/%s/rollouts/%s\n",
			d.Name, d.Rollout.ToVersionNumber, d.Rollout.ID, d.Name, d.Rollout.ID)
		return err
	}
	label := fmt.Sprintf("v%d", n)
	if n == 0 && d.ActiveVersionID != nil {
		label = *d.ActiveVersionID
		if v, err := a.client().GetVersionByID(ctx, *d.ActiveVersionID); err == nil {
			label = fmt.Sprintf("v%d", v.VersionNumber)
		}
	}
	msg := fmt.Sprintf("%s %s %s", d.Name, label, what)
	if d.URL != "" {
		msg += " → " + d.URL
	}
	_, err := fmt.Fprintln(a.stdout, msg)
	return err
}
