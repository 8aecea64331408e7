package sqlstore

import (
	"context"

	"github.com/cairnhq/cairn/internal/meta"
)

// CreateDeploymentWithPolicy is CreateDeployment with d.RetentionDays
// stored as given (0 included) and d.KeepVersions: see meta.Policies.
func (s *Store) CreateDeploymentWithPolicy(ctx context.Context, d *meta.Deployment, actor string) error {
	return s.createDeployment(ctx, d, actor, true)
}

// SetPolicy changes the set fields of p for deployment id, with one
// "deployment.update" event when something changed: see meta.Policies. It
// holds the deployment's row lock, so it waits for a collection deciding
// on the deployment's versions (see lockRoots), and it for it.
func (s *Store) SetPolicy(ctx context.Context, id string, p meta.Policy, actor string) (*meta.Deployment, error) {
	op := "set policy of " + quote(id)
	if (p.RetentionDays != nil && *p.RetentionDays < 0) || (p.KeepVersions != nil && *p.KeepVersions < 0) ||
		(p.SourceRetentionDays != nil && *p.SourceRetentionDays < 0) {
		return nil, s.mapErr(op, invalid("negative retention_days, keep_versions or source_retention_days"))
	}
	var d *meta.Deployment
	err := s.update(ctx, func(tx *wtx) error {
		var err error
		if d, err = s.lockDeployment(ctx, tx, id); err != nil {
			return err
		}
		before, after := map[string]any{}, map[string]any{}
		if p.RetentionDays != nil && *p.RetentionDays != d.RetentionDays {
			before["retention_days"], after["retention_days"] = d.RetentionDays, *p.RetentionDays
			d.RetentionDays = *p.RetentionDays
		}
		if p.KeepVersions != nil && *p.KeepVersions != d.KeepVersions {
			before["keep_versions"], after["keep_versions"] = d.KeepVersions, *p.KeepVersions
			d.KeepVersions = *p.KeepVersions
		}
		if p.SPA != nil && *p.SPA != d.SPA {
			before["spa"], after["spa"] = d.SPA, *p.SPA
			d.SPA = *p.SPA
		}
		if p.CleanURLs != nil && *p.CleanURLs != d.CleanURLs {
			before["clean_urls"], after["clean_urls"] = d.CleanURLs, *p.CleanURLs
			d.CleanURLs = *p.CleanURLs
		}
		if p.ProxyRewrites != nil && *p.ProxyRewrites != d.ProxyRewrites {
			before["proxy_rewrites"], after["proxy_rewrites"] = d.ProxyRewrites, *p.ProxyRewrites
			d.ProxyRewrites = *p.ProxyRewrites
		}
		if p.SourceRetentionDays != nil && *p.SourceRetentionDays != d.SourceRetentionDays {
			before["source_retention_days"], after["source_retention_days"] = d.SourceRetentionDays, *p.SourceRetentionDays
			d.SourceRetentionDays = *p.SourceRetentionDays
		}
		if len(after) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE deployments SET retention_days = ?, keep_versions = ?, spa = ?, clean_urls = ?,
			proxy_rewrites = ?, source_retention_days = ? WHERE id = ?`),
			d.RetentionDays, d.KeepVersions, d.SPA, d.CleanURLs, d.ProxyRewrites, d.SourceRetentionDays, d.ID); err != nil {
			return err
		}
		return s.appendEvent(ctx, tx, meta.Event{
			At: s.stamp(), Actor: actor, Action: meta.ActionDeploymentUpdate, DeploymentID: d.ID,
		}, map[string]any{"before": before, "after": after})
	})
	if err != nil {
		return nil, s.mapErr(op, err)
	}
	return d, nil
}
