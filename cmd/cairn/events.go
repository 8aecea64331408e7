package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/meta"
)

// followEvery is how often `cairn events -f` asks for new events.
const followEvery = time.Second

// eventsCmd is `cairn events`: the audit log, oldest first, optionally
// following new events as they are appended.
func (a *app) eventsCmd() *cobra.Command {
	var dep, since string
	var follow bool
	cmd := &cobra.Command{
		Use:   "events [--deployment NAME] [--since TIME] [-f]",
		Short: "Show the audit log, oldest first; -f follows new events",
		Long: "Show the audit log (publishes, activations, rollbacks, domain changes,\n" +
			"collections…), oldest first. --since takes an RFC 3339 time or a duration\n" +
			"ago (e.g. 1h). -f keeps printing new events until interrupted; with --json\n" +
			"it prints one JSON event per line.",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := client.EventQuery{Deployment: dep}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return fmt.Errorf("--since: %w", err)
				}
				q.Since = t
			}
			c := a.client()
			names := a.deploymentNames(cmd.Context())
			var all []meta.Event
			for {
				p, err := c.ListEvents(cmd.Context(), q)
				if err != nil {
					return err
				}
				for _, e := range p.Events {
					q.After = e.ID
					switch {
					case a.json && follow:
						b, _ := json.Marshal(e)
						fmt.Fprintf(a.stdout, "%s\n", b)
					case a.json:
						all = append(all, e)
					default:
						fmt.Fprintln(a.stdout, eventLine(e, names))
					}
				}
				if len(p.Events) > 0 {
					continue // there may be more pages
				}
				if !follow {
					break
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(followEvery):
				}
				if q.Deployment == "" {
					names = a.deploymentNames(cmd.Context()) // new deployments
				}
			}
			if a.json {
				if all == nil {
					all = []meta.Event{}
				}
				return printJSON(a.stdout, all)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dep, "deployment", "", "only the events of this deployment")
	cmd.Flags().StringVar(&since, "since", "", "only events at or after this time (RFC 3339, or a duration ago such as 1h)")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new events")
	_ = cmd.RegisterFlagCompletionFunc("deployment", a.completeDeploymentFlag)
	return cmd
}

// parseSince reads an RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration such as 90m", s)
}

// eventLine is one event on one line: id, time, action, what it names, actor.
func eventLine(e meta.Event, names map[string]string) string {
	parts := []string{"#" + strconv.FormatInt(e.ID, 10), e.At.Local().Format("2006-01-02 15:04:05"), e.Action}
	if e.DeploymentID != "" {
		parts = append(parts, orID(names, e.DeploymentID))
	}
	if e.Hostname != "" {
		parts = append(parts, e.Hostname)
	}
	if e.VersionID != "" {
		parts = append(parts, e.VersionID)
	}
	if e.ReleaseSHA256 != "" {
		parts = append(parts, "sha256 "+shortSHA(e.ReleaseSHA256))
	}
	if strings.HasPrefix(e.Action, "rollout.") {
		parts = append(parts, rolloutDetail(e.Detail))
	}
	return strings.Join(parts, "  ") + "  by " + e.Actor
}

// rolloutDetail is a rollout event's progress or reason, in words.
func rolloutDetail(detail []byte) string {
	var d struct {
		ID      string `json:"rollout_id"`
		Version int64  `json:"version_number"`
		Healthy *int   `json:"healthy"`
		Wanted  *int   `json:"wanted"`
		Reason  string `json:"reason"`
	}
	_ = json.Unmarshal(detail, &d)
	out := d.ID
	if d.Version > 0 {
		out += fmt.Sprintf(" to v%d", d.Version)
	}
	if d.Healthy != nil && d.Wanted != nil {
		out += fmt.Sprintf(" %d/%d healthy", *d.Healthy, *d.Wanted)
	}
	if d.Reason != "" {
		out += ": " + d.Reason
	}
	return out
}
