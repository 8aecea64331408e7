package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/cairnhq/cairn/internal/meta"
)

// Incremental publishes (issue 17; internal/api/publishes.go): the tree's
// manifest first, then only the contents the server lacks, each
// zstd-compressed, in parallel.

// ManifestEntry is one entry of a publish manifest (internal/publish).
type ManifestEntry struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	Mode   uint32 `json:"mode"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Link   string `json:"link,omitempty"`
}

// Manifest lists the tree as the server's manifest parser reads it,
// hashing every file t.Cache does not know unchanged; abs maps a content
// sha256 to a file that holds it.
func (t *Tree) Manifest(ctx context.Context) (entries []ManifestEntry, abs map[string]string, err error) {
	abs = map[string]string{}
	for _, e := range t.entries {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		m := ManifestEntry{Path: e.rel}
		switch {
		case e.mode.IsDir():
			m.Type, m.Mode = "dir", 0o755
		case e.mode&fs.ModeSymlink != 0:
			m.Type, m.Mode = "symlink", 0o777
			if m.Link, err = os.Readlink(e.abs); err != nil {
				return nil, nil, err
			}
		default:
			m.Type, m.Mode = "file", 0o644
			if e.mode.Perm()&0o111 != 0 {
				m.Mode = 0o755
			}
			if sha, ok := t.Cache.lookup(e.rel, e.st); ok {
				m.Size, m.SHA256 = e.size, sha
				abs[sha] = e.abs
				break
			}
			f, err := os.Open(e.abs)
			if err != nil {
				return nil, nil, err
			}
			h := sha256.New()
			m.Size, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return nil, nil, err
			}
			m.SHA256 = hex.EncodeToString(h.Sum(nil))
			abs[m.SHA256] = e.abs
			t.Hashed++
			t.HashedBytes += m.Size
			if m.Size == e.st.Size {
				t.Cache.store(e.rel, e.st, m.SHA256)
			}
		}
		entries = append(entries, m)
	}
	return entries, abs, nil
}

// IncrementalStats is what an incremental publish sent and reused.
type IncrementalStats struct {
	Files     int   `json:"files"`        // regular files of the tree
	New       int   `json:"new"`          // contents the server lacked, sent
	BytesSent int64 `json:"bytes_sent"`   // request bodies: manifest and contents, compressed
	Reused    int64 `json:"bytes_reused"` // bytes of file contents the server already held
	// Hashed and HashedBytes: the files (and their bytes) read to hash
	// them, the others' digests coming from the local cache.
	Hashed      int   `json:"files_hashed"`
	HashedBytes int64 `json:"bytes_hashed"`
}

// PublishIncremental publishes tree to the existing deployment dep by the
// digest-first protocol. progress, if set, is called with the bytes of
// each content sent (uncompressed).
func (c *Client) PublishIncremental(ctx context.Context, dep string, tree *Tree, o PublishOptions, parallel int, progress func(int64)) (*meta.Version, *IncrementalStats, error) {
	base, st, err := c.sendIncremental(ctx, dep, tree, parallel, progress)
	if err != nil {
		return nil, nil, err
	}
	q := url.Values{}
	if o.Entrypoint != "" {
		q.Set("entrypoint", o.Entrypoint)
	}
	q.Set("activate", strconv.FormatBool(o.Activate))
	if o.SourceSHA256 != "" {
		q.Set("source_sha256", o.SourceSHA256)
	}
	var v meta.Version
	if err := c.request(ctx, http.MethodPost, base+"/commit?"+q.Encode(), nil, "", &v); err != nil {
		return nil, nil, err
	}
	return &v, st, nil
}

// sendIncremental starts an incremental publish of tree to dep and sends
// the contents the server lacks; the caller commits at base + "/commit".
func (c *Client) sendIncremental(ctx context.Context, dep string, tree *Tree, parallel int, progress func(int64)) (base string, st *IncrementalStats, err error) {
	entries, abs, err := tree.Manifest(ctx)
	if err != nil {
		return "", nil, err
	}
	body, err := json.Marshal(map[string]any{"version": 1, "entries": entries})
	if err != nil {
		return "", nil, err
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	zbody := enc.EncodeAll(body, nil)
	st = &IncrementalStats{BytesSent: int64(len(zbody)), Hashed: tree.Hashed, HashedBytes: tree.HashedBytes}
	var start struct {
		ID      string   `json:"id"`
		Missing []string `json:"missing"`
	}
	if err := c.request(ctx, http.MethodPost, depPath(dep)+"/publishes", bytes.NewReader(zbody), "application/json", &start); err != nil {
		return "", nil, err
	}
	base = depPath(dep) + "/publishes/" + url.PathEscape(start.ID)
	missing := map[string]bool{}
	for _, sha := range start.Missing {
		missing[sha] = true
	}
	seen := map[string]bool{}
	for _, e := range entries {
		if e.Type != "file" {
			continue
		}
		st.Files++
		if !missing[e.SHA256] && !seen[e.SHA256] {
			st.Reused += e.Size
		}
		seen[e.SHA256] = true
	}
	st.New = len(start.Missing)
	var sent atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, parallel))
	var encs sync.Pool
	for _, sha := range start.Missing {
		path, ok := abs[sha]
		if !ok {
			return "", nil, fmt.Errorf("the server asked for content %s, which the tree does not hold", sha)
		}
		g.Go(func() error {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != sha {
				return fmt.Errorf("%s changed while publishing", path)
			}
			e, _ := encs.Get().(*zstd.Encoder)
			if e == nil {
				e, _ = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
			}
			z := e.EncodeAll(b, nil)
			encs.Put(e)
			sent.Add(int64(len(z)))
			if err := c.request(gctx, http.MethodPut, base+"/contents/"+sha, bytes.NewReader(z), "application/zstd", nil); err != nil {
				return fmt.Errorf("sending %s: %w", path, err)
			}
			if progress != nil {
				progress(int64(len(b)))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		_ = c.request(context.WithoutCancel(ctx), http.MethodDelete, base, nil, "", nil)
		return "", nil, err
	}
	st.BytesSent += sent.Load()
	return base, st, nil
}

// PublishSourceIncremental sends tree as source snapshot sha256 of the
// existing deployment dep by the digest-first protocol: only the contents
// the server lacks are sent, and the server assembles the snapshot (with
// the frames its releases hold), which must pack to sha256.
func (c *Client) PublishSourceIncremental(ctx context.Context, dep, sha256 string, tree *Tree, parallel int, progress func(int64)) (*meta.Release, *IncrementalStats, error) {
	base, st, err := c.sendIncremental(ctx, dep, tree, parallel, progress)
	if err != nil {
		return nil, nil, err
	}
	var rel meta.Release
	q := url.Values{"as": {"source"}, "sha256": {sha256}}
	if err := c.request(ctx, http.MethodPost, base+"/commit?"+q.Encode(), nil, "", &rel); err != nil {
		_ = c.request(context.WithoutCancel(ctx), http.MethodDelete, base, nil, "", nil)
		return nil, nil, err
	}
	return &rel, st, nil
}
