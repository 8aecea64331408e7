// Package httplog owns what every cairn listener does around a request:
// the request id (sent back in X-Request-Id, carried in the context for
// problem documents and logs) and the access log, one line per request.
// It also owns Recorder, the response wrapper that notes a response's
// status and size for the access log and the metrics.
package httplog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"
)

// Header carries the request id both ways: a client may send a well-formed
// id (1–64 of A-Z a-z 0-9 . _ -) to correlate its own logs; any other value
// is replaced by a new one.
const Header = "X-Request-Id"

type ctxKey struct{}

// RequestID returns the id Handler gave the request, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// WithRequestID returns ctx carrying id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// NewID returns a new random request id (16 hex digits).
func NewID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ValidID reports whether a client's id may be kept.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Handler gives every request an id, answers it in X-Request-Id, and, when
// log is not nil, logs one line per request at info level when the handler
// returns: listener, method, host, path, status, bytes, duration_ms,
// request_id, remote. A request the client left before any answer logs
// status 499.
func Handler(listener string, log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(Header)
		if !ValidID(id) {
			id = NewID()
		}
		w.Header()[Header] = []string{id}
		r = r.WithContext(WithRequestID(r.Context(), id))
		if log == nil {
			h.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &Recorder{ResponseWriter: w}
		defer func() {
			code := rec.Status(r)
			log.LogAttrs(r.Context(), slog.LevelInfo, "http",
				slog.String("listener", listener),
				slog.String("method", r.Method),
				slog.String("host", r.Host),
				slog.String("path", r.URL.Path),
				slog.Int("status", code),
				slog.Int64("bytes", rec.Bytes),
				slog.Float64("duration_ms", Millis(time.Since(start))),
				slog.String("request_id", id),
				slog.String("remote", r.RemoteAddr))
		}()
		h.ServeHTTP(rec, r)
	})
}

// Millis is d in milliseconds with microsecond precision, the unit of
// every duration cairn logs.
func Millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}
