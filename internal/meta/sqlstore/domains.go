package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

const domainCols = `hostname, deployment_id, version_id, created_at, updated_at, https_redirect, hsts`

func scanDomain(row scanner) (*meta.Domain, error) {
	var (
		d                meta.Domain
		created, updated int64
	)
	if err := row.Scan(&d.Hostname, &d.DeploymentID, &d.VersionID, &created, &updated, &d.HTTPSRedirect, &d.HSTS); err != nil {
		return nil, err
	}
	d.CreatedAt, d.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &d, nil
}

func (s *Store) domainByHost(ctx context.Context, q Querier, hostname string) (*meta.Domain, error) {
	return scanDomain(q.QueryRowContext(ctx, s.q(`SELECT `+domainCols+` FROM domains WHERE hostname = ?`),
		strings.ToLower(hostname)))
}

// checkPin reports whether a domain of deployment depID, whose row tx has
// locked, may be pinned to versionID: meta.ErrNotFound if there is no such
// version, meta.ErrInvalid if it belongs to another deployment, meta.ErrGone
// if it was collected. It locks the version row, guarded by collected_at IS
// NULL (the meta.GC contract), so the answer holds until tx ends.
func (s *Store) checkPin(ctx context.Context, tx *wtx, depID, versionID string) error {
	v, err := s.versionByID(ctx, tx, versionID)
	switch {
	case err != nil:
		return err
	case v.DeploymentID != depID:
		return invalid("version %s belongs to another deployment", versionID)
	case v.CollectedAt != nil:
		return meta.ErrGone
	}
	var one int
	err = tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM versions WHERE id = ? AND collected_at IS NULL`+s.forUpdate),
		versionID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return meta.ErrGone
	}
	return err
}

// CreateDomain inserts d (its hostname lower-cased), filling CreatedAt and
// UpdatedAt, with a "domain.add" event. Empty hostname: meta.ErrInvalid.
// Unknown deployment or version: meta.ErrNotFound. Pinned to a version of
// another deployment: meta.ErrInvalid; to a collected one: meta.ErrGone.
// Hostname taken: meta.ErrConflict.
func (s *Store) CreateDomain(ctx context.Context, d *meta.Domain, actor string) error {
	nd := *d
	nd.Hostname = strings.ToLower(nd.Hostname)
	op := "create domain " + quote(nd.Hostname)
	if nd.Hostname == "" {
		return s.mapErr(op, invalid("empty hostname"))
	}
	err := s.update(ctx, func(tx *wtx) error {
		if _, err := s.lockDeployment(ctx, tx, nd.DeploymentID); err != nil {
			return err
		}
		if nd.VersionID != nil {
			if err := s.checkPin(ctx, tx, nd.DeploymentID, *nd.VersionID); err != nil {
				return err
			}
		}
		nd.CreatedAt = s.stamp()
		nd.UpdatedAt = nd.CreatedAt
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO domains (`+domainCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`),
			nd.Hostname, nd.DeploymentID, nd.VersionID, nd.CreatedAt.UnixNano(),
			nd.UpdatedAt.UnixNano(), nd.HTTPSRedirect, nd.HSTS); err != nil {
			return err
		}
		return s.appendEvent(ctx, tx, meta.Event{
			At: nd.CreatedAt, Actor: actor, Action: meta.ActionDomainAdd, DeploymentID: nd.DeploymentID,
			VersionID: deref(nd.VersionID), Hostname: nd.Hostname,
		}, map[string]*string{"version_id": nd.VersionID})
	})
	if err != nil {
		return s.mapErr(op, err)
	}
	*d = nd
	return nil
}

// GetDomain finds a domain by hostname (compared lower-cased). Missing: meta.ErrNotFound.
func (s *Store) GetDomain(ctx context.Context, hostname string) (*meta.Domain, error) {
	return readRow(ctx, s, "get domain "+quote(hostname), func(q Querier) (*meta.Domain, error) {
		return s.domainByHost(ctx, q, hostname)
	})
}

// ListDomains returns every domain, ordered by hostname.
func (s *Store) ListDomains(ctx context.Context) ([]meta.Domain, error) {
	out, err := list(ctx, s, scanDomain, `SELECT `+domainCols+` FROM domains ORDER BY hostname`)
	return out, s.mapErr("list domains", err)
}

// SetDomainVersion pins the domain to versionID, or makes it follow the
// deployment's active version when versionID is nil, in one transaction
// (holding its deployment's row lock) with a "domain.repoint" event (detail:
// before/after version ids, null meaning "follows the active version").
// Setting the current value changes nothing and appends no event. Errors as
// for CreateDomain; unknown hostname: meta.ErrNotFound.
func (s *Store) SetDomainVersion(ctx context.Context, hostname string, versionID *string, actor string) (*meta.Domain, error) {
	op := "repoint domain " + quote(hostname)
	var d *meta.Domain
	err := s.update(ctx, func(tx *wtx) error {
		var err error
		if d, err = s.domainByHost(ctx, tx, hostname); err != nil {
			return err
		}
		// A domain never changes deployment: lock that, then read the domain
		// again as the last writer left it.
		if _, err := s.lockDeployment(ctx, tx, d.DeploymentID); err != nil {
			return err
		}
		if d, err = s.domainByHost(ctx, tx, hostname); err != nil {
			return err
		}
		if versionID != nil {
			if err := s.checkPin(ctx, tx, d.DeploymentID, *versionID); err != nil {
				return err
			}
		}
		if deref(d.VersionID) == deref(versionID) && (d.VersionID == nil) == (versionID == nil) {
			return nil
		}
		before := d.VersionID
		d.VersionID, d.UpdatedAt = versionID, s.stamp()
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE domains SET version_id = ?, updated_at = ? WHERE hostname = ?`),
			versionID, d.UpdatedAt.UnixNano(), d.Hostname); err != nil {
			return err
		}
		return s.appendEvent(ctx, tx, meta.Event{
			At: d.UpdatedAt, Actor: actor, Action: meta.ActionDomainRepoint, DeploymentID: d.DeploymentID,
			VersionID: deref(versionID), Hostname: d.Hostname,
		}, change{Before: before, After: versionID})
	})
	if err != nil {
		return nil, s.mapErr(op, err)
	}
	return d, nil
}

// DeleteDomain removes the domain with a "domain.remove" event (detail: the
// version it was pinned to, null when it followed the active version).
// Unknown hostname: meta.ErrNotFound.
func (s *Store) DeleteDomain(ctx context.Context, hostname string, actor string) error {
	op := "delete domain " + quote(hostname)
	err := s.update(ctx, func(tx *wtx) error {
		d, err := s.domainByHost(ctx, tx, hostname)
		if err != nil {
			return err
		}
		if _, err := s.lockDeployment(ctx, tx, d.DeploymentID); err != nil {
			return err
		}
		return s.removeDomain(ctx, tx, d.DeploymentID, d.Hostname, s.stamp(), actor)
	})
	return s.mapErr(op, err)
}

// removeDomain deletes hostname of deployment depID (locked by tx) and
// appends its "domain.remove" event.
func (s *Store) removeDomain(ctx context.Context, tx *wtx, depID, hostname string, now time.Time, actor string) error {
	d, err := s.domainByHost(ctx, tx, hostname)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM domains WHERE hostname = ?`), d.Hostname); err != nil {
		return err
	}
	return s.appendEvent(ctx, tx, meta.Event{
		At: now, Actor: actor, Action: meta.ActionDomainRemove, DeploymentID: depID, Hostname: d.Hostname,
	}, change{Before: d.VersionID, After: nil})
}

// SetDomainHTTPS sets the domain's HTTPS settings with a "domain.https"
// event.
func (s *Store) SetDomainHTTPS(ctx context.Context, hostname string, redirect, hsts bool, actor string) (*meta.Domain, error) {
	hostname = strings.ToLower(hostname)
	var d *meta.Domain
	err := s.update(ctx, func(tx *wtx) error {
		now := s.stamp()
		res, err := tx.ExecContext(ctx, s.q(`UPDATE domains SET https_redirect = ?, hsts = ?, updated_at = ? WHERE hostname = ?`),
			redirect, hsts, now.UnixNano(), hostname)
		if err := rowsOrNotFound(affected(res), err); err != nil {
			return err
		}
		if d, err = s.domainByHost(ctx, tx, hostname); err != nil {
			return err
		}
		return s.appendEvent(ctx, tx, meta.Event{At: now, Actor: actor, Action: meta.ActionDomainHTTPS,
			DeploymentID: d.DeploymentID, Hostname: hostname}, map[string]bool{"https_redirect": redirect, "hsts": hsts})
	})
	if err != nil {
		return nil, s.mapErr("set https of domain "+quote(hostname), err)
	}
	return d, nil
}
