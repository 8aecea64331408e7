package publish

import (
	"errors"
	"fmt"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/siterules"
)

// The refusals of a publish, for errors.Is. Their text is written for the
// client; internal/problem maps each to its HTTP status.
var (
	// ErrWrongKind: the deployment's kind takes no tar upload.
	ErrWrongKind = errors.New("wrong deployment kind")
	// ErrBadRequest: an option of the upload is wrong (the entrypoint, a
	// runtime on a static deployment).
	ErrBadRequest = errors.New("bad publish request")
	// ErrBadRuntime: the runtime settings are wrong (see ParseRuntime).
	ErrBadRuntime = errors.New("bad runtime settings")
	// ErrReleaseMismatch: the upload does not pack to the release it was
	// announced as (Options.ExpectSHA256).
	ErrReleaseMismatch = errors.New("release mismatch")
	// ErrContentMismatch: an incremental publish's content is not what its
	// manifest says (digest or size).
	ErrContentMismatch = errors.New("content mismatch")
	// ErrContentsMissing: a commit of an incremental publish before every
	// content the server lacked was uploaded.
	ErrContentsMissing = errors.New("contents missing")
	// ErrPublishUnknown: no incremental publish of that id is under way.
	ErrPublishUnknown = errors.New("unknown incremental publish")
)

// refusal is a refusal of kind whose whole text is its detail.
type refusal struct {
	kind   error
	detail string
}

func (r *refusal) Error() string { return r.detail }
func (r *refusal) Unwrap() error { return r.kind }

// refuse returns a refusal of kind with the detail format, a.
func refuse(kind error, format string, a ...any) error {
	return &refusal{kind: kind, detail: fmt.Sprintf(format, a...)}
}

// Rejected reports whether a publish failed through the client's fault (the
// metric's result="rejected"): a refusal, a refused upload or site rule, or
// a record it named that is missing or taken. internal/problem answers all
// of these with a 4xx; its tests check that the two agree.
func Rejected(err error) bool {
	for _, target := range []error{ErrWrongKind, ErrBadRequest, ErrBadRuntime, ErrReleaseMismatch,
		ErrContentMismatch, ErrContentsMissing, ErrPublishUnknown,
		release.ErrInvalid, release.ErrTooLarge, siterules.ErrInvalid, blob.ErrDigestMismatch, blob.ErrInvalidDigest,
		meta.ErrNotFound, meta.ErrConflict, meta.ErrGone, meta.ErrInvalid} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
