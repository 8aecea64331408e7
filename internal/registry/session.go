package registry

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/lease"
	"github.com/cairnhq/cairn/internal/meta"
)

// Upload sessions are shared by every API process, so that any of them can
// continue any session: the session and the list of its parts are rows of
// the metadata store (meta.Uploads), and each part's bytes are an ordinary
// blob named by their sha256.
//
//   - A chunk (a PATCH body, a PUT's last one) is spooled to an unlinked
//     file in StageDir while it is hashed and limited. Its digest is leased
//     for the session (holder "upload-<id>"; lease.Take waits out a deletion
//     of the same bytes in progress), then stored with blobs.Put, and only
//     then appended to the session, guarded by the size read: a lost race
//     answers 416 with the current Range.
//   - Every request that refreshes the session's Updated (a PATCH, even an
//     empty one; a PUT) renews the leases of all its parts first, in one
//     statement (meta.Leases.RenewLeases). Leases last UploadTTL plus
//     leaseMargin, so they outlive the session they were renewed for;
//     finishing or cancelling it drops them. The leases of an expired
//     session end soon after it, and its parts become orphans that the
//     GC's orphan sweep removes after its grace period.
//   - Finishing: a single part with the wanted digest already is the blob
//     (the usual push: one PATCH with the layer, then an empty PUT); other
//     sessions are read part by part into blobs.Put, which verifies them.
//     A part gone from the blob store (it should not be, while leased)
//     ends the session: BLOB_UPLOAD_UNKNOWN, the client starts again.

// leaseMargin is how much longer than UploadTTL a part's lease lasts, so
// that the leases renewed for a request end after the session it refreshed,
// even though they are renewed a little before Updated is set.
const leaseMargin = 5 * time.Minute

// createSession starts an empty session for repo.
func (r *Registry) createSession(ctx context.Context, repo string) (*meta.Upload, error) {
	if err := r.checkUploadCap(ctx, repo); err != nil {
		return nil, err
	}
	b := make([]byte, 16)
	rand.Read(b)
	now := r.now()
	ss := &meta.Upload{ID: hex.EncodeToString(b), Repository: repo, Started: now, Updated: now}
	if err := r.uploads.CreateUpload(ctx, *ss); err != nil {
		return nil, err
	}
	return ss, nil
}

// checkUploadCap refuses a new session in repo's deployment when it has
// cfg.MaxUploads unexpired ones (TOOMANYREQUESTS). Sessions created at
// once may pass it together: the cap can be exceeded by their number.
func (r *Registry) checkUploadCap(ctx context.Context, repo string) error {
	dep := deploymentName(repo)
	n, err := r.meta.CountUploads(ctx, dep, r.now().Add(-r.cfg.UploadTTL))
	if err != nil {
		return err
	}
	if n >= r.cfg.MaxUploads {
		return public(errTooManyUploads, "deployment %s has %d unfinished upload sessions, the limit; finish or cancel (DELETE) some, or wait for idle ones to expire after %v",
			dep, n, r.cfg.UploadTTL)
	}
	return nil
}

// session loads the upload of rt. A missing, expired or foreign session
// wraps errUploadUnknown.
func (r *Registry) session(ctx context.Context, rt route) (*meta.Upload, error) {
	id := rt.ref
	unknown := public(errUploadUnknown, "upload %.80q", id)
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return nil, unknown
	}
	ss, err := r.uploads.GetUpload(ctx, id)
	if errors.Is(err, meta.ErrNotFound) {
		return nil, unknown
	}
	if err != nil {
		return nil, err
	}
	if ss.Repository != rt.name || r.now().Sub(ss.Updated) > r.cfg.UploadTTL {
		return nil, unknown
	}
	return ss, nil
}

// addPart appends what body yields to ss as a new part: at most limit bytes
// (more wraps errBlobTooLarge) and, if want >= 0, exactly want bytes (else
// errSizeInvalid). An empty body adds no part and only marks the session
// active. Either way the leases of the session's parts are renewed. On
// error the session is as it was; after a lost race ss holds the session
// as the winner left it.
func (r *Registry) addPart(ctx context.Context, ss *meta.Upload, body io.Reader, limit, want int64) error {
	f, err := os.CreateTemp(r.cfg.StageDir, "part-")
	if err != nil {
		return err
	}
	defer f.Close()
	os.Remove(f.Name()) // unlinked: the bytes go with the file, even if the process dies
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), newLimitReader(body, limit))
	if err != nil {
		return bodyErr(err)
	}
	if want >= 0 && n != want {
		return public(errSizeInvalid, "received %d bytes, Content-Range announced %d", n, want)
	}
	p := meta.UploadPart{Size: n}
	if n > 0 {
		p.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
		err := lease.Take(ctx, r.meta, digest.Digest(p.Digest).Encoded(), holder(ss.ID), r.leaseTTL())
		if err != nil {
			return err
		}
		if err := r.storePart(ctx, ss, p, f); err != nil {
			return err
		}
	}
	// The append refreshes Updated: the leases must outlive the session.
	if err := r.renew(ctx, ss, p.Digest); err != nil {
		if p.Size > 0 && !hasPart(ss, p.Digest) {
			r.dropLeases(ctx, ss.ID, p.Digest)
		}
		return err
	}
	now := r.now()
	err = r.uploads.AppendUpload(ctx, ss.ID, ss.Size, p, now)
	if err != nil {
		return r.lostPart(ctx, ss, p, err)
	}
	ss.Size += n
	ss.Updated = now
	if n > 0 {
		ss.Parts = append(ss.Parts, p)
	}
	return nil
}

// storePart stores the spooled chunk f as part p of ss; on failure p's
// lease is dropped unless ss has the same bytes already.
func (r *Registry) storePart(ctx context.Context, ss *meta.Upload, p meta.UploadPart, f *os.File) error {
	_, err := f.Seek(0, io.SeekStart)
	if err == nil {
		err = r.blobs.Put(ctx, digest.Digest(p.Digest), p.Size, f)
	}
	if err != nil && !hasPart(ss, p.Digest) {
		r.dropLeases(ctx, ss.ID, p.Digest)
	}
	return err
}

// lostPart handles an append of p to ss that failed with err: the session
// was deleted or grew meanwhile. Unless the session (reloaded into ss) holds
// the same bytes, p's lease is dropped and its blob left to the GC's orphan
// sweep. The session holds one lease per digest: another request of it in
// flight with the same bytes (stored, not yet appended) shares this lease
// and loses it too. That is accepted: if that request's append wins, its
// lease comes back with the next renewal of the session (renew re-leases
// a part whose lease is gone), and a part lost meanwhile ends the session
// at its PUT with BLOB_UPLOAD_UNKNOWN instead of corrupting the blob.
func (r *Registry) lostPart(ctx context.Context, ss *meta.Upload, p meta.UploadPart, err error) error {
	cur, gerr := r.uploads.GetUpload(ctx, ss.ID)
	switch {
	case errors.Is(gerr, meta.ErrNotFound):
		err = public(errUploadUnknown, "upload %s ended meanwhile", ss.ID)
	case gerr != nil:
		return errors.Join(err, gerr)
	case errors.Is(err, meta.ErrUploadMoved):
		*ss = *cur
		err = public(errRangeInvalid, "another request appended to the upload meanwhile; it has %d bytes", ss.Size)
	}
	if p.Size > 0 && (cur == nil || !hasPart(cur, p.Digest)) {
		r.dropLeases(ctx, ss.ID, p.Digest)
	}
	return err
}

func hasPart(ss *meta.Upload, d string) bool {
	for _, p := range ss.Parts {
		if p.Digest == d {
			return true
		}
	}
	return false
}

// holder names the leases of session id.
func holder(id string) string { return "upload-" + id }

// leaseTTL is how long a lease of an upload lasts from its renewal.
func (r *Registry) leaseTTL() time.Duration { return r.cfg.UploadTTL + leaseMargin }

// renew extends the session's leases on its parts and on the digests more
// ("" is skipped) to leaseTTL from now, all in one statement. If fewer
// leases were held than there are digests (a lease lapsed, or was dropped
// by lostPart for a request that won after all), each digest is leased
// again with lease.Take, which waits out a deletion of its bytes in progress.
func (r *Registry) renew(ctx context.Context, ss *meta.Upload, more ...string) error {
	n, err := r.meta.RenewLeases(ctx, holder(ss.ID), r.leaseTTL())
	if err != nil {
		return err
	}
	ds := partDigests(ss, more...)
	if n >= int64(len(ds)) {
		return nil
	}
	for _, d := range ds {
		if err := lease.Take(ctx, r.meta, digest.Digest(d).Encoded(), holder(ss.ID), r.leaseTTL()); err != nil {
			return err
		}
	}
	return nil
}

// dropLeases ends the leases of session id on the digests ds; failures are
// logged (the leases expire by themselves).
func (r *Registry) dropLeases(ctx context.Context, id string, ds ...string) {
	ctx = context.WithoutCancel(ctx)
	for _, d := range ds {
		if err := r.meta.DropRelease(ctx, digest.Digest(d).Encoded(), holder(id)); err != nil {
			r.log.Warn("registry: dropping an upload's lease", "upload", id, "digest", d, "err", err)
		}
	}
}

// partDigests lists the distinct digests of more and of ss's parts, ""
// left out. It does not write to more.
func partDigests(ss *meta.Upload, more ...string) []string {
	all := make([]string, 0, len(more)+len(ss.Parts))
	all = append(all, more...)
	for _, p := range ss.Parts {
		all = append(all, p.Digest)
	}
	var ds []string
	seen := map[string]bool{"": true}
	for _, d := range all {
		if !seen[d] {
			seen[d] = true
			ds = append(ds, d)
		}
	}
	return ds
}

// partLost ends session ss, whose part d is gone from the blob store (its
// lease lapsed and the GC took it, or someone deleted it): the client must
// start the upload again, so it gets BLOB_UPLOAD_UNKNOWN, not a 500.
func (r *Registry) partLost(ctx context.Context, ss *meta.Upload, d string) error {
	r.log.Warn("registry: an upload lost a part; ending it", "upload", ss.ID, "digest", d)
	if err := r.endSession(ctx, ss); err != nil {
		return err
	}
	return public(errUploadUnknown, "upload %s lost a part; start the upload again", ss.ID)
}

// endSession deletes the session and drops its leases.
func (r *Registry) endSession(ctx context.Context, ss *meta.Upload) error {
	if err := r.uploads.DeleteUpload(context.WithoutCancel(ctx), ss.ID); err != nil {
		return err
	}
	r.dropLeases(ctx, ss.ID, partDigests(ss)...)
	return nil
}

// SweepUploads ends the upload sessions idle for longer than UploadTTL and
// returns how many it ended. Expired sessions are refused even before a
// sweep; sweeping deletes their rows and leases. Call it periodically.
func (r *Registry) SweepUploads(ctx context.Context) (int, error) {
	const batch = 100
	n := 0
	for {
		ups, err := r.uploads.ExpiredUploads(ctx, r.now().Add(-r.cfg.UploadTTL), batch)
		if err != nil {
			return n, err
		}
		for i := range ups {
			if err := r.endSession(ctx, &ups[i]); err != nil {
				return n, err
			}
			n++
		}
		if len(ups) < batch {
			return n, nil
		}
	}
}

// partsReader yields the bytes of parts in order, opening each from the
// blob store when it is reached. lost names a part that was not found.
type partsReader struct {
	ctx   context.Context
	blobs blob.Store
	parts []meta.UploadPart
	cur   io.ReadCloser
	lost  string
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if p.cur == nil {
			if len(p.parts) == 0 {
				return 0, io.EOF
			}
			rc, err := p.blobs.Open(p.ctx, digest.Digest(p.parts[0].Digest), 0, -1)
			if err != nil { // not the client's error, even blob.ErrNotFound
				if errors.Is(err, blob.ErrNotFound) {
					p.lost = p.parts[0].Digest
				}
				return 0, fmt.Errorf("upload part %s: %v", p.parts[0].Digest, err)
			}
			p.cur, p.parts = rc, p.parts[1:]
		}
		n, err := p.cur.Read(b)
		if err == io.EOF {
			p.cur.Close()
			p.cur, err = nil, nil
			if n == 0 {
				continue
			}
		}
		return n, err
	}
}

// Close closes the part being read, if any.
func (p *partsReader) Close() error {
	if p.cur == nil {
		return nil
	}
	return p.cur.Close()
}

// limitReader yields at most limit bytes of r; one more wraps errBlobTooLarge.
type limitReader struct {
	r           io.Reader
	limit, left int64
}

func newLimitReader(r io.Reader, limit int64) *limitReader {
	return &limitReader{r: r, limit: limit, left: limit}
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, public(errBlobTooLarge, "the blob exceeds the size limit")
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, public(errBlobTooLarge, "the blob exceeds the size limit")
	}
	return n, err
}

// read is the number of bytes the reader yielded.
func (l *limitReader) read() int64 { return l.limit - l.left }
