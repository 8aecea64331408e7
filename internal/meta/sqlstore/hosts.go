package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
)

// Hosts, instances and replicas (migration 0015).

const hostCols = `id, hostname, region, driver, isolation, accel, kernel_sha256, capacity, used, state, agent_url, agent_key, token_id, created_at, last_seen`

// hostReadCols are hostCols and the cache report (0018), as scanHost reads them.
const hostReadCols = hostCols + `, cached`

const instanceCols = `i.id, i.deployment_id, i.version_id, v.version_number, i.host_id, v.artifact_sha256, i.tree_digest,
	i.state, i.addr, i.started_at, i.exit_code, i.restarts, i.last_log, i.created_at, i.updated_at`

const instanceFrom = ` FROM instances i JOIN versions v ON v.id = i.version_id`

// RegisterHost inserts or refreshes a host record.
func (s *Store) RegisterHost(ctx context.Context, h *meta.Host, actor string) error {
	if h.Driver == "" {
		return s.mapErr("register host", invalid("a host needs a driver"))
	}
	id := h.ID
	if id == "" {
		id = newID("host_")
	}
	capJSON, _ := json.Marshal(h.Capacity)
	var out *meta.Host
	err := s.update(ctx, func(tx *wtx) error {
		now := s.stamp()
		old, err := scanHost(tx.QueryRowContext(ctx, s.q(`SELECT `+hostReadCols+` FROM hosts WHERE id = ?`+s.forUpdate), id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			old = nil
			_, err = tx.ExecContext(ctx, s.q(`INSERT INTO hosts (`+hostCols+`)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, '{}', ?, ?, ?, ?, ?, ?)`),
				id, h.Hostname, h.Region, h.Driver, h.Isolation, h.Accel, h.KernelSHA256, string(capJSON), hostapi.HostReady,
				h.AgentURL, h.AgentKey, h.TokenID, now.UnixNano(), now.UnixNano())
		case err == nil:
			_, err = tx.ExecContext(ctx, s.q(`UPDATE hosts SET hostname = ?, region = ?, driver = ?, isolation = ?,
				accel = ?, kernel_sha256 = ?, capacity = ?, state = ?, agent_url = ?, agent_key = ?, token_id = ?, last_seen = ? WHERE id = ?`),
				h.Hostname, h.Region, h.Driver, h.Isolation, h.Accel, h.KernelSHA256, string(capJSON), readyUnlessDraining(old.State),
				h.AgentURL, h.AgentKey, h.TokenID, now.UnixNano(), id)
		}
		if err != nil {
			return err
		}
		if old == nil || old.State == hostapi.HostLost {
			if err := s.bumpPlacement(ctx, tx); err != nil {
				return err
			}
			detail := map[string]any{"host_id": id, "hostname": h.Hostname, "region": h.Region,
				"driver": h.Driver, "isolation": h.Isolation, "accel": h.Accel, "kernel_sha256": h.KernelSHA256, "capacity": h.Capacity}
			if err := s.appendEvent(ctx, tx, meta.Event{At: now, Actor: actor, Action: meta.ActionHostRegister}, detail); err != nil {
				return err
			}
		}
		out, err = scanHost(tx.QueryRowContext(ctx, s.q(`SELECT `+hostReadCols+` FROM hosts WHERE id = ?`), id))
		return err
	})
	if err != nil {
		return s.mapErr("register host "+quote(id), err)
	}
	*h = *out
	return nil
}

// GetHost returns one host.
func (s *Store) GetHost(ctx context.Context, id string) (*meta.Host, error) {
	return readRow(ctx, s, "get host "+quote(id), func(q Querier) (*meta.Host, error) {
		return scanHost(q.QueryRowContext(ctx, s.q(`SELECT `+hostReadCols+` FROM hosts WHERE id = ?`), id))
	})
}

// ListHosts returns every host by id.
func (s *Store) ListHosts(ctx context.Context) ([]meta.Host, error) {
	out, err := list(ctx, s, scanHost, `SELECT `+hostReadCols+` FROM hosts ORDER BY id`+s.collateC)
	if err != nil {
		return nil, s.mapErr("list hosts", err)
	}
	return out, nil
}

// Heartbeat refreshes a host and applies what it observes.
func (s *Store) Heartbeat(ctx context.Context, id string, used hostapi.Capacity, obs []hostapi.Observed) error {
	usedJSON, _ := json.Marshal(used)
	err := s.update(ctx, func(tx *wtx) error {
		h, err := scanHost(tx.QueryRowContext(ctx, s.q(`SELECT `+hostReadCols+` FROM hosts WHERE id = ?`+s.forUpdate), id))
		if err != nil {
			return err
		}
		now := s.stamp()
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE hosts SET used = ?, last_seen = ?, state = ? WHERE id = ?`),
			string(usedJSON), now.UnixNano(), readyUnlessDraining(h.State), id); err != nil {
			return err
		}
		if h.State == hostapi.HostLost {
			if err := s.bumpPlacement(ctx, tx); err != nil {
				return err
			}
			if err := s.announceInstances(ctx, tx, ""); err != nil {
				return err
			}
			if err := s.appendEvent(ctx, tx, meta.Event{At: now, Actor: "host:" + id, Action: meta.ActionHostRegister},
				map[string]any{"host_id": id, "hostname": h.Hostname, "back_from": hostapi.HostLost}); err != nil {
				return err
			}
		}
		for _, o := range obs {
			if err := s.observe(ctx, tx, id, o, now); err != nil {
				return err
			}
		}
		return nil
	})
	return s.mapErr("heartbeat of host "+quote(id), err)
}

func readyUnlessDraining(state string) string {
	if state == hostapi.HostDraining {
		return state
	}
	return hostapi.HostReady
}

// observe applies one observation to the host's instance o.ID, if it is
// the host's.
func (s *Store) observe(ctx context.Context, tx *wtx, hostID string, o hostapi.Observed, now time.Time) error {
	var state, addr, depID, versionID string
	err := tx.QueryRowContext(ctx, s.q(`SELECT state, addr, deployment_id, version_id FROM instances WHERE id = ? AND host_id = ?`+s.forUpdate),
		o.ID, hostID).Scan(&state, &addr, &depID, &versionID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // not (or no longer) this host's
	}
	if err != nil {
		return err
	}
	if !knownState(o.State) {
		return invalid("instance %q: unknown state %q", o.ID, o.State)
	}
	var started *int64
	if !o.StartedAt.IsZero() {
		ns := o.StartedAt.UnixNano()
		started = &ns
	}
	var exit *int64
	if o.ExitCode != nil {
		e := int64(*o.ExitCode)
		exit = &e
	}
	// The last lines of a failed run are kept until the instance is
	// healthy again.
	var lastLog *string
	if len(o.LastLog) > 0 {
		b, _ := json.Marshal(o.LastLog)
		text := string(b)
		lastLog = &text
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE instances SET state = ?, addr = ?, tree_digest = ?, started_at = ?,
		exit_code = ?, restarts = ?, last_log = CASE WHEN ? THEN NULL ELSE COALESCE(?, last_log) END, updated_at = ? WHERE id = ?`),
		o.State, o.Addr, o.TreeDigest, started, exit, o.Restarts, o.State == hostapi.StateHealthy, lastLog, now.UnixNano(), o.ID); err != nil {
		return err
	}
	if o.State != state || o.Addr != addr { // what the router serves by
		if err := s.announceInstances(ctx, tx, depID); err != nil {
			return err
		}
	}
	if o.State == hostapi.StateFailed && state != hostapi.StateFailed {
		return s.appendEvent(ctx, tx, meta.Event{At: now, Actor: "host:" + hostID, Action: meta.ActionInstanceFailed,
			DeploymentID: depID, VersionID: versionID},
			map[string]any{"instance_id": o.ID, "host_id": hostID, "restarts": o.Restarts, "exit_code": o.ExitCode})
	}
	return nil
}

func knownState(s string) bool {
	switch s {
	case hostapi.StatePending, hostapi.StateStarting, hostapi.StateHealthy, hostapi.StateUnhealthy,
		hostapi.StateStopping, hostapi.StateStopped, hostapi.StateFailed:
		return true
	}
	return false
}

// MarkLostHosts marks hosts silent since before as lost.
func (s *Store) MarkLostHosts(ctx context.Context, before time.Time, actor string) ([]string, error) {
	var lost []string
	err := s.update(ctx, func(tx *wtx) error {
		lost = nil
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id FROM hosts WHERE state <> ? AND last_seen < ? ORDER BY id`+s.collateC+s.forUpdate),
			hostapi.HostLost, before.UnixNano())
		if err != nil {
			return err
		}
		if lost, err = collectRows(rows, rowTo[string]); err != nil {
			return err
		}
		now := s.stamp()
		for _, id := range lost {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE hosts SET state = ? WHERE id = ?`), hostapi.HostLost, id); err != nil {
				return err
			}
			// Out of the routable set at once: the router routes healthy ones.
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE instances SET state = ?, updated_at = ? WHERE host_id = ?`),
				hostapi.StateStopped, now.UnixNano(), id); err != nil {
				return err
			}
			if err := s.appendEvent(ctx, tx, meta.Event{At: now, Actor: actor, Action: meta.ActionHostLost},
				map[string]any{"host_id": id}); err != nil {
				return err
			}
			if _, err := s.failHostBuilds(ctx, tx, id, "host "+id+" was lost while the build ran"); err != nil {
				return err
			}
		}
		if err := s.expireBuilds(ctx, tx); err != nil {
			return err
		}
		if len(lost) > 0 {
			if err := s.announceInstances(ctx, tx, ""); err != nil {
				return err
			}
			return s.bumpPlacement(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return nil, s.mapErr("mark lost hosts", err)
	}
	return lost, nil
}

// ListInstances returns the instances matching f by id.
func (s *Store) ListInstances(ctx context.Context, f meta.InstanceFilter) ([]meta.Instance, error) {
	var where []string
	var args []any
	if f.DeploymentID != "" {
		where, args = append(where, "i.deployment_id = ?"), append(args, f.DeploymentID)
	}
	if f.HostID != "" {
		where, args = append(where, "i.host_id = ?"), append(args, f.HostID)
	}
	q := `SELECT ` + instanceCols + instanceFrom
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	out, err := list(ctx, s, scanInstance, q+` ORDER BY i.id`+s.collateC, args...)
	if err != nil {
		return nil, s.mapErr("list instances", err)
	}
	return out, nil
}

// GetInstance returns one instance.
func (s *Store) GetInstance(ctx context.Context, id string) (*meta.Instance, error) {
	return readRow(ctx, s, "get instance "+quote(id), func(q Querier) (*meta.Instance, error) {
		return scanInstance(q.QueryRowContext(ctx, s.q(`SELECT `+instanceCols+instanceFrom+` WHERE i.id = ?`), id))
	})
}

// SetReplicas stores a deployment's replica count.
func (s *Store) SetReplicas(ctx context.Context, depID string, n int, actor string) (int, error) {
	if n < 0 {
		return 0, s.mapErr("set replicas", invalid("replicas %d is negative", n))
	}
	var before int
	err := s.update(ctx, func(tx *wtx) error {
		_, err := s.setDesired(ctx, tx, depID, func(d meta.Desired) meta.Desired {
			before, d.Replicas = d.Replicas, n
			return d
		}, actor, true)
		return err
	})
	if err != nil {
		return 0, s.mapErr("set replicas of "+quote(depID), err)
	}
	return before, nil
}

// GetReplicas returns a deployment's replica count.
func (s *Store) GetReplicas(ctx context.Context, depID string) (int, error) {
	n, err := readRow(ctx, s, "get replicas of "+quote(depID), func(q Querier) (int, error) {
		var n int
		err := q.QueryRowContext(ctx, s.q(`SELECT replicas FROM deployment_replicas WHERE deployment_id = ?`), depID).Scan(&n)
		return n, err
	})
	if errors.Is(err, meta.ErrNotFound) {
		return 0, nil
	}
	return n, err
}

// PlacementState reads what placement decides from in one snapshot.
func (s *Store) PlacementState(ctx context.Context) (*meta.PlacementState, error) {
	var ps meta.PlacementState
	err := s.snapshotTx(ctx, func(q Querier) error {
		ps = meta.PlacementState{Replicas: map[string]int{}}
		if err := q.QueryRowContext(ctx, `SELECT gen FROM placement_gen WHERE id = 1`).Scan(&ps.Gen); err != nil {
			return err
		}
		rows, err := q.QueryContext(ctx, `SELECT `+hostReadCols+` FROM hosts ORDER BY id`+s.collateC)
		if err != nil {
			return err
		}
		if ps.Hosts, err = collectRows(rows, func(r scanner) (meta.Host, error) { h, err := scanHost(r); return deref0(h), err }); err != nil {
			return err
		}
		rows, err = q.QueryContext(ctx, `SELECT `+instanceCols+instanceFrom+` ORDER BY i.id`+s.collateC)
		if err != nil {
			return err
		}
		if ps.Instances, err = collectRows(rows, func(r scanner) (meta.Instance, error) { i, err := scanInstance(r); return deref0(i), err }); err != nil {
			return err
		}
		rows, err = q.QueryContext(ctx, `SELECT deployment_id, replicas FROM deployment_replicas WHERE replicas > 0`)
		if err != nil {
			return err
		}
		var dep string
		var n int
		if _, err = forEachRow(rows, []any{&dep, &n}, func() error { ps.Replicas[dep] = n; return nil }); err != nil {
			return err
		}
		if ps.Desired, err = s.currentDesired(ctx, q); err != nil {
			return err
		}
		rows, err = q.QueryContext(ctx, s.q(`SELECT `+rolloutCols+rolloutFrom+` WHERE r.state = ? ORDER BY r.id`+s.collateC), meta.RolloutRunning)
		if err != nil {
			return err
		}
		if ps.Rollouts, err = collectRows(rows, func(r scanner) (meta.Rollout, error) { x, err := scanRollout(r); return deref0(x), err }); err != nil {
			return err
		}
		ps.Wakes, err = s.wakes(ctx, q)
		return err
	})
	if err != nil {
		return nil, s.mapErr("placement state", err)
	}
	return &ps, nil
}

func deref0[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// ApplyPlacement creates and removes instances if gen is current.
func (s *Store) ApplyPlacement(ctx context.Context, gen int64, create []meta.NewInstance, remove []string, actor string) error {
	err := s.update(ctx, func(tx *wtx) error {
		var cur int64
		if err := tx.QueryRowContext(ctx, `SELECT gen FROM placement_gen WHERE id = 1`+s.forUpdate).Scan(&cur); err != nil {
			return err
		}
		if cur != gen {
			return errGenMoved
		}
		now := s.stamp()
		for _, id := range remove {
			var depID, versionID, hostID string
			err := tx.QueryRowContext(ctx, s.q(`SELECT deployment_id, version_id, host_id FROM instances WHERE id = ?`), id).
				Scan(&depID, &versionID, &hostID)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM instances WHERE id = ?`), id); err != nil {
				return err
			}
			if err := s.announceInstances(ctx, tx, depID); err != nil {
				return err
			}
			if err := s.appendEvent(ctx, tx, meta.Event{At: now, Actor: actor, Action: meta.ActionInstanceRemove,
				DeploymentID: depID, VersionID: versionID}, map[string]any{"instance_id": id, "host_id": hostID}); err != nil {
				return err
			}
		}
		for _, n := range create {
			var one int
			err := tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM versions WHERE id = ? AND deployment_id = ?`), n.VersionID, n.DeploymentID).Scan(&one)
			if err == nil {
				err = tx.QueryRowContext(ctx, s.q(`SELECT 1 FROM hosts WHERE id = ?`), n.HostID).Scan(&one)
			}
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO instances (id, deployment_id, version_id, host_id, state, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)`), n.ID, n.DeploymentID, n.VersionID, n.HostID, hostapi.StatePending,
				now.UnixNano(), now.UnixNano()); err != nil {
				return err
			}
			if err := s.appendEvent(ctx, tx, meta.Event{At: now, Actor: actor, Action: meta.ActionInstanceCreate,
				DeploymentID: n.DeploymentID, VersionID: n.VersionID}, map[string]any{"instance_id": n.ID, "host_id": n.HostID}); err != nil {
				return err
			}
		}
		return s.bumpPlacement(ctx, tx)
	})
	if errors.Is(err, errGenMoved) {
		return errors.Join(meta.ErrConflict, errGenMoved)
	}
	return s.mapErr("apply placement", err)
}

var errGenMoved = errors.New("the placement changed since it was read")

func (s *Store) bumpPlacement(ctx context.Context, tx *wtx) error {
	_, err := tx.ExecContext(ctx, `UPDATE placement_gen SET gen = gen + 1 WHERE id = 1`)
	return err
}

func scanHost(r scanner) (*meta.Host, error) {
	var (
		h              meta.Host
		capJ, usedJ    string
		cachedJ        string
		created, lastS int64
	)
	if err := r.Scan(&h.ID, &h.Hostname, &h.Region, &h.Driver, &h.Isolation, &h.Accel, &h.KernelSHA256, &capJ, &usedJ, &h.State,
		&h.AgentURL, &h.AgentKey, &h.TokenID, &created, &lastS, &cachedJ); err != nil {
		return nil, err
	}
	_ = json.Unmarshal([]byte(cachedJ), &h.Cached)
	_ = json.Unmarshal([]byte(capJ), &h.Capacity)
	_ = json.Unmarshal([]byte(usedJ), &h.Used)
	h.CreatedAt, h.LastSeen = fromNanos(created), fromNanos(lastS)
	return &h, nil
}

func scanInstance(r scanner) (*meta.Instance, error) {
	var (
		i                meta.Instance
		started, exit    sql.NullInt64
		lastLog          sql.NullString
		created, updated int64
	)
	if err := r.Scan(&i.ID, &i.DeploymentID, &i.VersionID, &i.VersionNumber, &i.HostID, &i.Release, &i.TreeDigest,
		&i.State, &i.Addr, &started, &exit, &i.Restarts, &lastLog, &created, &updated); err != nil {
		return nil, err
	}
	i.StartedAt = nullNanos(started)
	if exit.Valid {
		e := int(exit.Int64)
		i.ExitCode = &e
	}
	if lastLog.Valid {
		_ = json.Unmarshal([]byte(lastLog.String), &i.LastLog)
	}
	i.CreatedAt, i.UpdatedAt = fromNanos(created), fromNanos(updated)
	return &i, nil
}
