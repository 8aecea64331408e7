package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/httplog"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
)

// Sentinel errors of the registry. Handlers wrap them with a detail built
// only from what the client sent or may see (digests, names, sizes), never
// from an internal error: that detail is sent to the client.
var (
	errBlobUnknown         = errors.New("blob unknown to registry")
	errUploadInvalid       = errors.New("blob upload invalid")
	errUploadUnknown       = errors.New("blob upload unknown to registry")
	errDigestInvalid       = errors.New("provided digest did not match uploaded content")
	errManifestBlobUnknown = errors.New("manifest references a manifest or blob unknown to registry")
	errManifestInvalid     = errors.New("manifest invalid")
	errManifestUnknown     = errors.New("manifest unknown to registry")
	errNameInvalid         = errors.New("invalid repository name")
	errNameUnknown         = errors.New("repository name not known to registry")
	errSizeInvalid         = errors.New("provided length did not match content length")
	errUnauthorized        = errors.New("authentication required")
	errDenied              = errors.New("requested access to the resource is denied")
	errUnsupported         = errors.New("the operation is unsupported")
	errNotFound            = errors.New("no such endpoint")
	errRangeInvalid        = errors.New("requested range not satisfiable")
	errManifestTooLarge    = errors.New("manifest too large")
	errBlobTooLarge        = errors.New("blob too large")
	errTooManyUploads      = errors.New("too many requests")
)

// code is an OCI error code with the HTTP status it is answered with.
type code struct {
	err    error
	status int
	code   string
	public bool // the wrapped error's text is the detail sent to the client
}

// codes is the one mapping from errors to OCI error codes and statuses
// (distribution-spec v1.1, "Error Codes"). The first match wins.
var codes = []code{
	{errUnauthorized, http.StatusUnauthorized, "UNAUTHORIZED", true},
	{errDenied, http.StatusForbidden, "DENIED", true},
	{errBlobUnknown, http.StatusNotFound, "BLOB_UNKNOWN", true},
	{errUploadInvalid, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", true},
	{errRangeInvalid, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", true},
	{errUploadUnknown, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", true},
	{errDigestInvalid, http.StatusBadRequest, "DIGEST_INVALID", true},
	{errManifestBlobUnknown, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", true},
	{errManifestTooLarge, http.StatusRequestEntityTooLarge, "MANIFEST_INVALID", true},
	{errManifestInvalid, http.StatusBadRequest, "MANIFEST_INVALID", true},
	{errManifestUnknown, http.StatusNotFound, "MANIFEST_UNKNOWN", true},
	{errNameInvalid, http.StatusBadRequest, "NAME_INVALID", true},
	{errNameUnknown, http.StatusNotFound, "NAME_UNKNOWN", true},
	{errBlobTooLarge, http.StatusRequestEntityTooLarge, "SIZE_INVALID", true},
	{errSizeInvalid, http.StatusBadRequest, "SIZE_INVALID", true},
	{errUnsupported, http.StatusMethodNotAllowed, "UNSUPPORTED", true},
	{errNotFound, http.StatusNotFound, "UNSUPPORTED", true},
	{errTooManyUploads, http.StatusTooManyRequests, "TOOMANYREQUESTS", true},
	// Errors of the stores: their text is not for clients.
	{blob.ErrDigestMismatch, http.StatusBadRequest, "DIGEST_INVALID", false},
	{blob.ErrInvalidDigest, http.StatusBadRequest, "DIGEST_INVALID", false},
	{blob.ErrNotFound, http.StatusNotFound, "BLOB_UNKNOWN", false},
	{blob.ErrInvalidRange, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID", false},
	{meta.ErrNotFound, http.StatusNotFound, "NAME_UNKNOWN", false},
}

// messages are the spec's messages for each code.
var messages = map[string]string{
	"BLOB_UNKNOWN":          "blob unknown to registry",
	"BLOB_UPLOAD_INVALID":   "blob upload invalid",
	"BLOB_UPLOAD_UNKNOWN":   "blob upload unknown to registry",
	"DIGEST_INVALID":        "provided digest did not match uploaded content",
	"MANIFEST_BLOB_UNKNOWN": "manifest references a manifest or blob unknown to registry",
	"MANIFEST_INVALID":      "manifest invalid",
	"MANIFEST_UNKNOWN":      "manifest unknown to registry",
	"NAME_INVALID":          "invalid repository name",
	"NAME_UNKNOWN":          "repository name not known to registry",
	"SIZE_INVALID":          "provided length did not match content length",
	"UNAUTHORIZED":          "authentication required",
	"DENIED":                "requested access to the resource is denied",
	"UNSUPPORTED":           "the operation is unsupported",
	"TOOMANYREQUESTS":       "too many requests",
	"UNKNOWN":               "unknown error",
	// not in the spec: the server's disk is full (problem.NoSpace), 507
	"INSUFFICIENT_STORAGE": "the registry has no storage space left; try again once space is freed",
}

// public returns an error wrapping sentinel whose text (the detail sent to
// the client) is built from format and args only.
func public(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}

// classify maps err to its status, OCI code and detail (nil when the error's
// text is not for clients).
func classify(err error) (status int, c string, detail any) {
	if problem.NoSpace(err) { // not the client's fault, nor a bug: it may retry
		return http.StatusInsufficientStorage, "INSUFFICIENT_STORAGE", nil
	}
	for _, m := range codes {
		if errors.Is(err, m.err) {
			if m.public {
				detail = err.Error()
			}
			return m.status, m.code, detail
		}
	}
	return http.StatusInternalServerError, "UNKNOWN", nil
}

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError answers err as {"errors":[{code, message, detail}]}. Failures
// that are not the client's (5xx) are logged with an id that the detail
// carries; their text is never sent.
func writeError(w http.ResponseWriter, req *http.Request, log *slog.Logger, err error) {
	status, c, detail := classify(err)
	if status == http.StatusInsufficientStorage {
		log.Warn("registry request failed: no storage space left", "method", req.Method, "path", req.URL.Path,
			"request_id", httplog.RequestID(req.Context()), "err", err)
	} else if status >= http.StatusInternalServerError {
		id := httplog.RequestID(req.Context())
		if id == "" {
			id = httplog.NewID()
		}
		detail = "internal error, request id " + id
		lvl := slog.LevelError
		if errors.Is(err, context.Canceled) && req.Context().Err() != nil {
			lvl = slog.LevelDebug // the client went away
		}
		log.Log(req.Context(), lvl, "registry request failed", "request_id", id,
			"method", req.Method, "path", req.URL.Path, "err", err)
	}
	b, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: c, Message: messages[c], Detail: detail}}})
	h := w.Header()
	if status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", challenge)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if req.Method != http.MethodHead {
		w.Write(b)
	}
}
