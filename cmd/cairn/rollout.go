package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/meta"
)

// rolloutFlags are activate's and rollback's flags for a rollout.
type rolloutFlags struct {
	detach  bool
	timeout time.Duration
}

func (f *rolloutFlags) bind(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.detach, "detach", false, "dynamic deployments: start the rollout and do not wait for it")
	cmd.Flags().DurationVar(&f.timeout, "rollout-timeout", 0,
		"dynamic deployments: how long the new instances may take to get healthy (default: the server's --rollout-timeout)")
}

// rolloutPoll is how often the CLI asks how a rollout goes.
const rolloutPoll = 300 * time.Millisecond

// followRollout waits for d's running rollout (unless --detach or there
// is none), printing its progress on stderr, and returns the deployment
// as it is once the rollout ended. A rollout that did not succeed is an
// error naming why; the active version is then unchanged.
func (a *app) followRollout(ctx context.Context, d *meta.Deployment, f rolloutFlags) (*meta.Deployment, error) {
	ro := d.Rollout
	if ro == nil || ro.State != meta.RolloutRunning || f.detach {
		return d, nil
	}
	c := a.client()
	last := ""
	for ro.State == meta.RolloutRunning {
		if line := fmt.Sprintf("%s: rolling out v%d: %d/%d healthy", d.Name, ro.ToVersionNumber, ro.Healthy, max(ro.Wanted, 0)); line != last && !a.json {
			fmt.Fprintln(a.stderr, line)
			last = line
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(rolloutPoll):
		}
		var err error
		if ro, err = c.GetRollout(ctx, d.ID, ro.ID); err != nil {
			return nil, err
		}
	}
	nd, err := c.GetDeployment(ctx, d.ID)
	if err != nil {
		return nil, err
	}
	nd.Rollout = ro
	if ro.State != meta.RolloutSucceeded {
		if a.json {
			printJSON(a.stdout, nd)
		}
		why := ro.Reason
		if why == "" {
			why = ro.State
		}
		return nil, fmt.Errorf("rollout of %s to v%d %s: %s; the active version is unchanged (v%d)",
			d.Name, ro.ToVersionNumber, ro.State, why, nd.ActiveVersionNumber)
	}
	return nd, nil
}
