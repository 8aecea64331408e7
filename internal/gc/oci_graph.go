package gc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/meta"
)

// maxManifestBytes bounds a manifest read to find its references (the
// registry's default limit).
const maxManifestBytes = 4 << 20

// ociGraph indexes the registry's rows for reachability.
type ociGraph struct {
	g         *meta.OCIGraph
	manifests map[meta.OCIRef]*meta.OCIGCManifest
	blobs     map[meta.OCIRef]*meta.OCIGCBlob
	referrers map[meta.OCIRef][]string // (repo, subject) → referrer digests
	byDigest  map[string][]meta.OCIRef // manifest digest → its rows
	refs      map[string][]string      // manifest digest → config, layers, children
}

func newOCIGraph(g *meta.OCIGraph) *ociGraph {
	o := &ociGraph{g: g, manifests: map[meta.OCIRef]*meta.OCIGCManifest{}, blobs: map[meta.OCIRef]*meta.OCIGCBlob{},
		referrers: map[meta.OCIRef][]string{}, byDigest: map[string][]meta.OCIRef{}, refs: map[string][]string{}}
	for i := range g.Manifests {
		m := &g.Manifests[i]
		k := meta.OCIRef{Repository: m.Repository, Digest: m.Digest}
		o.manifests[k] = m
		o.byDigest[m.Digest] = append(o.byDigest[m.Digest], k)
		if m.Subject != "" {
			s := meta.OCIRef{Repository: m.Repository, Digest: m.Subject}
			o.referrers[s] = append(o.referrers[s], m.Digest)
		}
	}
	for i := range g.Blobs {
		b := &g.Blobs[i]
		o.blobs[meta.OCIRef{Repository: b.Repository, Digest: b.Digest}] = b
	}
	return o
}

// reach is the set of rows kept: manifests and blob links.
type reach map[meta.OCIRef]bool

// closure adds to kept every row reachable from the manifests roots: their
// config, layers and index children (rows of the same repository) and
// their referrers, recursively. Reading a manifest's bytes failing is an
// error: what it references is unknown.
func (r *run) closure(ctx context.Context, o *ociGraph, kept reach, roots []meta.OCIRef) error {
	queue := append([]meta.OCIRef{}, roots...)
	for len(queue) > 0 {
		m := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if kept[m] || o.manifests[m] == nil {
			continue
		}
		kept[m] = true
		refs, err := r.manifestRefs(ctx, o, o.manifests[m])
		if err != nil {
			return err
		}
		for _, d := range refs {
			k := meta.OCIRef{Repository: m.Repository, Digest: d}
			if o.blobs[k] != nil {
				kept[k] = true
			}
			queue = append(queue, k)
		}
		for _, d := range o.referrers[m] {
			queue = append(queue, meta.OCIRef{Repository: m.Repository, Digest: d})
		}
	}
	return nil
}

// manifestRefs returns the digests manifest m references (config, layers,
// index children), read from its bytes once per digest.
func (r *run) manifestRefs(ctx context.Context, o *ociGraph, m *meta.OCIGCManifest) ([]string, error) {
	if refs, ok := o.refs[m.Digest]; ok {
		return refs, nil
	}
	rc, err := r.c.cfg.Blobs.Open(ctx, digest.Digest(m.Digest), 0, -1)
	if err != nil {
		return nil, fmt.Errorf("gc: reading manifest %s of %s: %w", m.Digest, m.Repository, err)
	}
	defer rc.Close()
	var body struct {
		Config    *struct{ Digest string }  `json:"config"`
		Layers    []struct{ Digest string } `json:"layers"`
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	if err := json.NewDecoder(io.LimitReader(rc, maxManifestBytes)).Decode(&body); err != nil {
		return nil, fmt.Errorf("gc: parsing manifest %s of %s: %w", m.Digest, m.Repository, err)
	}
	refs := []string{}
	if body.Config != nil && body.Config.Digest != "" {
		refs = append(refs, body.Config.Digest)
	}
	for _, l := range append(body.Layers, body.Manifests...) {
		if l.Digest != "" {
			refs = append(refs, l.Digest)
		}
	}
	o.refs[m.Digest] = refs
	return refs, nil
}
