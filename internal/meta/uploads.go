package meta

import (
	"context"
	"errors"
	"time"
)

// ErrUploadMoved: an upload grew (or was finished) since the caller read
// its size; the caller lost a race with another process appending to it.
var ErrUploadMoved = errors.New("meta: upload size changed")

// Upload is an OCI blob upload session, shared by every API process: its
// bytes are parts, each stored as an ordinary blob (see internal/registry
// and docs/design.md, "OCI registry").
type Upload struct {
	ID         string
	Repository string
	Started    time.Time
	Updated    time.Time // the last append
	Size       int64     // the sum of the parts' sizes
	Parts      []UploadPart
}

// UploadPart is one chunk of an upload, in order.
type UploadPart struct {
	Seq    int64
	Digest string // "sha256:<hex>" of the chunk's bytes
	Size   int64
}

// Uploads keeps upload sessions. Part of meta.Full, declared by
// registry.Store. Times are the caller's; every method is one transaction.
type Uploads interface {
	// CreateUpload records u (ID, Repository, Started, Updated; no parts,
	// size 0). A taken ID: ErrConflict.
	CreateUpload(ctx context.Context, u Upload) error
	// GetUpload returns upload id with its parts in order; ErrNotFound.
	GetUpload(ctx context.Context, id string) (*Upload, error)
	// AppendUpload adds part p (its Seq is assigned) to upload id if the
	// upload still has size bytes, and sets its Updated to now; p.Size 0
	// adds no part and only refreshes Updated. Another size: ErrUploadMoved;
	// no such upload: ErrNotFound.
	AppendUpload(ctx context.Context, id string, size int64, p UploadPart, now time.Time) error
	// DeleteUpload deletes upload id and its parts; none is not an error.
	DeleteUpload(ctx context.Context, id string) error
	// ExpiredUploads returns the uploads (with their parts) last updated
	// before before, at most limit (<= 0: 100), oldest first.
	ExpiredUploads(ctx context.Context, before time.Time, limit int) ([]Upload, error)
}

// UploadCounter counts open upload sessions; the registry caps the
// sessions of a deployment with it. Part of meta.Full, declared by
// registry.Store.
type UploadCounter interface {
	// CountUploads counts the uploads of repository repo and of the
	// repositories under it ("repo/…") last updated at or after since.
	CountUploads(ctx context.Context, repo string, since time.Time) (int, error)
}
