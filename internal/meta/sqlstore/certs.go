package sqlstore

import (
	"context"
	"encoding/base64"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// Certs (migration 0016). Values are stored base64-encoded; locks are rows
// of cert_locks taken with one conditional upsert, so two processes on one
// database never both hold a name.

// PutCert stores value at key.
func (s *Store) PutCert(ctx context.Context, key string, value []byte) error {
	if key == "" {
		return s.mapErr("put cert", invalid("empty key"))
	}
	err := s.update(ctx, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO certs (key, value, size, modified) VALUES (?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, size = excluded.size, modified = excluded.modified`),
			key, base64.StdEncoding.EncodeToString(value), len(value), s.stamp().UnixNano())
		return err
	})
	return s.mapErr("put cert "+quote(key), err)
}

// GetCert returns the value at key.
func (s *Store) GetCert(ctx context.Context, key string) ([]byte, time.Time, error) {
	var v string
	var mod int64
	err := s.read(ctx, func(q Querier) error {
		return q.QueryRowContext(ctx, s.q(`SELECT value, modified FROM certs WHERE key = ?`), key).Scan(&v, &mod)
	})
	if err != nil {
		return nil, time.Time{}, s.mapErr("get cert "+quote(key), err)
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, time.Time{}, s.mapErr("get cert "+quote(key), err)
	}
	return b, fromNanos(mod), nil
}

// DeleteCerts deletes key and the keys under it.
func (s *Store) DeleteCerts(ctx context.Context, key string) error {
	err := s.update(ctx, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM certs WHERE key = ? OR substr(key, 1, ?) = ?`),
			key, len(key)+1, key+"/")
		return err
	})
	return s.mapErr("delete certs "+quote(key), err)
}

// ListCerts lists the keys at and under prefix.
func (s *Store) ListCerts(ctx context.Context, prefix string) ([]meta.CertEntry, error) {
	var out []meta.CertEntry
	err := s.read(ctx, func(q Querier) error {
		rows, err := q.QueryContext(ctx, s.q(`SELECT key, modified, size FROM certs
			WHERE ? = '' OR key = ? OR substr(key, 1, ?) = ? ORDER BY key`+s.collateC),
			prefix, prefix, len(prefix)+1, prefix+"/")
		if err != nil {
			return err
		}
		out, err = collectRows(rows, func(r scanner) (meta.CertEntry, error) {
			var e meta.CertEntry
			var mod, n int64
			err := r.Scan(&e.Key, &mod, &n)
			e.Modified, e.Size = fromNanos(mod), n
			return e, err
		})
		return err
	})
	return out, s.mapErr("list certs "+quote(prefix), err)
}

// LockCert takes or renews lock name for owner.
func (s *Store) LockCert(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	if name == "" || owner == "" || strings.ContainsAny(owner, "\x00") {
		return false, s.mapErr("lock cert", invalid("empty lock name or owner"))
	}
	now := s.stamp()
	var took bool
	err := s.update(ctx, func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO cert_locks (name, owner, expires) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
			WHERE cert_locks.owner = excluded.owner OR cert_locks.expires <= ?`),
			name, owner, now.Add(ttl).UnixNano(), now.UnixNano())
		took = err == nil && affected(res) == 1
		return err
	})
	return took, s.mapErr("lock cert "+quote(name), err)
}

// UnlockCert releases owner's lock name.
func (s *Store) UnlockCert(ctx context.Context, name, owner string) error {
	err := s.update(ctx, func(tx *wtx) error {
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM cert_locks WHERE name = ? AND owner = ?`), name, owner)
		return err
	})
	return s.mapErr("unlock cert "+quote(name), err)
}
