package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/meta"
)

func (a *app) activateCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "activate NAME N",
		Short:             "Make version N the deployment's active version",
		Args:              exactArgs(2),
		ValidArgsFunction: a.completeDeployments,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || n < 1 {
				return fmt.Errorf("version number %q must be a positive integer", args[1])
			}
			d, err := a.client().Activate(cmd.Context(), args[0], n)
			if err != nil {
				return err
			}
			return a.printActive(cmd.Context(), d, n, "is now active")
		},
	}
}

func (a *app) rollbackCmd() *cobra.Command {
	var to int64
	cmd := &cobra.Command{
		Use:               "rollback NAME [--to N]",
		Short:             "Make the previously active version (or version N) active again",
		Args:              exactArgs(1),
		ValidArgsFunction: a.completeDeployments,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("to") && to < 1 {
				return fmt.Errorf("--to: %d is not a version number", to)
			}
			d, err := a.client().Rollback(cmd.Context(), args[0], to)
			if err != nil {
				return err
			}
			return a.printActive(cmd.Context(), d, to, "is active again")
		},
	}
	cmd.Flags().Int64Var(&to, "to", 0, "version number to roll back to (default: the previously active one)")
	return cmd
}

// printActive prints the deployment's new active version; n is its number
// if known (0: look it up by the deployment's active_version_id).
func (a *app) printActive(ctx context.Context, d *meta.Deployment, n int64, what string) error {
	if a.json {
		return printJSON(a.stdout, d)
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
