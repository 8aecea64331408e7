package replica

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
)

const (
	// reportTimeout bounds the metadata write that reports a bad copy.
	reportTimeout = 5 * time.Second
	// downFor is how long a region that failed a read is passed over.
	downFor = 5 * time.Second
)

// Open reads from the first region in read order whose copy is ready and
// verified, the primary last. A region that fails is passed over, and for
// downFor by later reads of this Store; an invalid range is the same
// everywhere and is returned at once.
func (s *Store) Open(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, error) {
	var rc io.ReadCloser
	err := s.read(ctx, d, func(st blob.Store) (err error) {
		rc, err = st.Open(ctx, d, offset, length)
		return err
	})
	return rc, err
}

// Stat answers from the region Open would read.
func (s *Store) Stat(ctx context.Context, d digest.Digest) (blob.Info, error) {
	var info blob.Info
	err := s.read(ctx, d, func(st blob.Store) (err error) {
		info, err = st.Stat(ctx, d)
		return err
	})
	return info, err
}

// read calls fn with each region that may serve d, in read order, until
// fn succeeds; the primary's answer is final.
func (s *Store) read(ctx context.Context, d digest.Digest, fn func(blob.Store) error) error {
	if err := blob.ValidateDigest(d); err != nil {
		return err
	}
	if len(s.order) == 1 {
		return fn(s.primary.Store)
	}
	states := s.statesOf(ctx, d)
	for _, r := range s.order[:len(s.order)-1] {
		if states[r.Name] != meta.ReplicaReady || s.down.is(r.Name) || s.verify(ctx, r, d) != nil {
			continue
		}
		err := fn(r.Store)
		if err == nil || errors.Is(err, blob.ErrInvalidRange) || ctx.Err() != nil {
			return err
		}
		if errors.Is(err, blob.ErrNotFound) {
			s.report(ctx, r, d, meta.ReasonMissing)
		} else {
			s.down.mark(r.Name, downFor)
		}
		s.log.Warn("blob/replica: read failed, falling back", "region", r.Name, "digest", d, "err", err)
	}
	return fn(s.primary.Store)
}

// statesOf returns d's replica states by region, cached for the TTL. A
// metadata failure is logged and reads as "no copy is ready".
func (s *Store) statesOf(ctx context.Context, d digest.Digest) map[string]string {
	if m, ok := s.states.get(d); ok {
		return m
	}
	st, err := s.state.ReplicaStatuses(ctx, string(d))
	if err != nil {
		s.log.Warn("blob/replica: reading replica states", "digest", d, "err", err)
		return nil
	}
	m := make(map[string]string, len(st))
	for region, x := range st {
		m[region] = x.State
	}
	s.states.put(d, m)
	return m
}

// verify checks, once per process, that region r's copy of d hashes to d
// by reading it whole. A copy that does not verify or is missing is
// reported; any error means "do not read this copy now".
func (s *Store) verify(ctx context.Context, r Region, d digest.Digest) error {
	key := r.Name + "\x00" + string(d)
	if s.checked.has(key) {
		return nil
	}
	return s.flight.do(ctx, key, func() error {
		if s.checked.has(key) {
			return nil
		}
		err := check(ctx, r.Store, d)
		switch {
		case err == nil:
			s.checked.add(d, key)
		case errors.Is(err, blob.ErrDigestMismatch):
			s.log.Error("blob/replica: replica does not verify, falling back", "region", r.Name, "digest", d, "err", err)
			s.report(ctx, r, d, meta.ReasonCorrupt)
		case errors.Is(err, blob.ErrNotFound):
			s.report(ctx, r, d, meta.ReasonMissing)
		case ctx.Err() == nil:
			s.down.mark(r.Name, downFor)
			s.log.Warn("blob/replica: verifying a replica failed, falling back", "region", r.Name, "digest", d, "err", err)
		}
		return err
	})
}

// check reads d whole from st and verifies it.
func check(ctx context.Context, st blob.Store, d digest.Digest) error {
	v, err := blob.NewVerifier(d, -1)
	if err != nil {
		return err
	}
	rc, err := st.Open(ctx, d, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.Copy(v, rc); err != nil {
		return err
	}
	return v.Check()
}

// report marks r's ready copy of d failed with reason, due now, so that the
// Replicator copies it again, and drops the cached state.
func (s *Store) report(ctx context.Context, r Region, d digest.Digest, reason string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reportTimeout)
	defer cancel()
	row := meta.Replica{Digest: string(d), Region: r.Name, ReplicaStatus: meta.ReplicaStatus{State: meta.ReplicaReady}}
	if _, err := s.state.FinishReplica(ctx, row, meta.ReplicaFailed, reason, 0); err != nil {
		s.log.Warn("blob/replica: reporting a bad replica", "region", r.Name, "digest", d, "err", err)
	}
	s.forget(d)
	s.Wake()
}
