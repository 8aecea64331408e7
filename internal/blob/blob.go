// Package blob owns content-addressed storage of release bytes: the Store
// interface, its backends and the digest check every write goes through.
//
// A blob is named by its digest ("sha256:<hex>" or "sha512:<hex>"). It is
// written once and never changes; a digest always names the same bytes.
package blob

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
)

// Sentinel errors. Backends wrap them; callers test with errors.Is.
var (
	// ErrNotFound: no blob has this digest.
	ErrNotFound = errors.New("blob: not found")
	// ErrDigestMismatch: the bytes written did not hash to the digest (or size) claimed.
	ErrDigestMismatch = errors.New("blob: digest mismatch")
	// ErrInvalidDigest: the digest is malformed or uses an unsupported algorithm.
	ErrInvalidDigest = errors.New("blob: invalid digest")
	// ErrInvalidRange: offset/length do not fit the blob.
	ErrInvalidRange = errors.New("blob: invalid range")
)

// Info describes a stored blob.
type Info struct {
	Digest digest.Digest
	Size   int64
}

// Store is a content-addressed, create-only blob store.
//
// Contract:
//   - Put reads r to EOF, hashing it. The blob becomes visible only if the
//     bytes hash to d (and, when size >= 0, number exactly size). On any error
//     nothing is left behind (no partial or temporary object is visible to Stat,
//     Open or List). If a blob with digest d already exists, Put still consumes and
//     verifies r and then returns nil without rewriting it.
//   - Open returns length bytes starting at offset; length < 0 means "to the end".
//     The caller closes the reader. Missing blob: ErrNotFound. offset beyond size or
//     offset+length > size: ErrInvalidRange.
//   - Delete removes the blob; missing blob: ErrNotFound.
//   - List calls fn for every stored blob, in no particular order; an error from fn
//     stops the walk and is returned.
type Store interface {
	Put(ctx context.Context, d digest.Digest, size int64, r io.Reader) error
	Open(ctx context.Context, d digest.Digest, offset, length int64) (io.ReadCloser, error)
	Stat(ctx context.Context, d digest.Digest) (Info, error)
	Delete(ctx context.Context, d digest.Digest) error
	List(ctx context.Context, fn func(Info) error) error
}

// Locator is implemented by stores that can name a blob with a URI
// (file:///…, s3://bucket/key). Callers use URIOf.
type Locator interface {
	URI(d digest.Digest) string
}

// URIOf names blob d of s: the store's own URI when it is a Locator that
// names it, else "cairn:" and the digest. It is never empty: a record's
// artifact_uri always says where its bytes are or how to ask for them.
func URIOf(s Store, d digest.Digest) string {
	if l, ok := s.(Locator); ok {
		if u := l.URI(d); u != "" {
			return u
		}
	}
	return "cairn:" + d.String()
}

// TempSweeper is implemented by stores that write through temporary files
// on local disk (fs). A writer killed mid-write (kill -9, a crash) leaves
// its temporary file behind; SweepTemp removes the temporary files last
// modified before cutoff and returns how many it removed. A live write
// keeps modifying its file, so a cutoff well in the past spares it. The
// server calls it periodically. Callers type-assert for it.
type TempSweeper interface {
	SweepTemp(ctx context.Context, cutoff time.Time) (removed int, err error)
}

// FileLinker is implemented by stores that keep blobs as files on local
// disk (fs). LinkFile makes the file at path blob d without copying or
// reading its bytes: the caller vouches that they hash to d, having hashed
// them as it wrote them (the packer does), and must not change the file
// afterwards; it may remove its own name for it. The store checks the
// file's size (size >= 0; a different one wraps ErrDigestMismatch and
// stores nothing) and makes it durable. A blob d already stored: nil, the
// file untouched. A file the store cannot link (another file system) wraps
// ErrNotLinkable and stores nothing: the caller then uses Put. Callers
// type-assert for it.
type FileLinker interface {
	LinkFile(ctx context.Context, d digest.Digest, size int64, path string) error
}

// ErrNotLinkable: FileLinker cannot link this file; Put its bytes instead.
var ErrNotLinkable = errors.New("blob: file cannot be linked into the store")

// StrayLister is implemented by stores that keep copies in several places
// (replica.Store). ListStrays calls fn once for each blob that a copy other
// than the one List reads holds and that known does not report, such as a
// copy left in a secondary region; Delete removes them. known is what the
// caller already has from List (the GC's orphan sweep passes that), so List's
// own copy is not listed twice.
type StrayLister interface {
	ListStrays(ctx context.Context, known func(digest.Digest) bool, fn func(Info) error) error
}
