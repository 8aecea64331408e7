package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
)

// Scheduling: desired state with history (0018), draining, the hosts'
// cache reports and rollouts (0019).

func checkDesired(d meta.Desired) error {
	switch {
	case d.Replicas < 0 || d.Replicas > 1000:
		return invalid("replicas %d is not between 0 and 1000", d.Replicas)
	case d.CPU < 0 || d.MemoryBytes < 0:
		return invalid("cpu and memory must not be negative")
	case d.MinHealthy != nil && *d.MinHealthy < 0:
		return invalid("min_healthy %d is negative", *d.MinHealthy)
	case d.Isolation != "" && d.Isolation != hostapi.IsolationContainer && d.Isolation != hostapi.IsolationMicroVM:
		return invalid("isolation %q is neither %s nor %s", d.Isolation, hostapi.IsolationContainer, hostapi.IsolationMicroVM)
	}
	return nil
}

// SetDesired appends a desired-state row when d differs from the current.
func (s *Store) SetDesired(ctx context.Context, depID string, d meta.Desired, actor string) (*meta.DesiredRecord, error) {
	if err := checkDesired(d); err != nil {
		return nil, s.mapErr("set desired state", err)
	}
	var out *meta.DesiredRecord
	err := s.update(ctx, func(tx *wtx) error {
		var err error
		out, err = s.setDesired(ctx, tx, depID, func(meta.Desired) meta.Desired { return d }, actor, false)
		return err
	})
	if err != nil {
		return nil, s.mapErr("set desired state of "+quote(depID), err)
	}
	return out, nil
}

// setDesired is SetDesired inside tx, with the new state made from the
// current one by change; scale (SetReplicas) audits it as
// "deployment.scale" {"before", "after"} counts.
func (s *Store) setDesired(ctx context.Context, tx *wtx, depID string, change func(meta.Desired) meta.Desired,
	actor string, scale bool) (*meta.DesiredRecord, error) {
	dep, err := s.lockDeployment(ctx, tx, depID)
	if err != nil {
		return nil, err
	}
	cur, err := s.desiredOf(ctx, tx, dep.ID)
	if err != nil {
		return nil, err
	}
	d := change(cur.Desired)
	if reflect.DeepEqual(normDesired(cur.Desired), normDesired(d)) {
		return cur, nil
	}
	spec, _ := json.Marshal(d)
	now := s.stamp()
	rec := &meta.DesiredRecord{DeploymentID: dep.ID, Seq: cur.Seq + 1, Desired: d, Actor: actor, CreatedAt: now}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO desired_states (deployment_id, seq, spec, actor, created_at)
		VALUES (?, ?, ?, ?, ?)`), dep.ID, rec.Seq, string(spec), actor, now.UnixNano()); err != nil {
		return nil, err
	}
	if cur.Desired.Replicas != d.Replicas {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM deployment_replicas WHERE deployment_id = ?`), dep.ID); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO deployment_replicas (deployment_id, replicas) VALUES (?, ?)`), dep.ID, d.Replicas); err != nil {
			return nil, err
		}
	}
	if err := s.bumpPlacement(ctx, tx); err != nil {
		return nil, err
	}
	// Routers read the replicas and autostop (whether a request may wake
	// the deployment), and the scheduler runs at once.
	if err := s.announceInstances(ctx, tx, dep.ID); err != nil {
		return nil, err
	}
	ev := meta.Event{At: now, Actor: actor, Action: meta.ActionDesired, DeploymentID: dep.ID}
	var detail any = map[string]any{"seq": rec.Seq, "before": cur.Desired, "after": d}
	if scale {
		ev.Action, detail = meta.ActionDeploymentScale, map[string]any{"before": cur.Desired.Replicas, "after": d.Replicas}
	}
	if err := s.appendEvent(ctx, tx, ev, detail); err != nil {
		return nil, err
	}
	return rec, nil
}

// normDesired makes equal states compare equal (nil vs empty maps).
func normDesired(d meta.Desired) meta.Desired {
	if d.Regions != nil && !d.Regions.Spread && len(d.Regions.Count) == 0 {
		d.Regions = nil
	}
	return d
}

// desiredOf reads depID's current desired state; never set: Seq 0 with
// the replica count of deployment_replicas.
func (s *Store) desiredOf(ctx context.Context, q Querier, depID string) (*meta.DesiredRecord, error) {
	rec, err := scanDesired(q.QueryRowContext(ctx, s.q(`SELECT deployment_id, seq, spec, actor, created_at
		FROM desired_states WHERE deployment_id = ? ORDER BY seq DESC LIMIT 1`), depID))
	if errors.Is(err, sql.ErrNoRows) {
		rec = &meta.DesiredRecord{DeploymentID: depID}
		err = q.QueryRowContext(ctx, s.q(`SELECT replicas FROM deployment_replicas WHERE deployment_id = ?`), depID).
			Scan(&rec.Desired.Replicas)
		if errors.Is(err, sql.ErrNoRows) {
			err = nil
		}
	}
	return rec, err
}

func scanDesired(r scanner) (*meta.DesiredRecord, error) {
	var (
		rec  meta.DesiredRecord
		spec string
		at   int64
	)
	if err := r.Scan(&rec.DeploymentID, &rec.Seq, &spec, &rec.Actor, &at); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(spec), &rec.Desired); err != nil {
		return nil, fmt.Errorf("desired state %s/%d: %w", rec.DeploymentID, rec.Seq, err)
	}
	rec.CreatedAt = fromNanos(at)
	return &rec, nil
}

// GetDesired returns the current desired state.
func (s *Store) GetDesired(ctx context.Context, depID string) (*meta.DesiredRecord, error) {
	return readRow(ctx, s, "get desired state of "+quote(depID), func(q Querier) (*meta.DesiredRecord, error) {
		if err := s.deploymentExists(ctx, q, depID); err != nil {
			return nil, err
		}
		return s.desiredOf(ctx, q, depID)
	})
}

// DesiredHistory returns every desired-state row, newest first.
func (s *Store) DesiredHistory(ctx context.Context, depID string) ([]meta.DesiredRecord, error) {
	out, err := list(ctx, s, scanDesired, s.q(`SELECT deployment_id, seq, spec, actor, created_at
		FROM desired_states WHERE deployment_id = ? ORDER BY seq DESC`), depID)
	if err != nil {
		return nil, s.mapErr("desired history of "+quote(depID), err)
	}
	return out, nil
}

// currentDesired reads the current desired state of every deployment that
// set one.
func (s *Store) currentDesired(ctx context.Context, q Querier) (map[string]meta.Desired, error) {
	rows, err := q.QueryContext(ctx, `SELECT d.deployment_id, d.seq, d.spec, d.actor, d.created_at FROM desired_states d
		WHERE d.seq = (SELECT MAX(seq) FROM desired_states x WHERE x.deployment_id = d.deployment_id)`)
	if err != nil {
		return nil, err
	}
	recs, err := collectRows(rows, func(r scanner) (meta.DesiredRecord, error) { x, err := scanDesired(r); return deref0(x), err })
	if err != nil {
		return nil, err
	}
	out := make(map[string]meta.Desired, len(recs))
	for _, r := range recs {
		out[r.DeploymentID] = r.Desired
	}
	return out, nil
}

// DrainHost makes a host draining.
func (s *Store) DrainHost(ctx context.Context, id, actor string) (*meta.Host, error) {
	var out *meta.Host
	err := s.update(ctx, func(tx *wtx) error {
		h, err := scanHost(tx.QueryRowContext(ctx, s.q(`SELECT `+hostReadCols+` FROM hosts WHERE id = ?`+s.forUpdate), id))
		if err != nil {
			return err
		}
		switch h.State {
		case hostapi.HostLost:
			return fmt.Errorf("%w: host %s is lost", meta.ErrConflict, id)
		case hostapi.HostDraining:
			out = h
			return nil
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE hosts SET state = ? WHERE id = ?`), hostapi.HostDraining, id); err != nil {
			return err
		}
		if err := s.bumpPlacement(ctx, tx); err != nil {
			return err
		}
		if err := s.appendEvent(ctx, tx, meta.Event{At: s.stamp(), Actor: actor, Action: meta.ActionHostDrain},
			map[string]any{"host_id": id}); err != nil {
			return err
		}
		h.State = hostapi.HostDraining
		out = h
		return nil
	})
	if err != nil {
		return nil, s.mapErr("drain host "+quote(id), err)
	}
	return out, nil
}

// ReportCache records what a host's cache holds.
func (s *Store) ReportCache(ctx context.Context, id string, releases []string) error {
	rs := append([]string{}, releases...)
	sort.Strings(rs)
	b, _ := json.Marshal(rs)
	err := s.update(ctx, func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE hosts SET cached = ? WHERE id = ?`), string(b), id)
		if err == nil && affected(res) == 0 {
			err = sql.ErrNoRows
		}
		return err
	})
	return s.mapErr("report cache of host "+quote(id), err)
}
