package server

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/problem"
	"github.com/cairnhq/cairn/internal/token"
)

// metricsAuth returns h as is, or with --metrics-token-required, h behind
// a check for a bearer token with the read or admin scope: 401 without a
// valid token, 403 with another scope. The probes stay open either way.
func metricsAuth(cfg Config, h http.Handler, bootstrap string, store meta.Tokens, log *slog.Logger) http.Handler {
	if !cfg.MetricsToken {
		return h
	}
	auth := token.NewAuthenticator(bootstrap, store, nil, log)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret, ok := token.FromHeader(r.Header.Get("Authorization"), false)
		if !ok {
			problem.Write(w, r, log, problem.New(http.StatusUnauthorized, "unauthorized",
				"/metrics needs Authorization: Bearer <token> (--metrics-token-required)"))
			return
		}
		p, err := auth.Authenticate(r.Context(), secret)
		switch {
		case errors.Is(err, token.ErrInvalid):
			err = problem.New(http.StatusUnauthorized, "unauthorized", "the token is unknown, expired or revoked")
		case err == nil && !p.ReadsAll():
			err = problem.New(http.StatusForbidden, "forbidden", "token "+p.ID+" may not read /metrics: it needs the scope read or admin")
		}
		if err != nil {
			problem.Write(w, r, log, err)
			return
		}
		h.ServeHTTP(w, r)
	})
}
