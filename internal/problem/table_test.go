package problem

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/publish"
	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/siterules"
)

// TestFromTable checks the mapping of errors, wrapped or not, to a status,
// a type and a detail: public errors keep their text, others never leak it.
func TestFromTable(t *testing.T) {
	const secret = "/srv/data/secret-path"
	wrap := func(err error) error { return fmt.Errorf("op on %s: %w", secret, err) }
	cases := []struct {
		err    error
		status int
		typ    string
		public bool   // the detail is the error's own text
		detail string // else the detail, exactly
	}{
		{ErrUnauthorized, 401, "unauthorized", false, "Unauthorized"},
		{fmt.Errorf("bad field x: %w", ErrBadRequest), 400, "bad-request", true, ""},
		{fmt.Errorf("%w: more than 10 entries", release.ErrTooLarge), 413, "upload-too-large", true, ""},
		{fmt.Errorf("%w: a fifo", release.ErrInvalid), 400, "invalid-upload", true, ""},
		{wrap(meta.ErrNotFound), 404, "not-found", false, "Not Found"},
		{wrap(blob.ErrNotFound), 404, "not-found", false, "Not Found"},
		{wrap(meta.ErrConflict), 409, "conflict", false, "Conflict"},
		{wrap(meta.ErrGone), 410, "gone", false, "Gone"},
		{wrap(blob.ErrDigestMismatch), 400, "digest-mismatch", false, "Bad Request"},
		{wrap(blob.ErrInvalidRange), 416, "invalid-range", false, "Requested Range Not Satisfiable"},
		{wrap(context.DeadlineExceeded), 504, "timeout", false, "Gateway Timeout"},
		{wrap(syscall.ENOSPC), 507, "insufficient-storage", false, insufficientStorageDetail},
		{wrap(wrap(syscall.EDQUOT)), 507, "insufficient-storage", false, insufficientStorageDetail},
		{wrap(errors.New("disk exploded")), 500, "internal", false, "internal error; see the server log"},
		{New(422, "release-mismatch", "the upload packs to another release"), 422, "release-mismatch", true, ""},
		// The refusals of a publish keep their text, which names what is wrong.
		{fmt.Errorf("%w", publish.ErrWrongKind), 400, "wrong-kind", true, ""},
		{fmt.Errorf("%w", publish.ErrBadRequest), 400, "bad-request", true, ""},
		{fmt.Errorf("%w", publish.ErrBadRuntime), 400, "bad-request", true, ""},
		{fmt.Errorf("%w", publish.ErrReleaseMismatch), 422, "release-mismatch", true, ""},
		{fmt.Errorf("%w", publish.ErrContentMismatch), 422, "content-mismatch", true, ""},
		{fmt.Errorf("%w", publish.ErrContentsMissing), 409, "contents-missing", true, ""},
		{fmt.Errorf("%w", publish.ErrPublishUnknown), 404, "publish-unknown", true, ""},
	}
	for _, c := range cases {
		t.Run(c.typ+"/"+c.err.Error(), func(t *testing.T) {
			p := From(c.err)
			if p.Status != c.status || p.Type != c.typ || p.Title != http.StatusText(c.status) {
				t.Fatalf("got %d %s %q, want %d %s", p.Status, p.Type, p.Title, c.status, c.typ)
			}
			switch {
			case c.public && p.Detail != c.err.Error():
				t.Fatalf("public detail %q, want the error text %q", p.Detail, c.err.Error())
			case !c.public && p.Detail != c.detail:
				t.Fatalf("detail %q, want %q", p.Detail, c.detail)
			case !c.public && strings.Contains(p.Detail, secret):
				t.Fatalf("detail leaks the error text: %q", p.Detail)
			}
			if !errors.Is(p, c.err) && p != c.err {
				t.Fatalf("the cause is lost: %v", p)
			}
		})
	}
}

// TestPublishRejected: the failures that publish counts as the client's
// (result="rejected") are those this table answers with a 4xx.
func TestPublishRejected(t *testing.T) {
	for _, err := range []error{
		publish.ErrWrongKind, publish.ErrBadRequest, publish.ErrBadRuntime, publish.ErrReleaseMismatch,
		publish.ErrContentMismatch, publish.ErrContentsMissing, publish.ErrPublishUnknown,
		release.ErrInvalid, release.ErrTooLarge, siterules.ErrInvalid, blob.ErrDigestMismatch, blob.ErrInvalidDigest,
		meta.ErrNotFound, meta.ErrConflict, meta.ErrGone, meta.ErrInvalid,
		context.DeadlineExceeded, syscall.ENOSPC, syscall.EDQUOT, errors.New("disk exploded"),
	} {
		err = fmt.Errorf("publish: %w", err)
		if got, want := publish.Rejected(err), From(err).Status < 500; got != want {
			t.Errorf("%v: rejected %v, but the table answers %d", err, got, From(err).Status)
		}
	}
}
