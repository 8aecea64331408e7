package server

import (
	"log/slog"
	"net/http"

	"github.com/cairnhq/cairn/internal/httplog"
)

// access gives every request on listener an id and, with --access-log,
// one log line.
func (cfg Config) access(listener string, log *slog.Logger, h http.Handler) http.Handler {
	if !cfg.AccessLog {
		log = nil
	}
	return httplog.Handler(listener, log, h)
}
