package registry

import (
	"context"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/lease"
)

// hold takes the garbage collector's publish lease (lease.Hold) on each sha256
// digest of ds for a push that stores bytes and links them: a leased digest
// is a root, and Hold waits out a deletion in progress, so the bytes are
// stored (and linked) after it. Other algorithms are not collected. The
// caller calls drop once the rows are committed.
func (r *Registry) hold(ctx context.Context, ds ...digest.Digest) (drop func(), err error) {
	var drops []func()
	drop = func() {
		for _, d := range drops {
			d()
		}
	}
	seen := map[digest.Digest]bool{}
	for _, d := range ds {
		if d.Algorithm() != digest.SHA256 || seen[d] || d.Validate() != nil {
			continue
		}
		seen[d] = true
		dr, err := lease.Hold(ctx, r.meta, d.Encoded())
		if err != nil {
			drop()
			return nil, err
		}
		drops = append(drops, dr)
	}
	return drop, nil
}

// references lists what m points at and a push must keep: its config, its
// layers and, for an index, its children.
func (m *manifest) references() []digest.Digest {
	var ds []digest.Digest
	if m.Config != nil {
		ds = append(ds, m.Config.digest())
	}
	for i := range m.Layers {
		ds = append(ds, m.Layers[i].digest())
	}
	if m.Manifests != nil {
		for i := range *m.Manifests {
			ds = append(ds, (*m.Manifests)[i].digest())
		}
	}
	return ds
}
