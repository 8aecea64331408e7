package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/audit"
)

func (a *app) auditVerifyCmd() *cobra.Command {
	var recorded string
	cmd := &cobra.Command{
		Use:   "verify [--head HASH]",
		Short: "Check the audit log's hash chain and report the first break",
		Long: "Read the whole audit log, oldest first, and check its hash chain: every\n" +
			"event's hash must match its contents, its prev_hash the hash of the event\n" +
			"before it, and the last hash the head the server reports. Prints the head;\n" +
			"note it, and a later --head HASH checks that the log still contains it\n" +
			"(the history up to it was not rewritten). Exits 2 at the first break.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := audit.Walk(cmd.Context(), a.client().AuditSource(), recorded)
			var brk *audit.Break
			if err != nil && !errors.As(err, &brk) && !errors.Is(err, audit.ErrHeadNotFound) {
				return err // could not read the log: nothing to report
			}
			if a.json {
				if perr := printJSON(a.stdout, auditReport(r, err)); perr != nil {
					return perr
				}
				return err
			}
			if err != nil {
				return err
			}
			switch {
			case r.Events == 0:
				fmt.Fprintln(a.stdout, "audit log verified: no events yet")
			case r.FirstID == 0:
				fmt.Fprintf(a.stdout, "audit log verified: %d events, all from before the log was chained\n", r.Events)
			default:
				fmt.Fprintf(a.stdout, "audit log verified: %d events, head %s\n", r.Events, r.Head)
				if r.Unhashed > 0 {
					fmt.Fprintf(a.stdout, "  the chain starts at event %d: the %d events before it predate it and are not checked\n",
						r.FirstID, r.Unhashed)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&recorded, "head", "", "a head printed by an earlier run that the log must still contain")
	return cmd
}

// auditReport is the --json output of audit verify.
func auditReport(r *audit.Result, err error) map[string]any {
	out := map[string]any{
		"ok": err == nil, "events": r.Events, "unhashed": r.Unhashed,
		"first_id": r.FirstID, "head_id": r.LastID, "head": r.Head,
	}
	var brk *audit.Break
	if errors.As(err, &brk) {
		out["break"] = brk
	}
	if err != nil {
		out["error"] = err.Error()
	}
	return out
}
