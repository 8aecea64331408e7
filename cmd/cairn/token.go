package main

import (
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/meta"
)

func (a *app) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API and registry tokens (admin)",
		Long: "Tokens carry scopes: admin; read; deploy:NAME (publish, activate, roll back and\n" +
			"read one deployment); push:NAME and pull:NAME (the registry); agent (reserved).\n" +
			"The secret is shown once, at creation; the server keeps only its hash.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var scopes []string
	var expires, name string
	create := &cobra.Command{
		Use:   "create --scope SCOPE [--scope SCOPE…] [--expires 720h|30d|RFC3339] [--name NAME]",
		Short: "Create a token and print its secret (shown once)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := client.TokenRequest{Name: name, Scopes: trimAll(scopes)}
			if len(in.Scopes) == 0 {
				return fmt.Errorf("--scope: at least one is needed (admin, read, deploy:NAME, push:NAME, pull:NAME, agent)")
			}
			if expires != "" {
				in0, at, err := parseExpires(expires)
				if err != nil {
					return fmt.Errorf("--expires: %w", err)
				}
				in.ExpiresIn, in.ExpiresAt = in0, at
			}
			t, err := a.client().CreateToken(cmd.Context(), in)
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, t)
			}
			fmt.Fprintf(a.stdout, "created token %s (%s), expires %s\n", t.ID, strings.Join(t.Scopes, " "), expiry(t.ExpiresAt))
			fmt.Fprintf(a.stdout, "%s\n", t.Secret)
			_, err = fmt.Fprintln(a.stdout, "store the secret now: it is not shown again")
			return err
		},
	}
	create.Flags().StringSliceVar(&scopes, "scope", nil, "a scope (repeat, or separate with commas)")
	create.Flags().StringVar(&expires, "expires", "", "expiry: a duration (720h, 30d) or an RFC 3339 time (default: never)")
	create.Flags().StringVar(&name, "name", "", "a name that says what the token is for")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List tokens, oldest first (never their secrets)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ts, err := a.client().ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			if a.json {
				if ts == nil {
					ts = []meta.Token{}
				}
				return printJSON(a.stdout, ts)
			}
			if len(ts) == 0 {
				_, err := fmt.Fprintln(a.stdout, "no tokens yet (the token file's bootstrap admin token is not listed)")
				return err
			}
			now := time.Now()
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tSTATE\tCREATED\tEXPIRES\tLAST USED")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, dash(t.Name), strings.Join(t.Scopes, ","),
					tokenState(t, now), formatTime(t.CreatedAt), expiry(t.ExpiresAt), timeOrDash(t.LastUsedAt))
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token: it stops working at once",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := a.client().RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if a.json {
				return printJSON(a.stdout, t)
			}
			_, err = fmt.Fprintf(a.stdout, "revoked token %s (%s)\n", t.ID, strings.Join(t.Scopes, " "))
			return err
		},
	}
	cmd.AddCommand(create, ls, revoke)
	return cmd
}

// parseExpires reads --expires: a Go duration ("720h"), a number of days
// ("30d"), sent as expires_in (the server adds it to its own clock), or an
// RFC 3339 time, sent as expires_at.
func parseExpires(s string) (in string, at *time.Time, err error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n <= 0 || n > 3650 {
			return "", nil, fmt.Errorf("%q: days must be a whole number from 1 to 3650", s)
		}
		return (time.Duration(n) * 24 * time.Hour).String(), nil, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return "", nil, fmt.Errorf("%q: the duration must be positive", s)
		}
		return d.String(), nil, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return "", nil, fmt.Errorf("%q is neither a duration (720h, 30d) nor an RFC 3339 time (2030-01-02T15:04:05Z)", s)
	}
	return "", &t, nil
}

func tokenState(t meta.Token, now time.Time) string {
	switch {
	case t.RevokedAt != nil:
		return "revoked"
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return "expired"
	}
	return "active"
}

func expiry(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return formatTime(*t)
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return formatTime(*t)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
