// Package problem maps errors to RFC 9457 problem details. It is the one
// place where an error becomes an HTTP status: handlers return errors, and
// Write turns them into application/problem+json. Internal failures are
// logged with an id and answered without their text.
package problem

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"syscall"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/derive"
	"github.com/cairnhq/cairn/internal/httplog"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/publish"
	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/siterules"
)

// TypeBase prefixes every problem type URI.
const TypeBase = "https://cairn.dev/problems/"

// Error is an error with a public face: its Detail is safe to send to a client.
type Error struct {
	Status int
	Type   string // short name, e.g. "not-found"; TypeBase is prepended
	Title  string
	Detail string
	Extra  map[string]any // extension members, e.g. version_number on 410
	Err    error          // the cause, logged, never sent
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Detail + ": " + e.Err.Error()
	}
	return e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// New returns a public error.
func New(status int, typ, detail string) *Error {
	return &Error{Status: status, Type: typ, Title: http.StatusText(status), Detail: detail}
}

// Sentinels for the HTTP layer itself.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrBadRequest   = errors.New("bad request")
)

type mapping struct {
	err    error
	status int
	typ    string
	public bool // the error text is written for clients
}

// table is the one mapping from sentinel errors to HTTP statuses.
var table = []mapping{
	{ErrUnauthorized, http.StatusUnauthorized, "unauthorized", false},
	{ErrBadRequest, http.StatusBadRequest, "bad-request", true},
	{release.ErrTooLarge, http.StatusRequestEntityTooLarge, "upload-too-large", true},
	{release.ErrInvalid, http.StatusBadRequest, "invalid-upload", true},
	// A refused line of a site's _redirects or _headers: the text names
	// the file and the line.
	{siterules.ErrInvalid, http.StatusBadRequest, "invalid-site-rules", true},
	{meta.ErrNotFound, http.StatusNotFound, "not-found", false},
	{blob.ErrNotFound, http.StatusNotFound, "not-found", false},
	{meta.ErrConflict, http.StatusConflict, "conflict", false},
	{meta.ErrGone, http.StatusGone, "gone", false},
	{meta.ErrInvalid, http.StatusBadRequest, "invalid", false},
	{blob.ErrDigestMismatch, http.StatusBadRequest, "digest-mismatch", false},
	{blob.ErrInvalidDigest, http.StatusBadRequest, "invalid-digest", false},
	{blob.ErrInvalidRange, http.StatusRequestedRangeNotSatisfiable, "invalid-range", false},
	{derive.ErrUnavailable, http.StatusNotImplemented, "derive-unavailable", true},
	// The refusals of a publish: their text names what is wrong.
	{publish.ErrWrongKind, http.StatusBadRequest, "wrong-kind", true},
	{publish.ErrBadRequest, http.StatusBadRequest, "bad-request", true},
	{publish.ErrBadRuntime, http.StatusBadRequest, "bad-request", true},
	{publish.ErrReleaseMismatch, http.StatusUnprocessableEntity, "release-mismatch", true},
	{publish.ErrContentMismatch, http.StatusUnprocessableEntity, "content-mismatch", true},
	{publish.ErrContentsMissing, http.StatusConflict, "contents-missing", true},
	{publish.ErrPublishUnknown, http.StatusNotFound, "publish-unknown", true},
	{context.DeadlineExceeded, http.StatusGatewayTimeout, "timeout", false},
	// The server's disk (blobs, staging, SQLite) is full or over quota:
	// the request may succeed once space is freed.
	{syscall.ENOSPC, http.StatusInsufficientStorage, "insufficient-storage", false},
	{syscall.EDQUOT, http.StatusInsufficientStorage, "insufficient-storage", false},
}

// insufficientStorageDetail is the detail of a 507: what the client may do.
const insufficientStorageDetail = "the server has no storage space left for this request; try again once space is freed"

// NoSpace reports whether err is the server running out of storage space
// (ENOSPC, or EDQUOT: over quota) anywhere in its chain. Stores keep the
// errno reachable (errors.Is), or wrap syscall.ENOSPC around their own
// disk-full errors (SQLite's SQLITE_FULL, PostgreSQL's disk_full).
func NoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// From maps err to a public Error. Unknown errors become a 500 whose detail
// says nothing about the cause.
func From(err error) *Error {
	var pe *Error
	if errors.As(err, &pe) {
		return pe
	}
	for _, m := range table {
		if errors.Is(err, m.err) {
			p := &Error{Status: m.status, Type: m.typ, Title: http.StatusText(m.status), Err: err}
			switch {
			case m.public:
				p.Detail = err.Error()
			case m.status == http.StatusInsufficientStorage:
				p.Detail = insufficientStorageDetail
			default:
				p.Detail = http.StatusText(m.status)
			}
			return p
		}
	}
	return &Error{Status: http.StatusInternalServerError, Type: "internal",
		Title: "Internal Server Error", Detail: "internal error; see the server log", Err: err}
}

// Upstream wraps a failure of the storage or metadata behind a response:
// 504 when a deadline passed, else 502. The client learns only that the
// stored data could not be read.
func Upstream(err error) *Error {
	p := &Error{Status: http.StatusBadGateway, Type: "upstream", Title: http.StatusText(http.StatusBadGateway),
		Detail: "the stored data could not be read; try again later", Err: err}
	if errors.Is(err, context.DeadlineExceeded) {
		p.Status, p.Title = http.StatusGatewayTimeout, http.StatusText(http.StatusGatewayTimeout)
	}
	return p
}

// NoInstance is a dynamic deployment with no healthy instance to send a
// request to (503; the router adds Retry-After).
func NoInstance(err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Type: "no-healthy-instance",
		Title:  http.StatusText(http.StatusServiceUnavailable),
		Detail: "no instance of this deployment is ready to answer; try again shortly", Err: err}
}

// Unreachable is a request that no instance of a dynamic deployment
// answered (502): the connects failed, or the instance broke off.
func Unreachable(err error) *Error {
	return &Error{Status: http.StatusBadGateway, Type: "instance-unreachable",
		Title:  http.StatusText(http.StatusBadGateway),
		Detail: "the deployment's instance did not answer; try again later", Err: err}
}

// ProxyFailed is a request that a static site's proxy rule (_redirects,
// 200 to an external URL) could not get answered (502; 504 when the
// target took too long): the target refused, was unreachable or not
// allowed, or broke off. The client never sees why.
func ProxyFailed(err error) *Error {
	p := &Error{Status: http.StatusBadGateway, Type: "proxy-failed", Title: http.StatusText(http.StatusBadGateway),
		Detail: "the site's proxy target did not answer; try again later", Err: err}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		p.Status, p.Title = http.StatusGatewayTimeout, http.StatusText(http.StatusGatewayTimeout)
	}
	return p
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// Write sends err as problem+json. Its "instance" and "request_id" name the
// request (httplog's id, also in X-Request-Id); 5xx errors are logged under
// that id.
func Write(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	p := From(err)
	body := map[string]any{"type": TypeBase + p.Type, "title": p.Title, "status": p.Status, "detail": p.Detail}
	for k, v := range p.Extra {
		body[k] = v
	}
	id := httplog.RequestID(r.Context())
	if p.Status >= 500 {
		id = LogFailure(log, r, "request failed", err)
	}
	if id != "" {
		body["instance"] = "urn:cairn:request:" + id
		body["request_id"] = id
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cairn"`)
	}
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	if r.Method != http.MethodHead {
		w.Write(b)
	}
}

// LogFailure logs err under the request's id (a new one if it has none)
// and returns the id, which the
// client may be shown. A failure caused by the client going away is logged
// at debug level.
func LogFailure(log *slog.Logger, r *http.Request, msg string, err error) string {
	id := httplog.RequestID(r.Context())
	if id == "" {
		id = httplog.NewID()
	}
	if log == nil {
		return id
	}
	lvl := slog.LevelError
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		lvl = slog.LevelDebug
	}
	log.Log(r.Context(), lvl, msg, "request_id", id, "method", r.Method,
		"host", r.Host, "path", r.URL.Path, "err", err)
	return id
}
